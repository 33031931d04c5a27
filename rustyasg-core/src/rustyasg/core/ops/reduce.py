"""Reductions over axes (sum, mean, max, min, prod, var, logsumexp, argmax/argmin),
softmax/log_softmax, and the broadcast/sum-to pair autograd uses for broadcasting.

``axis=None`` reduces every axis; ``keepdims`` keeps reduced axes as size 1.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((2, 3), name="x")
    >>> rg.sum(x, axis=1, keepdims=True).shape
    (2, 1)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType, as_bool, as_int, as_ints, as_opt_ints
from ..compile.shape_algebra import reduced_shape, sum_to_axes
from ..shapes import format_shape, same_dim, normalize_axes, normalize_axis, normalize_shape
from ._define import defop
from .elementwise import exp, where


def _axes_attr():
    return {"axis": Attr(as_opt_ints, None), "keepdims": Attr(as_bool, False)}


def _reduce_infer(types, axis, keepdims, **_):
    t = types[0]
    axes = normalize_axes(axis, len(t.shape))
    return TensorType(reduced_shape(t.shape, axes, keepdims), t.dtype)


def _float_reduce_infer(types, axis, keepdims, **kw):
    t = _reduce_infer(types, axis, keepdims)
    return TensorType(t.shape, t.dtype if dtypes.is_floating(t.dtype) else dtypes.DEFAULT_FLOAT)


def _np_axes(x, axis):
    return None if axis is None else normalize_axes(axis, x.ndim)


def expand_back(g, x, axis, keepdims):
    """Broadcast a reduction's gradient ``g`` back to ``x``'s shape."""
    axes = normalize_axes(axis, x.ndim)
    if not keepdims:
        g = g.reshape(reduced_shape(x.shape, axes, True))
    return broadcast_to(g, shape=x.shape)


def _sum_grad(g, y, x, axis, keepdims):
    return (expand_back(g, x, axis, keepdims),)


def _mean_grad(g, y, x, axis, keepdims):
    return (expand_back(g, x, axis, keepdims) / dim_size(x, axis=axis, dtype=g.dtype),)


def _extreme_grad(g, y, x, axis, keepdims):
    # Ties share the gradient evenly (as PyTorch's amax/amin do).
    yb = expand_back(y, x, axis, keepdims)
    mask = (x == yb).astype(g.dtype)
    count = sum(mask, axis=axis, keepdims=True)
    return (expand_back(g, x, axis, keepdims) * mask / count,)


def _prod_grad(g, y, x, axis, keepdims):
    # d prod / d x_i is the product of the other entries; y / x_i is that only without zeros.
    # With one zero, only the zero's slot gets the product of the rest; with two or more, none.
    zero = x == 0.0
    zeros = sum(zero.astype(x.dtype), axis=axis, keepdims=True)
    nonzero = where(zero, 1.0, x)
    rest = prod(nonzero, axis=axis, keepdims=True)  # product of the non-zero entries
    others = where(zeros == 0.0, rest / nonzero, where((zeros == 1.0) & zero, rest, 0.0))
    return (expand_back(g, x, axis, keepdims) * others,)


def _logsumexp_ref(x, axis, keepdims):
    m = np.max(x, axis=_np_axes(x, axis), keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=_np_axes(x, axis), keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=_np_axes(x, axis))


def _logsumexp_grad(g, y, x, axis, keepdims):
    return (expand_back(g, x, axis, keepdims) * exp(x - expand_back(y, x, axis, keepdims)),)


R = (Example((InputSpec((3, 4, 5)),), {"axis": (1,), "keepdims": False}),
     Example((InputSpec((3, 4)),), {"axis": None, "keepdims": True}),
     Example((InputSpec((2, 3, 4)),), {"axis": (0, 2), "keepdims": False}))


def _r(name, ref, grad, doc, infer=_reduce_infer, examples=R, attrs=None):
    return defop(name, infer=infer, reference=ref, grad=grad, doc=doc, kind="reduce",
                 attrs=attrs or _axes_attr(), examples=examples)


sum = _r("sum", lambda x, axis, keepdims: np.sum(x, axis=_np_axes(x, axis), keepdims=keepdims),
         _sum_grad, "Sum over ``axis`` (all axes if None).")
mean = _r("mean", lambda x, axis, keepdims: np.mean(x, axis=_np_axes(x, axis), keepdims=keepdims),
          _mean_grad, "Mean over ``axis``.", infer=_float_reduce_infer)
max = _r("max", lambda x, axis, keepdims: np.max(x, axis=_np_axes(x, axis), keepdims=keepdims),
         _extreme_grad, "Maximum over ``axis``; tied maxima share the gradient.")
min = _r("min", lambda x, axis, keepdims: np.min(x, axis=_np_axes(x, axis), keepdims=keepdims),
         _extreme_grad, "Minimum over ``axis``; tied minima share the gradient.")
prod = _r("prod", lambda x, axis, keepdims: np.prod(x, axis=_np_axes(x, axis), keepdims=keepdims),
          _prod_grad, "Product over ``axis``; the gradient is exact with zeros (as PyTorch's).",
          examples=(Example((InputSpec((3, 4), low=0.5, high=1.5),), {"axis": (1,), "keepdims": False}),))
logsumexp = _r("logsumexp", _logsumexp_ref, _logsumexp_grad, "Numerically stable ``log(sum(exp(x)))``.",
               infer=_float_reduce_infer)


def _var_ref(x, axis, keepdims, correction):
    return np.var(x, axis=_np_axes(x, axis), keepdims=keepdims, ddof=correction)


def _var_grad(g, y, x, axis, keepdims, correction):
    n = dim_size(x, axis=axis, dtype=x.dtype)
    centered = x - mean(x, axis=axis, keepdims=True)
    return (expand_back(g, x, axis, keepdims) * 2.0 * centered / (n - float(correction)),)


var = _r("var", _var_ref, _var_grad, "Variance over ``axis`` with ``correction`` (1 = unbiased, PyTorch's default).",
         infer=_float_reduce_infer, attrs={**_axes_attr(), "correction": Attr(as_int, 1)},
         examples=(Example((InputSpec((3, 5)),), {"axis": (1,), "keepdims": False, "correction": 1}),
                   Example((InputSpec((2, 3, 4)),), {"axis": None, "keepdims": True, "correction": 0})))


def _arg_infer(types, axis, keepdims):
    t = types[0]
    if axis is None:
        return TensorType((1,) * len(t.shape) if keepdims else (), dtypes.int64)
    ax = normalize_axis(axis, len(t.shape))
    return TensorType(reduced_shape(t.shape, (ax,), keepdims), dtypes.int64)


def _arg_ref(fn):
    def ref(x, axis, keepdims):
        if axis is None or x.ndim == 0:
            out = fn(x.reshape(-1))
            return np.asarray(out).reshape((1,) * x.ndim if keepdims else ())
        return fn(x, axis=axis, keepdims=keepdims)
    return ref


_ARG_ATTRS = {"axis": Attr(lambda v: None if v is None else int(v), None), "keepdims": Attr(as_bool, False)}
_ARG_EX = (Example((InputSpec((3, 5)),), {"axis": 1, "keepdims": False}, check_grad=False),)
argmax = _r("argmax", _arg_ref(np.argmax), None, "Index of the maximum along ``axis`` (first on ties).",
            infer=_arg_infer, attrs=_ARG_ATTRS, examples=_ARG_EX)
argmin = _r("argmin", _arg_ref(np.argmin), None, "Index of the minimum along ``axis`` (first on ties).",
            infer=_arg_infer, attrs=_ARG_ATTRS, examples=_ARG_EX)


# --- softmax family --------------------------------------------------------------
def _softmax_ref(x, axis):
    axis = normalize_axes(axis, x.ndim)  # a 0-d tensor is its own (single-element) axis
    z = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty axis gives empty
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_ref(x, axis):
    axis = normalize_axes(axis, x.ndim)
    z = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty axis gives empty
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _axis_infer(types, axis):
    t = types[0]
    normalize_axis(axis, len(t.shape))
    return TensorType(t.shape, t.dtype if dtypes.is_floating(t.dtype) else dtypes.DEFAULT_FLOAT)


_SM_EX = (Example((InputSpec((3, 5), low=-3, high=3),), {"axis": -1}),
          Example((InputSpec((2, 4, 3), low=-3, high=3),), {"axis": 1}))
softmax = defop("softmax", infer=_axis_infer, reference=_softmax_ref,
                grad=lambda g, y, x, axis: (y * (g - sum(g * y, axis=axis, keepdims=True)),),
                attrs={"axis": Attr(as_int, -1)}, kind="reduce", examples=_SM_EX,
                doc="Softmax along ``axis`` (max-subtracted, stable).")
log_softmax = defop("log_softmax", infer=_axis_infer, reference=_log_softmax_ref,
                    grad=lambda g, y, x, axis: (g - exp(y) * sum(g, axis=axis, keepdims=True),),
                    attrs={"axis": Attr(as_int, -1)}, kind="reduce", examples=_SM_EX,
                    doc="``log(softmax(x))`` along ``axis``, computed stably.")


# --- broadcasting pair -----------------------------------------------------------
def _broadcast_to_infer(types, shape):
    t = types[0]
    shape = normalize_shape(shape)
    if len(shape) < len(t.shape):
        raise ValueError(f"cannot broadcast {format_shape(t.shape)} to fewer dims {format_shape(shape)}")
    for d, s in zip(t.shape[::-1], shape[::-1]):
        if d != 1 and not same_dim(d, s):
            raise ValueError(f"cannot broadcast {format_shape(t.shape)} to {format_shape(shape)}")
    return TensorType(shape, t.dtype)


def _sum_to_infer(types, shape):
    t = types[0]
    shape = normalize_shape(shape)
    _broadcast_to_infer([TensorType(shape, t.dtype)], t.shape)
    return TensorType(shape, t.dtype)


def sum_to_ref(x, shape):
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting)."""
    axes = sum_to_axes(x.shape, shape)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


