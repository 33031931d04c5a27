"""Building new instructions inside a whole-step pass: shapes and dtypes from the op's own rule.

Passes that rewrite a lowered :class:`~rustyasg.core.program.Program` (mixed precision,
loss scaling, rematerialization) add instructions; :class:`Emitter` gives each a fresh id
and infers its shape and dtype with the op's declared ``infer``, exactly as building the
graph would.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.core.program import lower
    >>> x = rg.input((3,), name="x")
    >>> p = lower([x], [x * 2.0], [], [((3,), np.float32)])
    >>> e = Emitter(p)
    >>> c = e.instr("cast", [x.id], dtype=rg.float16)
    >>> (c.op, c.dtype, c.shape)
    ('cast', dtype('float16'), (3,))
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from ..program import Instr, Program
from ..registry import OPS, TensorType


def first_free_id(program: Program) -> int:
    """An id above every instruction of ``program`` and every graph node made so far (variables
    made after the graph, such as a loss scaler's, have ids above the program's; passes number
    their new instructions from the program's largest id)."""
    from .. import graph

    return max(program.new_id(), next(graph._ids))


class Emitter:
    """Makes instructions for ``program`` (it does not insert them: the pass places them)."""

    def __init__(self, program: Program):
        self.program = program
        self.types: Dict[int, TensorType] = {i.id: TensorType(i.shape, i.dtype) for i in program.instrs}
        self._next = first_free_id(program)

    def fresh_id(self) -> int:
        self._next += 1
        return self._next - 1

    def instr(self, op: str, inputs: Sequence[int], source=None, name=None, **attrs) -> Instr:
        """A new ``op(*inputs, **attrs)``; its type is inferred from the operands' current types."""
        full = OPS[op].check_attrs(attrs)
        t = OPS[op].infer([self.types[a] for a in inputs], **full)
        ins = Instr(self.fresh_id(), op, tuple(inputs), full, tuple(int(d) for d in t.shape), np.dtype(t.dtype),
                    source, name)
        self.types[ins.id] = TensorType(ins.shape, ins.dtype)
        return ins

    def constant(self, value, dtype) -> Instr:
        """A constant instruction holding ``value`` as ``dtype``."""
        arr = np.array(value, dtype=dtype)
        arr.setflags(write=False)
        ins = Instr(self.fresh_id(), "constant", (), {"value": arr}, tuple(arr.shape), arr.dtype)
        self.types[ins.id] = TensorType(ins.shape, ins.dtype)
        return ins

    def retype(self, ins: Instr) -> None:
        """Re-infer ``ins``'s dtype and shape after its operands changed (raises like ``infer``)."""
        t = OPS[ins.op].infer([self.types[a] for a in ins.inputs], **ins.attrs)
        ins.dtype, ins.shape = np.dtype(t.dtype), tuple(int(d) for d in t.shape)
        self.types[ins.id] = TensorType(ins.shape, ins.dtype)

    def note(self, ins: Instr) -> None:
        """Record the current type of an instruction the pass changed by hand."""
        self.types[ins.id] = TensorType(ins.shape, ins.dtype)
