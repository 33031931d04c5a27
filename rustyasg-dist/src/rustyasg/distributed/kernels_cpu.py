"""cpu kernels of the collective ops: the MPI call writes straight into the planned output buffer.

The communicator is resolved when the step is compiled; a run costs one MPI call per
collective, on the buffers the cpu memory planner already allocated (no copy).

Example:
    >>> sorted(KERNELS)
    ['all_gather', 'all_reduce', 'all_reduce_start', 'all_reduce_wait', 'broadcast', 'reduce_scatter']

The overlapped all-reduce packs a gradient bucket into its output buffer, issues the
all-reduce in place and returns; the matching ``all_reduce_wait`` (keyed by that buffer's
address, which the memory planner keeps reserved until the wait has read it) blocks until
the transfer is done, usually writing in place.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .ops import communicator_for

#: Address of a started all-reduce's buffer -> its pending request.
_IN_FLIGHT: Dict[int, object] = {}


def _all_reduce(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    comm, op = communicator_for(ins.attrs["comm"], ins.attrs["size"]), ins.attrs["reduce"]
    return Impl(run=lambda x, out: comm.all_reduce_into(x, out, op), contiguous=True, label=f"all_reduce_{op}")


def _all_reduce_start(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    comm, op = communicator_for(ins.attrs["comm"], ins.attrs["size"]), ins.attrs["reduce"]

    def run(*arrays):
        *parts, out = arrays
        np.concatenate([p.reshape(-1) for p in parts], out=out)
        _IN_FLIGHT[out.ctypes.data] = comm.all_reduce_start(out, out, op)

    return Impl(run=run, contiguous=True, label=f"all_reduce_start_{op}")


def _all_reduce_wait(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    def run(started, out):
        # Nothing in flight at this address means the data are already final: a graph
        # may feed a wait a tensor that no start of this process issued (an all-reduce
        # of one rank, or a wait rebuilt from a saved program on its own).
        pending = _IN_FLIGHT.pop(started.ctypes.data, None)
        if pending is not None:
            pending.wait()
        if not np.shares_memory(started, out):
            np.copyto(out, started)

    return Impl(run=run, contiguous=True, elementwise=True, label="all_reduce_wait")


def _all_gather(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    comm = communicator_for(ins.attrs["comm"], ins.attrs["size"])
    return Impl(run=comm.all_gather_into, contiguous=True, label="all_gather")


def _reduce_scatter(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    comm, op = communicator_for(ins.attrs["comm"], ins.attrs["size"]), ins.attrs["reduce"]
    return Impl(run=lambda x, out: comm.reduce_scatter_into(x, out, op), contiguous=True,
                label=f"reduce_scatter_{op}")


def _broadcast(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    comm, root = communicator_for(ins.attrs["comm"], ins.attrs["size"]), ins.attrs["root"]
    return Impl(run=lambda x, out: comm.broadcast_into(x, out, root), contiguous=True, label="broadcast")


KERNELS = {"all_reduce": _all_reduce, "all_reduce_start": _all_reduce_start, "all_reduce_wait": _all_reduce_wait, "all_gather": _all_gather, "reduce_scatter": _reduce_scatter,
           "broadcast": _broadcast}
