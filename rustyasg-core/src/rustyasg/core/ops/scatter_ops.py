"""``scatter_reduce``: write or reduce ``src`` into a copy of ``x`` at integer positions along an axis.

One op covers ``torch.scatter`` (``reduce="assign"``: the later index position wins where
two write one place) and ``torch.scatter_reduce`` (``"sum"``, ``"prod"``, ``"mean"``,
``"amax"``, ``"amin"``, with or without ``x``'s own value, ``include_self``). The
addressing is ``torch.scatter``'s: ``out[..., idx[..., j, ...], ...] ⊕= src[..., j, ...]``,
the index may be smaller than ``x`` off the axis, negative indices count from the end.

Gradients follow PyTorch's rules (``scatter_reduce_backward``): for ``prod`` the zero cases
are handled exactly, for ``amax``/``amin`` a tie shares the gradient evenly, and for
``assign`` a value overwritten by a later one gets none.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> y = rg.scatter_reduce(rg.zeros((3,)), 0, rg.constant([0, 2, 0]), rg.constant([1., 2., 3.]), "sum")
    >>> y.tolist()
    [4.0, 0.0, 2.0]
"""

from __future__ import annotations

import numpy as np

from ..registry import Attr, Example, InputSpec, TensorType, as_int
from ..shapes import normalize_axis
from ._define import defop
from .movement import _check_constant_index, _scatter_add_infer, gather, scatter_add, zeros_like_shape

REDUCTIONS = ("assign", "sum", "prod", "mean", "amax", "amin")


def _check_reduce(value) -> str:
    value = str(value)
    if value not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {value!r}")
    return value


def _infer(ts, axis, reduce, include_self):
    if reduce == "mean" and ts[0].dtype.kind == "b":
        raise TypeError("reduce='mean' needs a numeric dtype, got bool")
    return _scatter_add_infer(ts, axis)


def _combine(reduce, a, b):
    if reduce in ("sum", "mean"):
        return a + b
    if reduce == "prod":
        return a * b
    if reduce == "amax":
        return np.maximum(a, b)  # NaN propagates, as in PyTorch
    if reduce == "amin":
        return np.minimum(a, b)
    return b  # assign: the later write wins


def scatter_reduce_reference(x, idx, src, axis, reduce, include_self):
    """Float64 oracle: one pass over the index in C order (so 'later' is well defined)."""
    shape = x.shape or (1,)
    ax = axis % len(shape)
    n = shape[ax]
    out = np.array(x, copy=True).reshape(shape)
    hit = np.zeros(shape, bool)
    count = np.zeros(shape, np.int64)
    src = np.asarray(src).reshape(idx.shape)
    for pos in np.ndindex(idx.shape):
        j = int(idx[pos])
        j = j + n if j < 0 else j
        target = (pos or (0,))[:ax] + (j,) + (pos or (0,))[ax + 1:]
        fresh = not hit[target] and (reduce == "assign" or not include_self)
        out[target] = src[pos] if fresh else _combine(reduce, out[target], src[pos])
        hit[target] = True
        count[target] += 1
    if reduce == "mean":
        total = count + (1 if include_self else 0)
        safe = np.maximum(total, 1)
        mean = out // safe if out.dtype.kind in "iu" else out / safe
        out = np.where(hit, mean, out).astype(out.dtype)
    return out.reshape(x.shape)


def _grad(g, y, x, idx, src, axis, reduce, include_self):
    from .elementwise import equal, where
    from .misc import ones_like_scalar

    zeros = zeros_like_shape(x)
    scattered = scatter_add(zeros, idx, ones_like_scalar(src), axis=axis) > 0.0
    if reduce == "assign" or (not include_self and reduce in ("sum", "mean")):
        g_self = where(scattered, 0.0, g)
    else:
        g_self = g
    if reduce == "assign":
        # Only the last write to a position reaches the output: mark it by scattering positions.
        along = _positions_along(src, axis)
        last = scatter_reduce_op(zeros - 1.0, idx, along, axis=axis, reduce="amax", include_self=False)
        g_src = where(equal(gather(last, idx, axis=axis), along), gather(g, idx, axis=axis), 0.0)
    elif reduce == "sum":
        g_src = gather(g, idx, axis=axis)
    elif reduce == "mean":
        count = scatter_add(zeros, idx, ones_like_scalar(src), axis=axis)
        if include_self:
            count = count + 1.0
        count = where(count > 0.0, count, 1.0)
        g_self = g_self / count
        g_src = gather(g / count, idx, axis=axis)
    elif reduce == "prod":
        g_self, g_src = _prod_grads(g, y, x, idx, src, axis, include_self, scattered)
    else:  # amax / amin: the gradient is shared among the elements equal to the result
        self_is = equal(x, y)
        src_is = equal(src, gather(y, idx, axis=axis))
        count = scatter_add(where(self_is, 1.0, zeros) if include_self else zeros, idx,
                            where(src_is, 1.0, zeros_like_shape(src)), axis=axis)
        share = g / where(count > 0.0, count, 1.0)
        g_self = where(self_is, share, 0.0) if include_self else where(scattered, 0.0, g)
        g_src = where(src_is, gather(share, idx, axis=axis), 0.0)
    return (g_self, None, g_src)


