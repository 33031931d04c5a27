"""ONNX translator of ``scatter_reduce`` through ``ScatterElements`` (opset 18 reductions).

``include_self=True`` maps straight onto a reduction (none, add, mul, max, min). Without
``x``'s own value, the targets are first overwritten with the reduction's identity (0, 1,
-inf, +inf) and then reduced. ``mean`` is a sum divided by the per-target count (itself a
scatter-add of ones), plus one for ``x``'s value when it is included.

Example:
    >>> sorted(TRANSLATORS)
    ['scatter_reduce']
"""

from __future__ import annotations

import numpy as np

from .ops_movement import _as_1d

_REDUCTION = {"assign": "none", "sum": "add", "mean": "add", "prod": "mul", "amax": "max", "amin": "min"}
_IDENTITY = {"sum": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}


def scatter_reduce(b, node):
    axis = node.attrs["axis"] % max(node.rank, 1)
    reduce, include_self = node.attrs["reduce"], bool(node.attrs["include_self"])
    dtype = node.dtype

    def scatter(data, idx, src, reduction):
        return b.op("ScatterElements", data, idx, src, axis=axis, reduction=reduction)

    def build(xs):
        x, idx, src = xs
        if reduce == "mean":
            zeros = b.op("Mul", x, b.const(0, dtype))
            count = scatter(zeros, idx, b.op("Add", b.op("Mul", src, b.const(0, dtype)), b.const(1, dtype)), "add")
            if include_self:
                return b.op("Div", scatter(x, idx, src, "add"), b.op("Add", count, b.const(1, dtype)))
            total = scatter(zeros, idx, src, "add")
            hit = b.op("Greater", count, b.const(0, dtype))
            safe = b.op("Max", count, b.const(1, dtype))
            return b.op("Where", hit, b.op("Div", total, safe), x)
        data = x
        if not include_self and reduce != "assign":
            fill = b.op("Add", b.op("Mul", src, b.const(0, dtype)), b.const(_IDENTITY[reduce], dtype)) \
                if np.isfinite(_IDENTITY[reduce]) else \
                b.op("Expand", b.const(_IDENTITY[reduce], dtype), b.op("Shape", src))
            data = scatter(x, idx, fill, "none")
        return scatter(data, idx, src, _REDUCTION[reduce])

    return _as_1d(b, node, build)


TRANSLATORS = {"scatter_reduce": scatter_reduce}
