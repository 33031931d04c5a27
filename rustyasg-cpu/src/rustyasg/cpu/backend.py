"""The cpu backend: numba kernels, fusion and memory planning behind the executor protocol.

Variables live in host numpy arrays owned by the backend. Their arrays never
change identity (a re-upload copies into the same array through
:meth:`CpuBackend.write_into`), because compiled executables bind them once;
optimizer updates are written into them in place.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.ones(3, np.float32), name="w")
    >>> x = rg.input((3,), name="x")
    >>> step = rg.function([x], (w * x).sum(), updates={w: w - 0.5 * x}, backend="cpu")
    >>> float(step(np.ones(3, np.float32))), w.value().tolist()
    (3.0, [0.5, 0.5, 0.5])
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.executor import Backend
from rustyasg.core.program import Program

from .precompile import start_jit


class CpuBackend(Backend):
    """The default backend (driver name ``cpu``)."""

    name = "cpu"

    def __init__(self):
        super().__init__()
        from .precompile import start_warm_worker

        start_warm_worker()  # with compile workers enabled: it starts up while this process does
        #: Seconds spent starting the JIT runtime when the backend was created (see precompile.start_jit).
        self.startup_seconds = start_jit()

    def compile(self, program: Program):
        from rustyasg.core.plugins import load_kernels

        from .executable import CpuExecutable

        table = load_kernels(self.name)
        self.ensure_resident(program.variables.values())
        return CpuExecutable(self, program, table)

    def instrument(self, executable, observer):
        """Report every kernel of ``executable``'s runs to ``observer`` (see :mod:`.instrument`)."""
        from .instrument import instrumented

        return instrumented(executable, observer)

    def memory_slots(self, executable):
        """Arena offsets of planned buffers; updates written in place name their variable."""
        memory = executable.program.plan.memory
        slots = {k: f"arena+{b.slot}" for k, b in memory.buffers.items() if isinstance(k, int)}
        for var, vid in executable.program.updates:
            if vid not in slots:
                slots[vid] = f"in place: variable {var.name or var.id}"
        for vid in executable.program.variables:
            slots.setdefault(vid, "resident variable (backend-owned array)")
        return slots

    def to_device(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True, order="C")

    def to_host(self, handle: np.ndarray) -> np.ndarray:
        return handle

    def write_into(self, handle: np.ndarray, array: np.ndarray) -> bool:
        """Refill a resident variable's array in place: executables stay bound to it."""
        if handle.shape != array.shape or handle.dtype != array.dtype:
            return False
        np.copyto(handle, array)
        return True


