"""A compiled step on the GPU: write inputs, replay launches, one submit, return handles.

``run`` does no per-node work: the launches (pipelines, bind groups, uniform blocks)
were built by :mod:`.compiler`. It writes the inputs into their persistent buffers,
records every launch into one compute pass, appends the buffer copies for outputs and
variable updates to the same command encoder, and submits once. Outputs come back as
:class:`~rustyasg.wgpu.handles.GpuArray` handles; nothing is read back.

A kernel may return a :class:`HostStep` among its launches (a collective through MPI, say):
the pass is closed and submitted there, the host work runs, and recording resumes in a new
encoder, so such a step costs one extra submit and the host step's own transfers.

Example::

    exe = backend.compile(program)
    handles = exe.run([x])
    backend.to_host(handles[0])
"""

from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np

from rustyasg.core.executor import Executable
from rustyasg.core.program import Program

from .buffers import _padded_bytes as padded_bytes
from .handles import GpuArray


def _words(nbytes: int) -> int:
    return -(-int(nbytes) // 4) * 4  # buffer copies move whole 4-byte words


class HostStep:
    """Work the host does between two GPU submissions of a step (``run()`` reads and writes buffers).

    >>> HostStep(lambda: None, "noop").label
    'noop'
    """

    def __init__(self, run, label: str = "host"):
        self.run, self.label = run, label

    def encode(self, cpass: Any) -> None:
        raise RuntimeError(f"{self.label}: a host step cannot be recorded into a compute pass")


def _segments(launches: List[Any]) -> List[tuple]:
    """``[(launches, host step or None), ...]``: the passes between host steps."""
    out, current = [], []
    for launch in launches:
        if isinstance(launch, HostStep):
            out.append((current, launch))
            current = []
        else:
            current.append(launch)
    out.append((current, None))
    return out


class WgpuExecutable(Executable):
    """See the module docstring; built by :class:`~rustyasg.wgpu.compiler.ProgramCompiler`."""

    def __init__(self, backend: Any, program: Program, compiler: Any, plan: Any, launches: List[Any]):
        self.backend = backend
        self.program = program
        self.plan = plan
        self.launches = launches
        self.segments = _segments(launches)
        self.ctx = backend.ctx
        by_id = compiler.by_id
        self.outputs = []
        for o in program.outputs:
            ins = by_id[o]
            self.outputs.append((plan.buffer_of(compiler.base[o]), ins.shape, ins.dtype, compiler.storage[o]))
        # Variables whose resident buffers the launches are bound to.
        self.bound = [(var, plan._buffers[iid]) for iid, var in program.variables.items()]
        self.updated = [var for var, _ in program.updates]
        self.copies = [(s, d, _words(n)) for s, d, n in plan.snapshot_copies]
        self.update_copies = [(s, d, _words(n)) for s, d, n in plan.update_copies]
        self.runs = 0

    def run(self, inputs: Sequence[np.ndarray]) -> List[GpuArray]:
        backend, queue = self.backend, self.ctx.queue
        for var, buf in self.bound:
            if backend.resident(var).buffer is not buf:
                raise RuntimeError(f"variable {var.name!r} moved to another GPU buffer after compilation")
        for slot, arr in zip(self.plan.inputs, inputs):
            if slot is None:
                continue
            data = slot[1].to_device(np.asarray(arr))
            if data.nbytes:
                queue.write_buffer(slot[0], 0, padded_bytes(data))
        enc = self.ctx.device.create_command_encoder()
        for launches, host in self.segments:
            if launches:
                cpass = enc.begin_compute_pass()
                for launch in launches:
                    launch.encode(cpass)
                cpass.end()
            if host is not None:
                backend.submit([enc.finish()])
                host.run()
                enc = self.ctx.device.create_command_encoder()
        for src, dst, n in self.copies:
            enc.copy_buffer_to_buffer(src, 0, dst, 0, n)
        handles = []
        for src, shape, dtype, storage in self.outputs:
            h = backend.empty(shape, dtype)
            n = _words(h.nbytes)
            if n:
                enc.copy_buffer_to_buffer(src, 0, h.buffer, 0, n)
            handles.append(h)
        for src, dst, n in self.update_copies:
            if n:
                enc.copy_buffer_to_buffer(src, 0, dst, 0, n)
        backend.submit([enc.finish()])
        for var in self.updated:
            backend.set_resident(var, backend.resident(var))
        self.runs += 1
        return handles

    def memory_report(self):
        report = self.plan.report()
        report["launches"] = len(self.launches)
        return report