broadcast_to = defop("broadcast_to", infer=_broadcast_to_infer,
                     reference=lambda x, shape: np.broadcast_to(x, shape).copy(),
                     grad=lambda g, y, x, shape: (sum_to(g, shape=x.shape),),
                     attrs={"shape": Attr(as_ints)}, kind="movement",
                     examples=(Example((InputSpec((3, 1)),), {"shape": (2, 3, 4)}),),
                     doc="Broadcast to ``shape`` with numpy's rules (PyTorch's ``expand``).")
sum_to = defop("sum_to", infer=_sum_to_infer, reference=sum_to_ref,
               grad=lambda g, y, x, shape: (broadcast_to(g, shape=x.shape),),
               attrs={"shape": Attr(as_ints)}, kind="reduce",
               examples=(Example((InputSpec((2, 3, 4)),), {"shape": (3, 1)}),),
               doc="Sum a broadcast result back down to ``shape``.")


def _dim_size_infer(types, axis, dtype):
    normalize_axes(axis, len(types[0].shape))
    return TensorType((), dtype)


def _dim_size_ref(x, axis, dtype):
    return np.asarray(np.prod([x.shape[a] for a in normalize_axes(axis, x.ndim)]), dtype=dtype)


dim_size = defop("dim_size", infer=_dim_size_infer, reference=_dim_size_ref, grad=lambda g, y, x, **_: (None,),
                 attrs={"axis": Attr(as_opt_ints, None), "dtype": Attr(dtypes.as_dtype, dtypes.float32)},
                 kind="source",
                 examples=(Example((InputSpec((3, 4)),), {"axis": (1,), "dtype": dtypes.float64}, check_grad=False),),
                 doc="Number of elements along ``axis`` as a scalar; folded to a constant once shapes are known.")
