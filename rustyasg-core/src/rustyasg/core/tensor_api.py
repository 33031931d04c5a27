"""Operators, methods and indexing of :class:`~rustyasg.core.graph.Tensor`.

Kept apart from ``graph.py`` so the node type does not depend on the op set.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((4, 5), name="x")
    >>> (x[1:, ::2].T @ x[1:]).shape
    (3, 5)
"""

from __future__ import annotations

import numpy as np

from . import dtypes, functional as F, movement_functions as MF, ops
from . import creation as _creation, math_functions as _math, reductions as _reductions
from .builders import builder
from .graph import Tensor, as_tensor, constant
from .shapes import Dim, normalize_axis


def _binary(op, reverse=False):
    def method(self, other):
        return op(other, self) if reverse else op(self, other)
    return method


@builder("getitem")
def _getitem(x: Tensor, key):
    """numpy basic indexing plus one integer-array index (gathered with ``take``)."""
    if not isinstance(key, tuple):
        key = (key,)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        used = sum(1 for k in key if k is not None and k is not Ellipsis)
        key = key[:i] + (slice(None),) * (x.ndim - used) + key[i + 1:]
    used = sum(1 for k in key if k is not None)
    if used > x.ndim:
        raise IndexError(f"too many indices ({used}) for {x.describe()}")
    key = key + (slice(None),) * (x.ndim - used)

    starts, stops, steps, out_shape, advanced = [], [], [], [], []
    axis = 0
    for k in key:
        if k is None:
            out_shape.append(("new",))
            continue
        dim = x.shape[axis]
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if isinstance(dim, Dim):
                raise IndexError(f"integer index along symbolic dimension {dim}; use take()")
            k = int(k)
            if not -dim <= k < dim:
                raise IndexError(f"index {k} is out of bounds for axis {axis} with size {dim}")
            k %= dim
            starts.append(k), stops.append(k + 1), steps.append(1)
            out_shape.append(("drop",))
        elif isinstance(k, slice):
            starts.append(0 if k.start is None and (k.step or 1) > 0 else k.start)
            stops.append(k.stop)
            steps.append(1 if k.step is None else int(k.step))
            out_shape.append(("keep", axis))
        else:
            idx = as_tensor(k) if not isinstance(k, Tensor) else k
            if idx.dtype == dtypes.bool_:
                raise IndexError("boolean-mask indexing gives a data-dependent shape; use where() instead")
            if idx.dtype not in (dtypes.int32, dtypes.int64):
                raise IndexError(f"array indices must be integers, got {idx.dtype}")
            advanced.append((axis, idx))
            starts.append(0), stops.append(None), steps.append(1)
            out_shape.append(("adv", axis))
        axis += 1
    y = x
    if any((a, b, s) != (0, None, 1) for a, b, s in zip(starts, stops, steps)):
        y = ops.slice_(y, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    # Integer indexing drops axes; None adds them; the array indices gather.
    shape, adv_pos = [], []
    for entry in out_shape:
        if entry[0] == "new":
            shape.append(1)
        elif entry[0] == "keep":
            shape.append(y.shape[entry[1]])
        elif entry[0] == "adv":
            adv_pos.append(len(shape))
            shape.append(y.shape[entry[1]])
    if tuple(shape) != tuple(y.shape):
        y = ops.reshape(y, shape=tuple(shape))
    if len(advanced) == 1:
        y = ops.take(y, advanced[0][1], axis=adv_pos[0])
    elif advanced:
        # PyTorch's rule (numpy's, with integers as plain selections): arrays on adjacent axes put
        # the broadcast index axes in their place, arrays apart put them first.
        apart = adv_pos[-1] - adv_pos[0] + 1 != len(adv_pos)
        y = _gather_advanced(y, adv_pos, [i for _, i in advanced], apart)
    return y


def _gather_advanced(y: Tensor, positions, indices, apart: bool) -> Tensor:
    """Several integer arrays (numpy advanced indexing): broadcast them, fold them into one flat index
    over the indexed axes (moved together), and ``take`` once."""
    sizes = [y.shape[p] for p in positions]
    if any(isinstance(n, Dim) for n in sizes):
        raise IndexError("array indices along symbolic dimensions; use take()")
    try:
        bshape = np.broadcast_shapes(*[tuple(i.shape) for i in indices])
    except ValueError:
        raise IndexError("shape mismatch: index arrays of shapes " + ", ".join(str(tuple(i.shape)) for i in indices)
                         + " cannot be broadcast together") from None
    at = 0 if apart else positions[0]
    rest = [a for a in range(y.ndim) if a not in positions]
    order = rest[:at] + list(positions) + rest[at:]
    if order != list(range(y.ndim)):
        y = ops.transpose(y, axes=tuple(order))
    total = int(np.prod(sizes, dtype=np.int64))
    merged = tuple(y.shape[:at]) + (total,) + tuple(y.shape[at + len(positions):])
    y = ops.reshape(y, shape=merged)
    flat, invalid, stride = None, None, total
    for idx, n in zip(indices, sizes):
        stride //= max(n, 1)
        if idx.op == "constant":
            values = idx.attrs["value"]
            if values.size and (values.min() < -n or values.max() >= n):
                bad = values[(values < -n) | (values >= n)].reshape(-1)[0]
                raise IndexError(f"index {int(bad)} is out of bounds for an axis of size {n}")
            term = constant(np.mod(values, max(n, 1)).astype(np.int64) * stride)
        else:
            idx = idx.astype(dtypes.int64)
            wrapped = ops.where(idx < 0, idx + n, idx)
            bad = ops.logical_or(wrapped < 0, wrapped >= n)
            invalid = bad if invalid is None else ops.logical_or(invalid, bad)
            term = wrapped * stride
        term = ops.broadcast_to(term, shape=bshape) if tuple(term.shape) != tuple(bshape) else term
        flat = term if flat is None else flat + term
    if invalid is not None:  # an index outside its own axis must not land on another element
        flat = ops.where(invalid, -(total + 1), flat)
    return ops.take(y, flat, axis=at)


@builder("transpose")
def _transpose(self, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(reversed(range(self.ndim)))
    return ops.transpose(self, axes=axes)


@builder("swapaxes")
def _swapaxes(self, a, b):
    perm = list(range(self.ndim))
    a, b = normalize_axis(a, self.ndim), normalize_axis(b, self.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return ops.transpose(self, axes=tuple(perm))


@builder("reshape")
def _reshape(self, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return ops.reshape(self, shape=shape)


@builder("cast")
def _astype(self, dtype):
    dtype = dtypes.as_dtype(dtype)
    return self if dtype == self.dtype else ops.cast(self, dtype=dtype)


def _bitwise(logical, bitwise, reverse=False):
    """``&``/``|``/``^``: logical on two bools (the op masks are built with), bitwise on integers."""
    def method(self, other):
        other_bool = isinstance(other, (bool, np.bool_)) or (isinstance(other, Tensor) and other.dtype == dtypes.bool_)
        op = logical if self.dtype == dtypes.bool_ and other_bool else bitwise
        return op(other, self) if reverse else op(self, other)
    return method


def _true_divide(reverse=False):
    """``/`` of integers is a float division (numpy, PyTorch): integer operands become floats first,
    so a Python int that does not fit the tensor's integer dtype (``x_int32 / 2**40``) still divides."""
    def method(self, other):
        if self.dtype.kind in "iub" and (isinstance(other, (int, np.integer)) and not isinstance(other, bool)):
            self, other = self.astype(dtypes.DEFAULT_FLOAT), float(other)
        return ops.div(other, self) if reverse else ops.div(self, other)
    return method


def _rpow(self, other):
    return ops.pow(as_tensor(other, self), self)


def _reduction(op):
    def method(self, axis=None, keepdims=False):
        return op(self, axis=axis, keepdims=keepdims)
    method.__doc__ = op.__doc__
    return method


_METHODS = {
    "__add__": _binary(ops.add), "__radd__": _binary(ops.add, True),
    "__sub__": _binary(ops.sub), "__rsub__": _binary(ops.sub, True),
    "__mul__": _binary(ops.mul), "__rmul__": _binary(ops.mul, True),
    "__truediv__": _true_divide(), "__rtruediv__": _true_divide(True),
    "__floordiv__": _binary(ops.floor_divide), "__rfloordiv__": _binary(ops.floor_divide, True),
    "__mod__": _binary(ops.mod), "__rmod__": _binary(ops.mod, True),
    "__pow__": _binary(ops.pow), "__rpow__": _rpow,
    "__matmul__": _binary(ops.matmul), "__rmatmul__": _binary(ops.matmul, True),
    "__lt__": _binary(ops.less), "__le__": _binary(ops.less_equal),
    "__gt__": _binary(ops.greater), "__ge__": _binary(ops.greater_equal),
    "__eq__": _binary(ops.equal), "__ne__": _binary(ops.not_equal),
    "__and__": _bitwise(ops.logical_and, ops.bitwise_and), "__rand__": _bitwise(ops.logical_and, ops.bitwise_and, True),
    "__or__": _bitwise(ops.logical_or, ops.bitwise_or), "__ror__": _bitwise(ops.logical_or, ops.bitwise_or, True),
    "__xor__": _bitwise(ops.bitwise_xor, ops.bitwise_xor), "__rxor__": _bitwise(ops.bitwise_xor, ops.bitwise_xor, True),
    "__lshift__": _binary(ops.bitwise_left_shift), "__rlshift__": _binary(ops.bitwise_left_shift, True),
    "__rshift__": _binary(ops.bitwise_right_shift), "__rrshift__": _binary(ops.bitwise_right_shift, True),
    "__invert__": lambda self: ops.logical_not(self) if self.dtype == dtypes.bool_ else ops.bitwise_not(self),
    "__neg__": lambda self: ops.neg(self), "__pos__": lambda self: self,
    "__abs__": lambda self: ops.abs(self),
    "__getitem__": _getitem,
    "sum": _reductions.sum, "mean": _reduction(ops.mean), "max": _reduction(ops.max),
    "min": _reduction(ops.min), "prod": _reductions.prod, "logsumexp": _reduction(ops.logsumexp),
    "var": lambda self, axis=None, keepdims=False, correction=1: ops.var(self, axis=axis, keepdims=keepdims,
                                                                          correction=correction),
    "std": lambda self, axis=None, keepdims=False, correction=1: F.std(self, axis, keepdims, correction),
    "argmax": lambda self, axis=None, keepdims=False: ops.argmax(self, axis=axis, keepdims=keepdims),
    "argmin": lambda self, axis=None, keepdims=False: ops.argmin(self, axis=axis, keepdims=keepdims),
    "reshape": _reshape, "view": _reshape, "transpose": _transpose, "permute": _transpose,
    "swapaxes": _swapaxes,
    "T": property(lambda self: _transpose(self)),
    "mT": property(lambda self: _swapaxes(self, -1, -2)),
    "astype": _astype, "cast": _astype,
    "squeeze": F.squeeze, "unsqueeze": F.unsqueeze, "flatten": F.flatten, "expand": F.expand,
    "broadcast_to": lambda self, shape: ops.broadcast_to(self, shape=shape),
    "exp": ops.exp, "log": ops.log, "sqrt": ops.sqrt, "tanh": ops.tanh, "sigmoid": ops.sigmoid,
    "relu": ops.relu, "abs": ops.abs, "sin": ops.sin, "cos": ops.cos, "square": ops.square,
    "clamp": lambda self, min=None, max=None: ops.clamp(self, min=min, max=max),
    "softmax": lambda self, axis=-1: ops.softmax(self, axis=axis),
    "log_softmax": lambda self, axis=-1: ops.log_softmax(self, axis=axis),
    "matmul": ops.matmul,
}
# PyTorch's movement and indexing methods: the functions of movement_functions with the tensor first.
_METHODS.update({name: getattr(MF, name) for name in (
    "roll", "repeat", "tile", "repeat_interleave", "diagonal", "diag_embed", "unfold", "unflatten", "movedim",
    "moveaxis", "index_select", "index_add", "scatter", "scatter_reduce", "masked_fill", "take_along_dim")})
_METHODS["gather"] = lambda self, dim, index: ops.gather(self, index, axis=dim)
_METHODS["scatter_add"] = lambda self, dim, index, src: ops.scatter_add(self, index, src, axis=dim)
# PyTorch's math, reduction, scan and sorting methods: the core functions with the tensor first.
_METHODS.update({name: getattr(ops, name) for name in (
    "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "log1p", "expm1",
    "exp2", "trunc", "frac", "isinf", "isfinite", "isnan", "reciprocal", "rsqrt", "floor", "ceil", "sign", "erf",
    "atan2", "hypot", "copysign", "fmod", "logaddexp")})
_METHODS.update({name: getattr(_math, name) for name in ("div", "remainder", "lerp", "isclose", "nan_to_num", "round")})
_METHODS.update({name: getattr(_reductions, name) for name in (
    "any", "all", "count_nonzero", "amax", "amin", "cumsum", "cumprod", "logcumsumexp", "cummax", "cummin", "sort",
    "argsort", "topk", "median", "norm")})
_METHODS.update({name: getattr(_creation, name) for name in ("tril", "triu")})

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)

__all__ = ["constant"]

# Values on demand for tensors with no unfed inputs (np.asarray, float, item, print ...).
from .realize import METHODS as _REALIZE_METHODS  # noqa: E402

for _name, _fn in _REALIZE_METHODS.items():
    setattr(Tensor, _name, _fn)
