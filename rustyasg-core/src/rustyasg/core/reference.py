"""The reference backend: runs programs with each op's float64 numpy reference.

It is the semantic oracle the conformance kit compares backends against, and a
debugging aid (every intermediate is a plain numpy array). It is not a fast path.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((2,), "float32", name="x")
    >>> rg.function([x], rg.exp(x), backend="reference")(np.zeros(2, np.float32))
    array([1., 1.], dtype=float32)
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np

from .dtypes import is_floating
from .executor import Backend, Executable
from .program import Program
from .registry import OPS


def _as_f64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if is_floating(a.dtype) else a


class ReferenceExecutable(Executable):
    def __init__(self, backend: "ReferenceBackend", program: Program):
        self.backend = backend
        self.program = program
        self.steps = [(ins.id, ins.op, OPS[ins.op].reference, ins.inputs, ins.attrs, ins.dtype)
                      for ins in program.instrs]

    def run(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        env = dict(zip(self.program.inputs, inputs))
        variables = self.program.variables
        for iid, op, ref, args, attrs, dtype in self.steps:
            if op == "input":
                continue
            if op == "variable":
                env[iid] = self.backend.resident(variables[iid])
            elif op == "constant":
                env[iid] = attrs["value"]
            else:
                out = ref(*[_as_f64(env[a]) for a in args], **attrs)
                env[iid] = np.asarray(out).astype(dtype, copy=False)
        new_values = [(var, np.array(env[vid], dtype=var.dtype, copy=True)) for var, vid in self.program.updates]
        for var, value in new_values:
            self.backend.set_resident(var, value)
        return [np.array(env[o], copy=True) for o in self.program.outputs]


class ReferenceBackend(Backend):
    """numpy float64 references for every op: correct by construction, slow by design."""

    name = "reference"

    def compile(self, program: Program) -> ReferenceExecutable:
        missing = sorted({i.op for i in program.instrs if i.op not in OPS and i.op not in ("input", "variable", "constant")})
        if missing:
            from .errors import MissingKernelError

            raise MissingKernelError(f"reference backend: unknown op(s) {missing}")
        return ReferenceExecutable(self, program)

    def to_device(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True)

    def to_host(self, handle: np.ndarray) -> np.ndarray:
        return handle
