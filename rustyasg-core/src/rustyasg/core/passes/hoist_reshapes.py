"""Reshapes move ahead of the elementwise ops they follow, so those ops meet their neighbours.

A linear layer on a ``(B, T, C)`` input multiplies the flat ``(B*T, C)`` rows, adds its bias
there and reshapes back; the residual add, or the activation, then runs in ``(B, T, C)``. The
two elementwise ops iterate over different shapes, so no backend fuses them: each is its own
pass over memory. Here ``reshape(op(x, bias))``, where the reshape is the op's only reader,
becomes ``op(reshape(x), bias)``: the same values (an elementwise op does not care how its
elements are laid out in axes), with the op now in the shape of what follows.

Every operand must either have the op's full shape (it is reshaped too, and this rule is
applied to that reshape in turn) or broadcast only over leading axes the reshape leaves its
trailing axes alone on: a bias of shape ``(C,)``, ``(1, C)`` or a scalar keeps its place in
row-major order under any reshape that keeps the last axis ``C``.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x, w = rg.input((2, 3, 4), name="x"), rg.input((4, 4), name="w")
    >>> b = rg.input((4,), name="b")
    >>> h = (x.reshape((6, 4)) @ w + b).reshape((2, 3, 4))
    >>> f = rg.function([x, w, b], h + x, backend="cpu")
    >>> [i.op for i in f.lower(*[np.ones(s, np.float32) for s in [(2, 3, 4), (4, 4), (4,)]]).instrs
    ...  if i.op not in ("input",)]
    ['reshape', 'matmul', 'reshape', 'add', 'add']
"""

from __future__ import annotations

from ..ops.elementwise_table import ROWS
from ..program import Instr

#: Reductions a backend fuses with the elementwise ops before them.
REDUCTIONS = frozenset({"sum", "mean", "max", "min", "sum_to"})


def _concrete(shape) -> bool:
    return all(type(d) is int for d in shape)


def _suffix_kept(operand_shape, before, after) -> bool:
    """Whether an operand broadcasting to ``before`` broadcasts the same way to ``after``: its axes
    (leading 1s dropped) are trailing axes that ``before`` and ``after`` share."""
    shape = list(operand_shape)
    while shape and shape[0] == 1:
        shape.pop(0)
    k = len(shape)
    return len(operand_shape) <= len(after) and tuple(before[len(before) - k:]) == tuple(after[len(after) - k:])


def hoist_reshapes(program):
    """Rewrite ``reshape(elementwise(...))`` into ``elementwise(reshape(...), ...)`` (module docstring)."""
    by_id = program.by_id()
    users = program.users()
    readers = {i: len(r) for i, r in users.items()}
    for root in program.roots():
        readers[root] = readers.get(root, 0) + 1
    next_id = [program.new_id()]
    kept = []

    def movable(op, target) -> bool:
        # the op's full-shape operands move with it; one that is an elementwise op read elsewhere too
        # would stay behind in the old shape, and the pair that fused before would no longer
        if op.op not in ROWS or readers.get(op.id) != 1 or not (_concrete(op.shape) and _concrete(target)):
            return False
        operands = [by_id[a] for a in op.inputs]
        full = [a.shape == op.shape for a in operands]
        return (any(full) and all(f or _suffix_kept(a.shape, op.shape, target) for a, f in zip(operands, full))
                and all(a.op not in ROWS or movable(a, target) for a, f in zip(operands, full) if f))

    def fuses_after(reshape) -> bool:
        """Whether an elementwise op or a reduction reads the reshape (else moving gains nothing)."""
        return any(by_id[r].op in ROWS or by_id[r].op in REDUCTIONS for r in users.get(reshape.id, ()))

    def hoist(reshape: Instr) -> None:
        """Turn ``reshape`` (of a movable op) into that op over reshaped operands, in place."""
        op = by_id[reshape.inputs[0]]
        inputs = []
        for a in (by_id[i] for i in op.inputs):
            if a.shape != op.shape:
                inputs.append(a.id)
                continue
            new = Instr(next_id[0], "reshape", (a.id,), {"shape": tuple(reshape.shape)}, tuple(reshape.shape),
                        a.dtype, reshape.source)
            next_id[0] += 1
            by_id[new.id] = new
            readers[new.id] = 1
            if movable(a, new.shape):
                hoist(new)
            kept.append(new)
            inputs.append(new.id)
        reshape.op, reshape.inputs, reshape.attrs, reshape.source = op.op, tuple(inputs), dict(op.attrs), op.source
        readers[op.id] = 0  # the op itself is dead now: dce drops it

    for ins in program.instrs:
        if ins.op == "reshape" and fuses_after(ins) and movable(by_id[ins.inputs[0]], ins.shape):
            hoist(ins)
        kept.append(ins)
    program.instrs = [i for i in kept if readers.get(i.id, 1) or i.op not in ROWS or i.id in program.roots()]
    return program