def _positions_along(src, axis):
    """``src``-shaped float tensor whose value is each element's position along ``axis``."""
    from ..graph import constant
    from .reduce import broadcast_to

    shape = tuple(src.shape) or (1,)
    ax = axis % len(shape)
    pos = np.arange(shape[ax], dtype=src.dtype).reshape((-1,) + (1,) * (len(shape) - ax - 1))
    out = broadcast_to(constant(pos), shape=shape)
    return out if src.shape else out.reshape(())


def _prod_grads(g, y, x, idx, src, axis, include_self, scattered):
    """PyTorch's exact product gradient: an element that is the only zero gets the product of the rest."""
    from .elementwise import equal, logical_and, where

    zeros = zeros_like_shape(x)
    if include_self:
        masked_self = where(equal(x, 0.0), 1.0, x)
        masked_self_result = scatter_reduce_op(masked_self, idx, src, axis=axis, reduce="prod", include_self=True)
        g_self = g * masked_self_result / masked_self
    else:
        g_self = where(scattered, 0.0, g)
    src_zero = equal(src, 0.0)
    zero_count = scatter_add(zeros, idx, where(src_zero, 1.0, zeros_like_shape(src)), axis=axis)
    zeros_per_target = gather(zero_count, idx, axis=axis)
    single_zero = logical_and(src_zero, equal(zeros_per_target, 1.0))
    masked_src = where(single_zero, 1.0, src)
    masked_src_result = scatter_reduce_op(x, idx, masked_src, axis=axis, reduce="prod", include_self=include_self)
    g_src = where(single_zero, gather(g * masked_src_result, idx, axis=axis),
                  gather(g * y, idx, axis=axis) / where(src_zero, 1.0, src))
    return g_self, g_src


def _idx_spec(low, high, shape):
    return InputSpec(shape, dtype="int64", low=low, high=high, differentiable=False)


_EXAMPLES = tuple(
    Example((InputSpec((4, 5), low=0.5, high=1.5), _idx_spec(-5, 5, (3, 4)), InputSpec((3, 4), low=0.5, high=1.5)),
            {"axis": 1, "reduce": r, "include_self": s})
    for r, s in (("assign", True), ("sum", False), ("prod", True), ("prod", False), ("mean", True),
                 ("mean", False), ("amax", True), ("amin", False))) + (
    Example((InputSpec((6,)), _idx_spec(0, 6, (9,)), InputSpec((9,))), {"axis": 0, "reduce": "amax",
                                                                       "include_self": False}),
    Example((InputSpec((2, 3, 4)), _idx_spec(0, 3, (2, 5, 4)), InputSpec((2, 5, 4))),
            {"axis": 1, "reduce": "assign", "include_self": True}),
)

scatter_reduce_op = defop(
    "scatter_reduce", infer=_infer, reference=scatter_reduce_reference, grad=_grad,
    check_values=_check_constant_index,
    attrs={"axis": Attr(as_int), "reduce": Attr(_check_reduce, "sum"), "include_self": Attr(bool, True)},
    kind="movement", num_inputs=3, examples=_EXAMPLES,
    doc="``torch.scatter_reduce`` / ``torch.scatter``: reduce ``src`` into a copy of ``x`` at ``idx`` along "
        "``axis`` (assign, sum, prod, mean, amax, amin; ``include_self``).")


def target_axis(x_ndim: int, axis: int) -> int:
    """The normalized scatter axis (a 0-d ``x`` is viewed as shape (1,))."""
    return normalize_axis(axis, max(x_ndim, 1))


__all__ = ["scatter_reduce_op", "scatter_reduce_reference", "REDUCTIONS", "TensorType"]
