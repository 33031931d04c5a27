"""Constant folding: evaluate instructions whose inputs are all constants.

Folding uses each op's numpy reference, so it is exact for every registered op.
Results larger than ``MAX_FOLD_ELEMENTS`` stay as computations (a huge constant
costs more memory than recomputing it), and random draws are never folded.
"""

from __future__ import annotations

import numpy as np

from ..registry import OPS
from ..shapes import is_static

MAX_FOLD_ELEMENTS = 1 << 16
SHAPE_ONLY = {"dim_size", "zeros_like", "ones_like"}  # results depend on shapes only


def constant_fold(program, max_elements: int = MAX_FOLD_ELEMENTS):
    """Fold all-constant instructions of at most ``max_elements`` results (inference folds weights: no limit)."""
    values = {}
    by_id = program.by_id()
    roots = set(program.roots())
    for ins in program.instrs:
        if ins.op == "constant":
            values[ins.id] = ins.attrs["value"]
            continue
        if ins.op in SHAPE_ONLY and ins.size <= max_elements and all(is_static(by_id[a].shape) for a in ins.inputs):
            args = [np.zeros(by_id[a].shape, by_id[a].dtype) for a in ins.inputs]
        elif (ins.inputs and all(a in values for a in ins.inputs) and OPS[ins.op].kind != "random"
              and ins.size <= max_elements):
            args = [values[a] for a in ins.inputs]
        else:
            continue
        if ins.id in roots and not ins.inputs:
            continue
        result = np.asarray(OPS[ins.op].reference(*args, **ins.attrs), dtype=ins.dtype, order="C")
        result.setflags(write=False)
        ins.op, ins.inputs, ins.attrs = "constant", (), {"value": result}
        values[ins.id] = result
    return program
