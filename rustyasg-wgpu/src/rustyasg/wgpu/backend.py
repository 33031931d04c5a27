"""The wgpu backend: compiled steps run as WGSL kernels on a GPU through wgpu.

Select it with ``backend="wgpu"`` or ``RUSTYASG_BACKEND=wgpu``; pick the adapter with
``RUSTYASG_WGPU_ADAPTER`` (see :mod:`rustyasg.wgpu.device`). Without any adapter,
creating the backend fails with a message saying what to install.

What it guarantees (and the tests check):

- parameters, optimizer state and RNG state live in GPU buffers; a variable is uploaded
  once and keeps one buffer for its life (a host ``assign`` rewrites that buffer);
- a compiled call is one command encoder and one ``queue.submit``; it returns
  :class:`~rustyasg.wgpu.handles.GpuArray` handles and reads nothing back;
- ``to_host`` reads through persistent staging buffers (:class:`~rustyasg.wgpu.buffers.Readback`).

Dtypes: see :mod:`rustyasg.wgpu.kernels.api` (float64 is computed in float32; int64
keeps its 64 bits in two words; bool is one u32 per element).

Example:

    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None, 3), name="x")
    >>> f = rg.function([x], (x * 2.0).sum(axis=1), backend="wgpu")
    >>> f(np.ones((2, 3), np.float32))
    array([6., 6.], dtype=float32)
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

import numpy as np

from rustyasg.core.executor import Backend
from rustyasg.core.program import Program

from .buffers import BufferPool, Readback
from .buffers import _padded_bytes as padded_bytes
from .device import get_context
from .handles import GpuArray
from .kernels.api import KernelBuilder, storage_for
from .pipelines import PipelineCache


class WgpuBackend(Backend):
    """Backend driver ``wgpu``; ``adapter`` overrides ``$RUSTYASG_WGPU_ADAPTER``."""

    name = "wgpu"

    def __init__(self, adapter: Optional[str] = None):
        super().__init__()
        self.ctx = get_context(adapter)
        self.pipelines = PipelineCache(self.ctx)
        self.pool = BufferPool(self.ctx)
        self.readback = Readback(self.ctx)
        self.kernel_builder = KernelBuilder(self.ctx, self.pipelines)
        #: submits, readbacks, uploads, compiles: what tests and reports count.
        self.stats: Counter = Counter()

    # -- compilation --------------------------------------------------------------------------
    def compile(self, program: Program):
        from .compiler import ProgramCompiler

        self.ensure_resident(program.variables.values())
        self.stats["compiles"] += 1
        return ProgramCompiler(self, program).compile()

    # -- data movement ----------------------------------------------------------------------
    def instrument(self, executable, observer):
        """Time every launch of ``executable``'s runs for ``observer`` (see :mod:`.instrument`)."""
        from .instrument import instrumented

        return instrumented(executable, observer)

    def check_precision(self, precision) -> None:
        """float16 mixed precision needs ``shader-f16``; without it this backend stores and computes
        float16 as float32 (correct values, no memory or speed gain) and says so with a warning."""
        if precision.dtype == np.float16 and not self.ctx.has("shader-f16"):
            import warnings

            warnings.warn(f"wgpu adapter {self.ctx.name} does not grant shader-f16: precision='f16' falls back "
                          f"to float32 storage and arithmetic (use precision='bf16', stored as 16-bit words, "
                          f"or an adapter with shader-f16)", RuntimeWarning, stacklevel=3)

    def compute_dtype(self, dtype) -> np.dtype:
        """float64 is computed in float32 (WGSL has no f64); every other dtype as itself."""
        dtype = np.dtype(dtype)
        return np.dtype(np.float32) if dtype == np.float64 else dtype

    def memory_slots(self, executable):
        """Where each value lives, from the compiler kit's plan (``program.plan.memory``): its pooled
        buffer (aliases share their base's), the variable it is written into, or the variable itself."""
        plan, memory = executable.plan, executable.program.plan.memory
        names = {iid: var.name or f"%{iid}" for iid, var in executable.program.variables.items()}
        slots = {}
        for ins in executable.program.instrs:
            b = plan.c.base.get(ins.id, ins.id)
            if b in plan.in_place:
                slots[ins.id] = f"in place: variable {names[plan.in_place[b]]}"
            elif b in memory.buffers:
                slot = memory.buffers[b]
                slots[ins.id] = f"buffer {slot.slot} ({slot.size} B)"
            elif b in names:
                slots[ins.id] = "resident variable (device buffer)"
        return slots

    def storage(self, dtype):
        """Device storage of ``dtype`` on this adapter."""
        return storage_for(dtype, self.ctx.has("shader-f16"))

    def empty(self, shape, dtype) -> GpuArray:
        """An uninitialised device array from the pool (released when the handle dies)."""
        st = self.storage(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * st.itemsize
        return GpuArray(self.pool.acquire(max(n, 4)), shape, dtype, st, self, self.pool)

    def to_device(self, array: np.ndarray) -> GpuArray:
        array = np.asarray(array)
        h = self.empty(array.shape, array.dtype)
        self._write(h, array)
        return h

    def _write(self, handle: GpuArray, array: np.ndarray) -> None:
        data = handle.storage.to_device(array)
        if data.nbytes:
            self.ctx.queue.write_buffer(handle.buffer, 0, padded_bytes(data))
        self.stats["uploads"] += 1

    def to_host(self, handle: Any) -> np.ndarray:
        if not isinstance(handle, GpuArray):
            return np.asarray(handle)
        raw = self.readback.read(handle.buffer, handle.nbytes) if handle.nbytes else b""
        self.stats["readbacks"] += 1
        self.stats["submits"] += 1
        return handle.storage.to_host(raw, handle.shape, handle.dtype)

    def submit(self, command_buffers) -> None:
        """The one place compiled steps submit work (counted in ``stats['submits']``)."""
        self.ctx.queue.submit(command_buffers)
        self.stats["submits"] += 1

    # -- persistent state ---------------------------------------------------------------------
    def write_into(self, handle, array: np.ndarray) -> bool:
        """Compiled steps are bound to a variable's buffer, so a host ``assign`` refills it."""
        self._write(handle, array)
        return True

    def synchronize(self) -> None:
        self.ctx.synchronize()
