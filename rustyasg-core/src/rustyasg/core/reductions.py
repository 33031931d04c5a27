"""Reductions, scans, sorting and norms with PyTorch's signatures, built on the core's ops.

``any``/``all``/``count_nonzero``, ``std_mean``/``var_mean``, ``amax``/``amin`` over several axes,
``sum``/``prod`` with ``dtype=``, the scans (``cumsum`` ... ``cummax`` with its indices),
``sort``/``argsort``/``topk``/``median`` (values are ``gather`` of the sorted indices, so the
gradient routes to the chosen entries as PyTorch's does) and vector/matrix norms whose
gradients are 0, not NaN, at a zero vector (PyTorch's convention).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.constant(np.array([[3.0, 1.0, 2.0]], np.float32))
    >>> values, indices = rg.topk(x, 2)
    >>> values.numpy(), indices.numpy()
    (array([[3., 2.]], dtype=float32), array([[0, 2]]))
"""

from __future__ import annotations

import math
import operator
from typing import Optional

import numpy as np

from . import dtypes
from .builders import builder
from .graph import Tensor, as_tensor
from .ops import elementwise as ew
from .ops import movement, reduce
from .ops import scan as _scan
from .ops.svd import svdvals as _svdvals
from .shapes import Dim, normalize_axes, normalize_axis

__all__ = ["any", "all", "count_nonzero", "std_mean", "var_mean", "amax", "amin", "sum", "prod", "cumsum",
           "cumprod", "logcumsumexp", "cummax", "cummin", "sort", "argsort", "topk", "median", "vector_norm",
           "matrix_norm", "norm"]

_sum, _prod = reduce.sum, reduce.prod


def _axes(dim):
    return None if dim is None else (int(dim),) if isinstance(dim, (int, np.integer)) else tuple(dim)


@builder()
def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001 - PyTorch's name
    """True where some element along ``dim`` (all axes if None) is non-zero; False over nothing."""
    x = as_tensor(x)
    hits = (x != 0).astype(dtypes.float32)  # counting in float32 never rounds a positive count to 0
    return _sum(hits, axis=_axes(dim), keepdims=keepdim) > 0.0


@builder()
def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001 - PyTorch's name
    """True where every element along ``dim`` is non-zero (NaN counts as non-zero); True over nothing."""
    x = as_tensor(x)
    misses = (x == 0).astype(dtypes.float32)
    return _sum(misses, axis=_axes(dim), keepdims=keepdim) == 0.0


@builder()
def count_nonzero(x: Tensor, dim=None) -> Tensor:
    """Number of non-zero elements along ``dim`` (int64)."""
    x = as_tensor(x)
    return _sum((x != 0).astype(dtypes.int64), axis=_axes(dim), keepdims=False)


@builder()
def var_mean(x: Tensor, dim=None, correction: int = 1, keepdim: bool = False):
    """``(var, mean)`` along ``dim`` (``torch.var_mean``)."""
    x = as_tensor(x)
    return (reduce.var(x, axis=_axes(dim), keepdims=keepdim, correction=correction),
            reduce.mean(x, axis=_axes(dim), keepdims=keepdim))


@builder()
def std_mean(x: Tensor, dim=None, correction: int = 1, keepdim: bool = False):
    """``(std, mean)`` along ``dim`` (``torch.std_mean``)."""
    from .functional import std

    x = as_tensor(x)
    return std(x, _axes(dim), keepdim, correction), reduce.mean(x, axis=_axes(dim), keepdims=keepdim)


@builder()
def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (one axis or several); tied maxima share the gradient, as ``torch.amax``."""
    return reduce.max(as_tensor(x), axis=_axes(dim), keepdims=keepdim)


@builder()
def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (one axis or several); tied minima share the gradient, as ``torch.amin``."""
    return reduce.min(as_tensor(x), axis=_axes(dim), keepdims=keepdim)


