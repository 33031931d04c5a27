"""``cpu_attention_share``: the fused attention's training step as two kernels instead of five.

The op's gradient rule (:mod:`rustyasg.core.ops.attention`) gives each result its own
instruction: the forward, an ``attention_lse`` on the same ``q, k[, key_keep]``, and one
``attention_backward`` per gradient on the same operands. Run as they are, each of the five
passes recomputes the ``(L, S)`` scores tile by tile, and the exponentials with them. This pass
gives instructions that share their operands (and ``scale``, ``causal``) one kernel:

- ``attention`` + ``attention_lse`` -> ``cpu.attention_with_lse``: the forward's online softmax
  has the log-sum-exp at its end (``m + log(l)``); the result is ``[out | lse]`` flattened;
- two or three ``attention_backward`` -> ``cpu.attention_grads``: per tile ``p`` and ``ds`` once,
  then ``dq``, ``dk`` and ``dv`` from them (five tile products instead of eight); the result is
  ``[dq | dk | dv]`` flattened.

Each former instruction becomes a ``reshape`` of a ``slice`` of the packed result (views, no
copy), so its users and the program's outputs are unchanged. Packing needs one dtype, so the
forward and its ``lse`` share a kernel only when both are float32 or both float64 (16-bit
operands are widened to float32 before, by ``cpu_float16``). The kernels themselves are in
:mod:`.kernels.attention`.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> q = rg.input((2, 5, 4), name="q")
    >>> grads = rg.grad(rg.attention(q, q, q, causal=True).sum(), [q])
    >>> f = rg.function([q], grads, backend="cpu")
    >>> ops = [i.op for i in f.lower(np.ones((2, 5, 4), np.float32)).instrs]
    >>> [op for op in ops if "attention" in op]
    ['cpu.attention_with_lse', 'cpu.attention_grads']
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

_WRT = ("q", "k", "v")


def _attrs(ins):
    return {"scale": float(ins.attrs["scale"]), "causal": bool(ins.attrs["causal"])}


def _key(operands, ins):
    return (tuple(operands), tuple(_attrs(ins).items()))


def _groups(program) -> Dict[int, Tuple[str, tuple, List[Tuple[Optional[object], int]]]]:
    """Where a packed kernel runs (an instruction id) -> ``(op, operands, [(instruction or None, size)])``.

    The parts are in packing order; ``None`` is a gradient nobody asked for (computed all the same).
    """
    by_id = program.by_id()
    order = {ins.id: k for k, ins in enumerate(program.instrs)}
    forwards, lses, backwards = {}, {}, {}
    for ins in program.instrs:
        if ins.op == "attention":
            q, k, v, *keep = ins.inputs
            forwards.setdefault(_key((q, k, *keep), ins), ins)
        elif ins.op == "attention_lse":
            lses.setdefault(_key(ins.inputs, ins), ins)
        elif ins.op == "attention_backward":
            backwards.setdefault(_key(ins.inputs, ins), {}).setdefault(ins.attrs["wrt"], ins)
    groups = {}
    for key, fwd in forwards.items():
        lse = lses.get(key)
        if lse is None or lse.dtype != fwd.dtype or np.dtype(fwd.dtype) not in (np.float32, np.float64):
            continue  # packed in one dtype: float32 or float64 for both
        first = min((fwd, lse), key=lambda m: order[m.id])
        # the packed kernel runs where the first of the two did: the values must exist by then
        if all(order[x] < order[first.id] for x in fwd.inputs):
            groups[first.id] = ("cpu.attention_with_lse", fwd.inputs, [(fwd, fwd.size), (lse, lse.size)])
    for grads in backwards.values():
        if len(grads) < 2:
            continue
        first = min(grads.values(), key=lambda m: order[m.id])
        operands = first.inputs
        groups[first.id] = ("cpu.attention_grads", operands,
                            [(grads.get(w), by_id[operands[k]].size) for k, w in enumerate(_WRT)])
    return groups


def attention_share(program):
    """Rewrite ``program`` in place (see the module docstring); returns it."""
    from rustyasg.core.program import Instr

    groups = _groups(program)
    if not groups:
        return program
    moved = {m.id for _, _, parts in groups.values() for m, _ in parts if m is not None}
    next_id = program.new_id()
    out = []
    for ins in program.instrs:
        if ins.id not in groups:
            if ins.id not in moved:
                out.append(ins)
            continue
        op, operands, parts = groups[ins.id]
        packed = Instr(next_id, op, tuple(operands), _attrs(ins), (sum(size for _, size in parts),), ins.dtype,
                       ins.source)
        next_id += 1
        out.append(packed)
        at = 0
        for m, size in parts:
            if m is not None:
                part = Instr(next_id, "slice", (packed.id,), {"starts": (at,), "stops": (at + size,), "steps": (1,)},
                             (size,), ins.dtype, m.source)
                next_id += 1
                m.op, m.inputs, m.attrs = "reshape", (part.id,), {"shape": tuple(m.shape)}
                out += [part, m]
            at += size
    program.instrs = out
    return program
