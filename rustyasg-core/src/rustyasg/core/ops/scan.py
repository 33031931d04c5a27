"""Scans along one axis (cumsum, cumprod, logcumsumexp, the running arg-max/min) and argsort.

A scan keeps its operand's shape: ``out[..., i, ...]`` combines ``x[..., :i+1, ...]`` along
``axis``. The running extremes are declared as index ops (``cummax_indices``); their values are
``gather(x, indices)``, whose gradient routes ``g`` to the index as PyTorch's does. ``argsort``
is stable and orders NaN above every number (last ascending, first descending), as PyTorch;
``sort``, ``topk`` and ``median`` are built from it (:mod:`rustyasg.core.reductions`).

Backends compute scans over the ``(outer, axis, inner)`` view of the operand
(:data:`SCAN_KINDS` names the combine step of each).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4,), name="x")
    >>> rg.function([x], rg.cumsum(x, 0), backend="reference")(np.array([1, 2, 3, 4], np.float32))
    array([ 1.,  3.,  6., 10.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType, as_bool, as_int
from ..shapes import normalize_axis
from ._define import defop
from .elementwise import exp, log, where
from .movement import flip

__all__ = ["cumsum", "cumprod", "logcumsumexp", "cummax_indices", "cummin_indices", "argsort", "SCAN_KINDS"]

#: The running combine of every scan op: what a backend's scan kernel does per step.
SCAN_KINDS = {"cumsum": "sum", "cumprod": "prod", "logcumsumexp": "logaddexp",
              "cummax_indices": "argmax", "cummin_indices": "argmin"}


def _axis(x, axis):
    return normalize_axis(axis, x.ndim)


def _scan_view(x, axis, fn):
    """Apply ``fn(view, axis)`` to ``x`` (0-d tensors as a 1-element axis), same shape back."""
    if x.ndim == 0:
        return np.asarray(fn(x.reshape(1), 0)).reshape(())
    return fn(x, _axis(x, axis))


def _count_infer(types, axis):
    t = types[0]
    normalize_axis(axis, len(t.shape))
    return TensorType(t.shape, dtypes.int64 if t.dtype == dtypes.bool_ else t.dtype)


def _float_infer(types, axis):
    t = types[0]
    normalize_axis(axis, len(t.shape))
    if not dtypes.is_floating(t.dtype):
        raise TypeError(f"needs a floating operand, got {t.dtype}; cast it first")
    return t


def _index_infer(types, axis):
    t = types[0]
    normalize_axis(axis, len(t.shape))
    if t.dtype == dtypes.bool_:
        raise TypeError("needs a numeric operand, got bool; cast it first")
    return TensorType(t.shape, dtypes.int64)


def reverse_cumsum(g, axis):
    """``out[i] = sum(g[i:])`` along ``axis`` (the transpose of cumsum)."""
    if g.ndim == 0:
        return g
    ax = normalize_axis(axis, g.ndim)
    return flip(cumsum(flip(g, axes=(ax,)), axis=ax), axes=(ax,))


def _cumprod_grad(g, y, x, axis):
    # d y_j / d x_i = prod_{k <= j, k != i} x_k. Before the first zero it is y_j / x_i; at the first
    # zero it is the running product with that zero taken as 1; after it, every product holds the zero.
    zero = x == 0.0
    zeros_so_far = cumsum(zero.astype(x.dtype), axis=axis)
    before = zeros_so_far == 0.0
    first = zero & (zeros_so_far == 1.0)
    safe = where(before, x, 1.0)
    plain = reverse_cumsum(g * y, axis) / safe
    at_zero = reverse_cumsum(g * cumprod(where(first, 1.0, x), axis=axis), axis)
    return (where(before, plain, where(first, at_zero, 0.0)),)


def _reverse_logcumsumexp(v, axis):
    if v.ndim == 0:
        return v
    ax = normalize_axis(axis, v.ndim)
    return flip(logcumsumexp(flip(v, axes=(ax,)), axis=ax), axes=(ax,))


def _logcumsumexp_grad(g, y, x, axis):
    # sum_{j >= i} g_j exp(x_i - y_j), with the positive and negative parts of g summed in log space.
    pos = where(g > 0.0, g, 0.0)
    neg = where(g < 0.0, -g, 0.0)
    up = exp(x + _reverse_logcumsumexp(log(pos) - y, axis))
    down = exp(x + _reverse_logcumsumexp(log(neg) - y, axis))
    return (up - down,)


def _running_index_ref(better):
    def ref(x, axis):
        def run(v, ax):
            v = np.moveaxis(v, ax, 0)
            out = np.zeros(v.shape, np.int64)
            if v.shape[0]:
                best, k = v[0].copy(), np.zeros(v.shape[1:], np.int64)
                for r in range(v.shape[0]):
                    # PyTorch's rule: a later tie or a NaN takes over; after a NaN only a NaN does.
                    take = better(v[r], best) | np.isnan(v[r]) if r else np.ones(v.shape[1:], bool)
                    best = np.where(take, v[r], best)
                    k = np.where(take, r, k)
                    out[r] = k
            return np.moveaxis(out, 0, ax)
        with np.errstate(invalid="ignore"):
            return _scan_view(x, axis, run)
    return ref


def _logcumsumexp_ref(x, axis):
    with np.errstate(invalid="ignore"):
        return _scan_view(x, axis, lambda v, ax: np.logaddexp.accumulate(v, axis=ax))


_AXIS = {"axis": Attr(as_int)}
_EX = (Example((InputSpec((3, 5)),), {"axis": 1}), Example((InputSpec((4, 2, 3)),), {"axis": 0}))
_POS_EX = (Example((InputSpec((3, 5), low=0.5, high=1.5),), {"axis": 1}),
           Example((InputSpec((4, 2, 3), low=-1.5, high=1.5, away_from=(0.0,), margin=0.2),), {"axis": 0}))
_IDX_EX = (Example((InputSpec((3, 6)),), {"axis": 1}, check_grad=False),
           Example((InputSpec((5, 2, 3)),), {"axis": 0}, check_grad=False))


def _scan(name, infer, ref, grad, doc, examples=_EX):
    return defop(name, infer=infer, reference=ref, grad=grad, attrs=dict(_AXIS), kind="scan", examples=examples,
                 doc=doc)


cumsum = _scan("cumsum", _count_infer,
               lambda x, axis: _scan_view(x, axis, lambda v, ax: np.cumsum(v, axis=ax, dtype=_count_dtype(v))),
               lambda g, y, x, axis: (reverse_cumsum(g, axis),),
               "Running sum along ``axis`` (``torch.cumsum``); bool counts as int64.")
cumprod = _scan("cumprod", _count_infer,
                lambda x, axis: _scan_view(x, axis, lambda v, ax: np.cumprod(v, axis=ax, dtype=_count_dtype(v))),
                _cumprod_grad, "Running product along ``axis`` (``torch.cumprod``); the gradient is exact with zeros.",
                examples=_POS_EX)
logcumsumexp = _scan("logcumsumexp", _float_infer, _logcumsumexp_ref, _logcumsumexp_grad,
                     "Running ``log(sum(exp(x)))`` along ``axis``, without overflow (``torch.logcumsumexp``).")
cummax_indices = _scan("cummax_indices", _index_infer, _running_index_ref(np.greater_equal), None,
                       "Index of the running maximum along ``axis`` (the last among ties; a NaN once seen stays, "
                       "as ``torch.cummax``).", examples=_IDX_EX)
cummin_indices = _scan("cummin_indices", _index_infer, _running_index_ref(np.less_equal), None,
                       "Index of the running minimum along ``axis`` (the last among ties; a NaN once seen stays, "
                       "as ``torch.cummin``).", examples=_IDX_EX)


def _count_dtype(v):
    return np.int64 if v.dtype == np.bool_ else v.dtype


# --- argsort -------------------------------------------------------------------------------------
def argsort_ref(x, axis, descending):
    """Stable order along ``axis``; NaN above every number (last ascending, first descending)."""
    def run(v, ax):
        v = np.moveaxis(v, ax, -1)
        nan = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
        key = np.where(nan, 0, v)
        if descending:
            order = np.lexsort((-key if v.dtype.kind == "f" else _desc_int(key), ~nan), axis=-1)
        else:
            order = np.lexsort((key, nan), axis=-1)
        return np.moveaxis(order.astype(np.int64), -1, ax)
    return _scan_view(x, axis, run)


def _desc_int(key):
    return -key.astype(np.float64) if key.dtype.kind != "u" else np.iinfo(np.uint64).max - key


def _argsort_infer(types, axis, descending):
    return _index_infer(types, axis)


argsort = defop("argsort", infer=_argsort_infer, reference=argsort_ref, grad=None, kind="scan",
                attrs={"axis": Attr(as_int, -1), "descending": Attr(as_bool, False)},
                examples=(Example((InputSpec((3, 7)),), {"axis": 1, "descending": False}, check_grad=False),
                          Example((InputSpec((4, 2, 3)),), {"axis": 0, "descending": True}, check_grad=False)),
                doc="Indices that sort ``x`` along ``axis`` (stable; NaN above every number, as PyTorch).")