def _accumulator(x, dtype):
    """PyTorch's (and numpy's) rule: bools and integers narrower than 64 bits are summed and
    multiplied in int64 unless a dtype is given (in their own type they would overflow)."""
    if dtype is not None:
        return x.astype(dtype)
    widen = x.dtype == dtypes.bool_ or (dtypes.is_integer(x.dtype) and np.dtype(x.dtype).itemsize < 8)
    return x.astype(dtypes.int64) if widen else x


@builder()
def sum(x: Tensor, axis=None, keepdims: bool = False, *, dtype=None, name: Optional[str] = None) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes if None), in ``dtype`` if given (``torch.sum(dtype=...)``); bools and
    integers narrower than 64 bits are summed in int64, as PyTorch and numpy.

    >>> import rustyasg.core as rg
    >>> rg.sum(rg.input((3,), "int32")).dtype, rg.sum(rg.input((3,), "int32"), dtype="int32").dtype
    (dtype('int64'), dtype('int32'))
    """
    return _sum(_accumulator(as_tensor(x), dtype), axis=axis, keepdims=keepdims, name=name)


@builder()
def prod(x: Tensor, axis=None, keepdims: bool = False, *, dtype=None, name: Optional[str] = None) -> Tensor:
    """Product over ``axis``, in ``dtype`` if given (``torch.prod(dtype=...)``); bools and integers
    narrower than 64 bits multiply in int64, as PyTorch and numpy."""
    return _prod(_accumulator(as_tensor(x), dtype), axis=axis, keepdims=keepdims, name=name)


# --- scans ---------------------------------------------------------------------------------------
def _scan_accumulator(x, dtype):
    """PyTorch's cumsum/cumprod: in ``dtype`` if given, integers and bools in int64."""
    if dtype is not None:
        return x.astype(dtype)
    return x.astype(dtypes.int64) if x.dtype == dtypes.bool_ or dtypes.is_integer(x.dtype) else x


@builder()
def cumsum(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running sum along ``dim`` (``torch.cumsum``); in ``dtype`` if given, integers and bools in int64."""
    return _scan.cumsum(_scan_accumulator(as_tensor(x), dtype), axis=dim)


@builder()
def cumprod(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running product along ``dim`` (``torch.cumprod``); in ``dtype`` if given, integers and bools in int64."""
    return _scan.cumprod(_scan_accumulator(as_tensor(x), dtype), axis=dim)


@builder()
def logcumsumexp(x: Tensor, dim: int) -> Tensor:
    """Running ``log(sum(exp(x)))`` along ``dim`` without overflow."""
    x = as_tensor(x)
    if not dtypes.is_floating(x.dtype):
        x = x.astype(dtypes.DEFAULT_FLOAT)
    return _scan.logcumsumexp(x, axis=dim)


def _values_at(x, indices, dim):
    return x if x.ndim == 0 else movement.gather(x, indices, axis=normalize_axis(dim, x.ndim))


@builder()
def cummax(x: Tensor, dim: int):
    """``(values, indices)`` of the running maximum along ``dim`` (``torch.cummax``)."""
    x = as_tensor(x)
    indices = _scan.cummax_indices(x, axis=dim)
    return _values_at(x, indices, dim), indices


@builder()
def cummin(x: Tensor, dim: int):
    """``(values, indices)`` of the running minimum along ``dim`` (``torch.cummin``)."""
    x = as_tensor(x)
    indices = _scan.cummin_indices(x, axis=dim)
    return _values_at(x, indices, dim), indices


# --- sorting -------------------------------------------------------------------------------------
@builder()
def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """Indices that sort ``x`` along ``dim``; always stable (ties keep their order), NaN above every number."""
    return _scan.argsort(as_tensor(x), axis=dim, descending=descending)


@builder()
def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = True):
    """``(values, indices)`` sorted along ``dim`` (``torch.sort``, stable); gradients flow to the sorted entries.

    >>> import numpy as np, rustyasg.core as rg
    >>> rg.sort(rg.constant(np.array([2.0, np.nan, -1.0], np.float32)))[0].numpy()
    array([-1.,  2., nan], dtype=float32)
    """
    x = as_tensor(x)
    indices = argsort(x, dim, descending)
    return _values_at(x, indices, dim), indices


