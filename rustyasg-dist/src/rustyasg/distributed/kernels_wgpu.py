"""wgpu kernels of the collective ops, staged through host memory.

MPI moves host memory, so a collective on the GPU is a host step of the compiled call
(:class:`rustyasg.wgpu.executable.HostStep`): the work recorded so far is submitted, the
operand is read back, the MPI call runs on the host copy, and the result is written into
the output buffer before recording resumes. The cost per collective is one extra submit,
one device-to-host and one host-to-device copy of the operand, and a pipeline drain (the
GPU idles while the host waits for MPI). Measured with two ranks on one H100
(``benchmarks/distributed.py --backend wgpu``): a 2.7 MB gradient bucket costs ~4.5 ms per
step (W2: 2.55 -> 7.53 ms), 60% of the step; W4's 1.9 MB, 50%. Bucketing keeps it to one
or two such stops per step. GPU-direct transports (NCCL) are out of scope here.

Example:
    >>> sorted(KERNELS)
    ['all_gather', 'all_reduce', 'all_reduce_start', 'all_reduce_wait', 'broadcast', 'reduce_scatter']

The overlapped all-reduce does not overlap here: the host step already drains the GPU
pipeline, so ``all_reduce_start`` runs the whole (packed) all-reduce on the host and
``all_reduce_wait`` is a device copy.
"""

from __future__ import annotations

import numpy as np

from .ops import communicator_for

_DEVICE_DTYPE = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i64": np.int64}


def _host_kernel(collective):
    """A wgpu kernel running ``collective(comm, host_operand, attrs) -> host_result`` between submits."""

    def kernel(kb, instr, inputs, out):
        from rustyasg.wgpu.buffers import _padded_bytes
        from rustyasg.wgpu.executable import HostStep

        comm = communicator_for(instr.attrs["comm"], instr.attrs["size"])
        queue = kb.ctx.queue
        dtype = _DEVICE_DTYPE[inputs[0].storage.name]

        def read(x):
            nbytes = -(-x.size * np.dtype(dtype).itemsize // 4) * 4  # reads move whole 4-byte words
            raw = queue.read_buffer(x.buffer, 0, nbytes) if nbytes else b""
            return np.frombuffer(raw, dtype=dtype, count=x.size).reshape(x.shape)

        def run():
            result = np.asarray(collective(comm, *[read(x) for x in inputs], attrs=instr.attrs), dtype=dtype)
            if result.nbytes:
                queue.write_buffer(out.buffer, 0, _padded_bytes(np.ascontiguousarray(result)))

        return [HostStep(run, f"{instr.op} (host-staged MPI)")]

    return kernel


def _device_copy(kb, instr, inputs, out):
    from rustyasg.core.backend_api import load_kernels

    return load_kernels("wgpu")["reshape"](kb, instr, inputs, out)  # a same-shape reshape is a copy


def _packed_all_reduce(comm, *parts, attrs):
    return comm.all_reduce(np.concatenate([p.reshape(-1) for p in parts]), attrs["reduce"])


KERNELS = {
    "all_reduce": _host_kernel(lambda comm, x, attrs: comm.all_reduce(x, attrs["reduce"])),
    "all_reduce_start": _host_kernel(_packed_all_reduce),
    "all_reduce_wait": _device_copy,
    "all_gather": _host_kernel(lambda comm, x, attrs: comm.all_gather(x)),
    "reduce_scatter": _host_kernel(lambda comm, x, attrs: comm.reduce_scatter(x, attrs["reduce"])),
    "broadcast": _host_kernel(lambda comm, x, attrs: comm.broadcast(x, attrs["root"])),
}
