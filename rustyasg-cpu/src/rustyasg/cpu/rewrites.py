"""CPU graph rewrites that run before fusion.

``cpu_broadcast_elim``: an explicit ``broadcast_to`` feeding elementwise ops is
dropped when the op's own broadcasting gives the same result. Gradients of
reductions produce these (``broadcast_to(reshape(g))``); as a view with zero
strides it would otherwise force a copy before a fused kernel, which reads a
broadcast operand directly.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4, 3), name="x")
    >>> (g,) = rg.grad(rg.sum(rg.tanh(x)), [x])
    >>> f = rg.function([x], g, backend="cpu")
    >>> "broadcast_to" in [i.op for i in f.lower(np.ones((4, 3), np.float32)).instrs]
    False
"""

from __future__ import annotations

from rustyasg.core.shapes import broadcast_shapes

from .kernels.protocol import Elementwise


def broadcast_elim(program):
    from .fusion import _kernel_table

    table = _kernel_table()
    by_id = program.by_id()
    changed = False
    for ins in program.instrs:
        if not isinstance(table.get(ins.op), Elementwise):
            continue
        new = list(ins.inputs)
        for k, a in enumerate(new):
            src = by_id[a]
            if src.op != "broadcast_to":
                continue
            trial = new[:k] + [src.inputs[0]] + new[k + 1:]
            try:
                shape = broadcast_shapes(*[by_id[t].shape for t in trial])
            except ValueError:
                continue
            if tuple(shape) == tuple(ins.shape):
                new = trial
        if tuple(new) != ins.inputs:
            ins.inputs = tuple(new)
            changed = True
    if changed:
        from rustyasg.core.passes import dce

        program = dce(program)
    return program
