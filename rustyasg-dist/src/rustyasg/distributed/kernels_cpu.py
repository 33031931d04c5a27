"""cpu kernels of the collective ops: the MPI call writes straight into the planned output buffer.

The communicator is resolved when the step is compiled; a run costs one MPI call per
collective, on the buffers the cpu memory planner already allocated (no copy).

Example:
    >>> sorted(KERNELS)
    ['all_gather', 'all_reduce', 'broadcast', 'reduce_scatter']
"""

from __future__ import annotations

from .ops import communicator_for


def _all_reduce(ins, args):
    from rustyasg.cpu.kernels.protocol import Impl

    comm, op = communicator_for(ins.attrs["comm"], ins.attrs["size"]), ins.attrs["reduce"]
    return Impl(run=lambda x, out: comm.all_reduce_into(x, out, op), contiguous=True, label=f"all_reduce_{op}")


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


KERNELS = {"all_reduce": _all_reduce, "all_gather": _all_gather, "reduce_scatter": _reduce_scatter,
           "broadcast": _broadcast}