def _static_size(x, dim):
    n = x.shape[normalize_axis(dim, x.ndim)] if x.ndim else 1
    if isinstance(n, Dim):
        raise ValueError(f"dimension {dim} of {x.describe()} is symbolic; this needs its size")
    return n


@builder()
def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """``(values, indices)`` of the ``k`` largest (or smallest) entries along ``dim``, in order (``torch.topk``)."""
    x = as_tensor(x)
    k = operator.index(k)
    n = _static_size(x, dim)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is out of range for dimension {dim} of size {n}")
    order = argsort(x, dim, descending=largest)
    if x.ndim:
        from .functional import narrow

        order = narrow(order, normalize_axis(dim, x.ndim), 0, k)
    return _values_at(x, order, dim), order


@builder()
def median(x: Tensor, dim: Optional[int] = None, keepdim: bool = False):
    """The lower median (``torch.median``): a tensor for ``dim=None``, else ``(values, indices)``.

    NaN anywhere along ``dim`` makes the median NaN and its index the first NaN's, as PyTorch.
    """
    from .functional import narrow, squeeze

    x = as_tensor(x)
    if dim is None:
        return median(x.reshape((-1,)), 0)[0]
    n = _static_size(x, dim)
    if n == 0:
        raise ValueError(f"median of an empty dimension {dim} of {x.describe()} is undefined")
    if x.ndim == 0:
        return x, movement.zeros_like_shape(x.astype(dtypes.int64))
    ax = normalize_axis(dim, x.ndim)
    mid = narrow(argsort(x, ax), ax, (n - 1) // 2, 1)
    if dtypes.is_floating(x.dtype):
        nan = ew.isnan(x)
        has_nan = reduce.max(nan.astype(dtypes.float32), axis=(ax,), keepdims=True) > 0.0
        first_nan = reduce.argmax(nan.astype(dtypes.float32), axis=ax, keepdims=True)
        mid = ew.where(has_nan, first_nan, mid)
    values = movement.gather(x, mid, axis=ax)
    if not keepdim:
        values, mid = squeeze(values, ax), squeeze(mid, ax)
    return values, mid


# --- norms ---------------------------------------------------------------------------------------
def _safe_root(s, p: float):
    """``s ** (1/p)`` with a zero gradient where ``s`` is 0 (PyTorch's norm gradient at 0)."""
    zero = s == 0.0
    safe = ew.where(zero, 1.0, s)
    root = ew.sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return ew.where(zero, 0.0, root)


@builder()
def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False) -> Tensor:
    """``(sum |x|^ord) ** (1/ord)`` over ``dim`` (all axes if None); ``ord`` is any float, inf, -inf or 0.

    >>> import numpy as np, rustyasg.core as rg
    >>> float(rg.vector_norm(rg.constant(np.array([3.0, -4.0], np.float32))))
    5.0
    """
    x = as_tensor(x)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"vector_norm needs a floating tensor, got {x.dtype}; cast it first")
    ord = float(ord)
    axes = _axes(dim)
    a = abs(x)
    if ord == math.inf:
        return reduce.max(a, axis=axes, keepdims=keepdim)
    if ord == -math.inf:
        return reduce.min(a, axis=axes, keepdims=keepdim)
    if ord == 0:
        return _sum((x != 0).astype(x.dtype), axis=axes, keepdims=keepdim)
    if ord == 1:
        return _sum(a, axis=axes, keepdims=keepdim)
    if ord == 2:
        return _safe_root(_sum(x * x, axis=axes, keepdims=keepdim), 2)
    return _safe_root(_sum(a ** ord, axis=axes, keepdims=keepdim), ord)


