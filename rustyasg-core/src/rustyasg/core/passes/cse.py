"""Common-subexpression elimination: identical (op, inputs, attrs) compute once."""

from __future__ import annotations

import numpy as np

from .rewrite import replace_uses

# Ops whose every instance is distinct even with equal inputs and attributes.
NOT_MERGEABLE = {"input", "variable"}


def _key_of(value):
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes() if value.size <= 4096 else id(value))
    if isinstance(value, (list, tuple)):
        return tuple(_key_of(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _key_of(v)) for k, v in value.items()))
    if isinstance(value, np.dtype):
        return value.str
    return value


def cse(program):
    seen, mapping, kept = {}, {}, []
    for ins in program.instrs:
        ins.inputs = tuple(mapping.get(a, a) for a in ins.inputs)
        if ins.op in NOT_MERGEABLE:
            kept.append(ins)
            continue
        key = (ins.op, ins.inputs, _key_of(ins.attrs), ins.dtype.str, ins.shape)
        if key in seen:
            mapping[ins.id] = seen[key]
        else:
            seen[key] = ins.id
            kept.append(ins)
    program.instrs = kept
    return replace_uses(program, mapping)