@builder()
def matrix_norm(x: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """Matrix norm over the two axes ``dim`` (``torch.linalg.matrix_norm``): 'fro', 'nuc' (sum of the
    singular values), 2 / -2 (largest / smallest singular value), 1 / -1 (max / min column sum),
    inf / -inf (rows).

    The singular values come from :func:`svdvals`; a matrix with no element gives 0 for 'nuc' and 2
    (-2 is refused there, as PyTorch's ``amin`` over nothing).

    >>> import numpy as np, rustyasg.core as rg
    >>> a = rg.constant(np.array([[3.0, 0.0], [0.0, -4.0]], np.float32))
    >>> float(rg.matrix_norm(a, 2)), float(rg.matrix_norm(a, -2)), float(rg.matrix_norm(a, "nuc"))
    (4.0, 3.0, 7.0)
    """
    x = as_tensor(x)
    dim = tuple(dim)
    if len(dim) != 2:
        raise ValueError(f"a matrix norm needs two axes, got dim={dim}")
    rows, cols = normalize_axes(dim, x.ndim)
    if rows == cols:
        raise ValueError(f"dim names one axis twice: {dim}")
    if ord == "fro":
        return vector_norm(x, 2, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        return _singular_norm(x, ord, rows, cols, keepdim)
    if ord in (1, -1):
        inner, outer = rows, cols  # column sums, then the extreme over columns
    elif ord in (math.inf, -math.inf):
        inner, outer = cols, rows
    else:
        raise ValueError(f"unknown matrix norm ord={ord!r}; use 'fro', 'nuc', 1, -1, 2, -2, inf or -inf")
    sums = _sum(abs(x), axis=(inner,), keepdims=True)
    pick = reduce.max if ord > 0 else reduce.min
    out = pick(sums, axis=(outer,), keepdims=True)
    if not keepdim:
        out = out.reshape(tuple(d for i, d in enumerate(x.shape) if i not in (rows, cols)))
    return out


def _singular_norm(x, ord, rows, cols, keepdim):
    """'nuc', 2 or -2 over axes ``rows``, ``cols`` of ``x`` from its singular values."""
    batch = tuple(i for i in range(x.ndim) if i not in (rows, cols))
    order = batch + (rows, cols)
    s = _svdvals(x.transpose(order) if order != tuple(range(x.ndim)) else x)
    if s.shape[-1] == 0 and ord == -2:
        raise ValueError(f"the matrix norm ord=-2 of {x.shape[rows]}x{x.shape[cols]} matrices is the minimum of no "
                         "singular value; it exists only for matrices with at least one element")
    if ord == "nuc":
        out = _sum(s, axis=(-1,))
    elif s.shape[-1] == 0:
        out = _sum(s, axis=(-1,))  # the largest of no singular value is 0, as PyTorch
    else:
        out = (reduce.max if ord == 2 else reduce.min)(s, axis=(-1,))
    if keepdim:
        out = out.reshape(tuple(1 if i in (rows, cols) else d for i, d in enumerate(x.shape)))
    return out


@builder()
def norm(x: Tensor, p="fro", dim=None, keepdim: bool = False) -> Tensor:
    """``torch.norm``: the vector ``p``-norm over ``dim`` (all axes if None); 'fro' is the 2-norm.

    As in PyTorch, a number ``p`` with two axes is still a vector norm over both; use
    :func:`matrix_norm` (or ``rg.linalg.norm``, as ``torch.linalg.norm``) for the induced matrix
    norms. 'nuc' is the nuclear norm over ``dim`` (the last two axes if None).

    >>> import numpy as np, rustyasg.core as rg
    >>> float(rg.norm(rg.constant(np.diag([3.0, -4.0]).astype(np.float32)), "nuc"))
    7.0
    """
    if p == "fro":
        return vector_norm(x, 2, dim, keepdim)
    if p == "nuc":
        return matrix_norm(x, "nuc", dim if dim is not None else (-2, -1), keepdim)
    return vector_norm(x, p, dim, keepdim)
