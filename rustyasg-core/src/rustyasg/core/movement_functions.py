"""Movement and indexing functions with PyTorch's names, lowered to core ops.

Each function here is a few existing ops — ``slice``, ``concat``, ``reshape``, ``transpose``,
``broadcast_to``, ``take`` (with a constant index computed now, at build time), ``take_grad``
(its scatter-add adjoint), ``gather``, ``scatter_reduce`` and ``where`` — so every backend
runs them and their gradients come from those ops' rules. Index arithmetic that depends
only on shapes is numpy work done once while the graph is built.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((2, 3, 4), name="x")
    >>> rg.roll(x, 1, 2).shape, rg.repeat(x, 2, 1, 1).shape, rg.movedim(x, 0, -1).shape
    ((2, 3, 4), (4, 3, 4), (3, 4, 2))
"""

from __future__ import annotations

import math
import operator
from typing import Optional

import numpy as np

from . import dtypes
from .builders import builder
from .graph import Tensor, as_tensor, constant
from .ops import movement, reduce, where
from .ops.movement import pad_mode  # noqa: F401  (listed in __all__; it lives beside pad)
from .ops.scatter_ops import scatter_reduce_op
from .shapes import Dim, normalize_axis

__all__ = ["roll", "repeat", "tile", "repeat_interleave", "diagonal", "diag", "diag_embed", "unfold", "unflatten",
           "movedim", "moveaxis", "index_select", "index_add", "scatter", "scatter_reduce", "masked_fill",
           "take_along_dim", "pad_mode", "masked_select", "nonzero", "unique"]


def _static(x: Tensor, axis: int, what: str) -> int:
    n = x.shape[axis]
    if isinstance(n, Dim):
        raise ValueError(f"{what} needs a concrete size along axis {axis}, but it is symbolic ({n})")
    return int(n)


def _ints(values) -> tuple:
    if isinstance(values, (int, np.integer)):
        return (int(values),)
    return tuple(operator.index(v) for v in values)


def _take_const(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    return movement.take(x, constant(np.asarray(index, np.int64)), axis=axis)


# --- roll / repeat / tile -----------------------------------------------------------------------
@builder()
def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """``torch.roll``: shift elements along ``dims`` cyclically (flattened first when ``dims`` is None).

    >>> import rustyasg.core as rg
    >>> rg.roll(rg.constant([1., 2., 3., 4.]), 1).tolist()
    [4.0, 1.0, 2.0, 3.0]
    """
    x = as_tensor(x)
    if dims is None:
        if len(_ints(shifts)) != 1:
            raise ValueError(f"without dims, shifts must be one int, got {shifts}")
        return movement.reshape(roll(movement.reshape(x, shape=(-1,)), shifts, 0), shape=x.shape)
    shifts, dims = _ints(shifts), _ints(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"shifts {shifts} and dims {dims} must have the same length")
    y = x
    for s, d in zip(shifts, dims):
        ax = normalize_axis(d, x.ndim)
        n = _static(x, ax, "roll")
        k = s % n if n else 0
        if k:
            y = movement.concat(_axis_slice(y, ax, n - k, n), _axis_slice(y, ax, 0, n - k), axis=ax)
    return y


def _axis_slice(x: Tensor, axis: int, start: int, stop: int) -> Tensor:
    starts = tuple(start if i == axis else 0 for i in range(x.ndim))
    stops = tuple(stop if i == axis else None for i in range(x.ndim))
    return movement.slice_(x, starts=starts, stops=stops, steps=(1,) * x.ndim)


@builder()
def repeat(x: Tensor, *sizes) -> Tensor:
    """``Tensor.repeat``: tile the whole tensor ``sizes[i]`` times along axis ``i`` (``np.tile``).

    ``sizes`` may have more entries than ``x`` has axes (new leading axes), never fewer.

    >>> import rustyasg.core as rg
    >>> rg.repeat(rg.constant([1., 2.]), 2, 2).tolist()
    [[1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 1.0, 2.0]]
    """
    x = as_tensor(x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = _ints(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat needs at least {x.ndim} sizes (one per axis), got {sizes}; "
                         "use rustyasg.core.tile to repeat only the trailing axes")
    if any(s < 0 for s in sizes):
        raise ValueError(f"repeat sizes must be >= 0, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    # (d0, d1, ...) -> (1, d0, 1, d1, ...) -> broadcast (r0, d0, r1, d1, ...) -> merge pairs.
    spread = movement.reshape(x, shape=tuple(v for d in shape for v in (1, d)))
    wide = reduce.broadcast_to(spread, shape=tuple(v for r, d in zip(sizes, shape) for v in (r, d)))
    return movement.reshape(wide, shape=tuple(r * d for r, d in zip(sizes, shape)))


@builder()
def tile(x: Tensor, dims) -> Tensor:
    """``torch.tile``: as :func:`repeat`, but fewer ``dims`` than axes repeat only the trailing axes.

    >>> import rustyasg.core as rg
    >>> rg.tile(rg.input((2, 3), name="t"), (2,)).shape
    (2, 6)
    """
    x = as_tensor(x)
    dims = _ints(dims)
    return repeat(x, (1,) * (x.ndim - len(dims)) + dims)


@builder()
def repeat_interleave(x: Tensor, repeats, dim: Optional[int] = None, output_size: Optional[int] = None) -> Tensor:
    """``torch.repeat_interleave``: repeat each element ``repeats`` times (an int, or one count per element).

    Per-element counts must be known now (an int list or numpy array): counts held in a
    graph tensor would make the output's shape depend on data, which a graph's fixed shapes
    cannot express; pass them as a list (``output_size`` is then checked against their sum).

    >>> import rustyasg.core as rg
    >>> rg.repeat_interleave(rg.constant([1., 2.]), [1, 3]).tolist()
    [1.0, 2.0, 2.0, 2.0]
    """
    x = as_tensor(x)
    if dim is None:
        x, dim = movement.reshape(x, shape=(-1,)), 0
    ax = normalize_axis(dim, x.ndim) if x.ndim else 0
    if x.ndim == 0:
        x = movement.reshape(x, shape=(1,))
    if isinstance(repeats, Tensor):
        if repeats.op != "constant":
            raise TypeError("repeats held in a graph tensor would give a data-dependent output shape; "
                            "pass the counts as an int or a list of ints")
        repeats = repeats.attrs["value"]
    n = _static(x, ax, "repeat_interleave")
    counts = np.asarray(repeats, np.int64).reshape(-1)
    if counts.size == 1 and np.ndim(repeats) == 0:
        r = int(counts[0])
        if r < 0:
            raise ValueError(f"repeats must be >= 0, got {r}")
        shape = tuple(x.shape)
        wide = reduce.broadcast_to(movement.reshape(x, shape=shape[:ax + 1] + (1,) + shape[ax + 1:]),
                                   shape=shape[:ax + 1] + (r,) + shape[ax + 1:])
        y = movement.reshape(wide, shape=shape[:ax] + (n * r,) + shape[ax + 1:])
        total = n * r
    else:
        if counts.size != n:
            raise ValueError(f"repeats has {counts.size} counts for an axis of size {n}")
        if (counts < 0).any():
            raise ValueError(f"repeats must be >= 0, got {counts.tolist()}")
        total = int(counts.sum())
        y = _take_const(x, np.repeat(np.arange(n), counts), ax)
    if output_size is not None and int(output_size) != total:
        raise ValueError(f"output_size {output_size} differs from the sum of repeats {total}")
    return y


# --- diagonals ----------------------------------------------------------------------------------
def _diag_positions(n: int, m: int, offset: int) -> np.ndarray:
    """Flat positions in an (n, m) matrix of its ``offset`` diagonal."""
    rows = np.arange(max(0, -offset), min(n, m - offset)) if min(n, m - offset) > max(0, -offset) else np.zeros(0, int)
    return rows * m + rows + offset


@builder()
def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """``torch.diagonal``: the ``offset`` diagonal of the (dim1, dim2) planes, as a new last axis.

    >>> import rustyasg.core as rg
    >>> rg.diagonal(rg.constant(np.arange(6.).reshape(2, 3)), 1).tolist()
    [1.0, 5.0]
    """
    x = as_tensor(x)
    a, b = normalize_axis(dim1, x.ndim), normalize_axis(dim2, x.ndim)
    if a == b:
        raise ValueError(f"dim1 and dim2 must differ, both are {a}")
    n, m = _static(x, a, "diagonal"), _static(x, b, "diagonal")
    rest = [i for i in range(x.ndim) if i not in (a, b)]
    moved = movement.transpose(x, axes=tuple(rest) + (a, b))
    flat = movement.reshape(moved, shape=tuple(x.shape[i] for i in rest) + (n * m,))
    return _take_const(flat, _diag_positions(n, m, int(offset)), len(rest))


@builder()
def diag_embed(x: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """``torch.diag_embed``: the last axis of ``x`` written on the ``offset`` diagonal of new (dim1, dim2) planes.

    The scatter is ``take_grad`` with a constant index, so the gradient is a ``take``.

    >>> import rustyasg.core as rg
    >>> rg.diag_embed(rg.constant([1., 2.])).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    x = as_tensor(x)
    if x.ndim == 0:
        raise ValueError("diag_embed needs at least one axis")
    k = _static(x, x.ndim - 1, "diag_embed")
    size = k + abs(int(offset))
    out_rank = x.ndim + 1
    a, b = normalize_axis(dim1, out_rank), normalize_axis(dim2, out_rank)
    if a == b:
        raise ValueError(f"dim1 and dim2 must differ, both are {a}")
    pos = _diag_positions(size, size, int(offset))
    planes = movement.take_grad(x, constant(pos.astype(np.int64)), axis=x.ndim - 1, size=size * size)
    planes = movement.reshape(planes, shape=tuple(x.shape[:-1]) + (size, size))
    # planes has the batch axes then (row, col); place row at a and col at b.
    order, batch = [None] * out_rank, iter(range(x.ndim - 1))
    order[a], order[b] = x.ndim - 1, x.ndim
    order = [next(batch) if o is None else o for o in order]
    return movement.transpose(planes, axes=tuple(order))


@builder()
def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """``torch.diag``: a 1-D tensor becomes a square matrix with it on a diagonal; a matrix gives its diagonal.

    >>> import rustyasg.core as rg
    >>> rg.diag(rg.input((3,), name="d"), 1).shape
    (4, 4)
    """
    x = as_tensor(x)
    if x.ndim == 1:
        return diag_embed(x, diagonal)
    if x.ndim == 2:
        return globals()["diagonal"](x, diagonal)
    raise ValueError(f"diag takes a 1-D or 2-D tensor, got rank {x.ndim}; use diagonal or diag_embed")


# --- windows, reshapes ----------------------------------------------------------------------------
@builder()
def unfold(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """``Tensor.unfold``: windows of ``size`` every ``step`` along ``dimension``; the window is a new last axis.

    >>> import rustyasg.core as rg
    >>> rg.unfold(rg.constant(np.arange(7.)), 0, 3, 2).tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]
    """
    x = as_tensor(x)
    if x.ndim == 0:
        x = movement.reshape(x, shape=(1,))
    ax = normalize_axis(dimension, x.ndim)
    n = _static(x, ax, "unfold")
    if size < 0 or step <= 0:
        raise ValueError(f"size must be >= 0 and step > 0, got size={size}, step={step}")
    if size > n:
        raise ValueError(f"window size {size} exceeds the size {n} of axis {ax}")
    count = (n - size) // step + 1
    index = np.arange(count)[:, None] * step + np.arange(size)[None, :]
    y = _take_const(x, index, ax)  # (..., count, size, ...)
    return movedim(y, ax + 1, -1)


@builder()
def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """``torch.unflatten``: split axis ``dim`` into ``sizes`` (one may be -1).

    >>> import rustyasg.core as rg
    >>> rg.unflatten(rg.input((2, 12), name="u"), 1, (3, -1)).shape
    (2, 3, 4)
    """
    x = as_tensor(x)
    ax = normalize_axis(dim, x.ndim)
    sizes = _ints(sizes)
    n = x.shape[ax]
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if sizes.count(-1) > 1 or isinstance(n, Dim) or known == 0 or n % known:
            raise ValueError(f"cannot unflatten axis {ax} of size {n} into {sizes}")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    if isinstance(n, int) and math.prod(sizes) != n:
        raise ValueError(f"sizes {sizes} multiply to {math.prod(sizes)}, not to the size {n} of axis {ax}")
    return movement.reshape(x, shape=tuple(x.shape[:ax]) + sizes + tuple(x.shape[ax + 1:]))


@builder()
def movedim(x: Tensor, source, destination) -> Tensor:
    """``torch.movedim`` / ``np.moveaxis``: move axes to new positions, the others keep their order.

    >>> import rustyasg.core as rg
    >>> rg.movedim(rg.input((2, 3, 4), name="m"), (0, 1), (2, 0)).shape
    (3, 4, 2)
    """
    x = as_tensor(x)
    src = [normalize_axis(a, x.ndim) for a in _ints(source)]
    dst = [normalize_axis(a, x.ndim) for a in _ints(destination)]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"repeated axis in source {source} or destination {destination}")
    if len(src) != len(dst):
        raise ValueError(f"source {source} and destination {destination} must have the same length")
    order = [i for i in range(x.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return x if order == list(range(x.ndim)) else movement.transpose(x, axes=tuple(order))


moveaxis = movedim


# --- index / scatter family -----------------------------------------------------------------------
def _index_vector(index, what: str) -> Tensor:
    index = as_tensor(index)
    if index.dtype not in (dtypes.int32, dtypes.int64):
        raise TypeError(f"{what} index must be int32 or int64, got {index.dtype}")
    if index.ndim > 1:
        raise ValueError(f"{what} index must be 0-d or 1-D, got rank {index.ndim}")
    return movement.reshape(index, shape=(1,)) if index.ndim == 0 else index


@builder()
def index_select(x: Tensor, dim: int, index) -> Tensor:
    """``torch.index_select``: entries of ``x`` at ``index`` (1-D) along ``dim``.

    >>> import rustyasg.core as rg
    >>> rg.index_select(rg.input((4, 5), name="s"), 1, rg.constant([0, 4])).shape
    (4, 2)
    """
    x = as_tensor(x)
    return movement.take(x, _index_vector(index, "index_select"), axis=normalize_axis(dim, max(x.ndim, 1)))


@builder()
def index_add(x: Tensor, dim: int, index, source: Tensor, alpha: float = 1) -> Tensor:
    """``torch.index_add``: a copy of ``x`` with ``alpha * source`` slices added at ``index`` along ``dim``.

    >>> import rustyasg.core as rg
    >>> rg.index_add(rg.zeros((3,)), 0, rg.constant([2, 2]), rg.constant([1., 5.])).tolist()
    [0.0, 0.0, 6.0]
    """
    x, source = as_tensor(x), as_tensor(source)
    ax = normalize_axis(dim, x.ndim)
    index = _index_vector(index, "index_add")
    expected = tuple(x.shape[:ax]) + tuple(index.shape) + tuple(x.shape[ax + 1:])
    if tuple(source.shape) != expected:
        raise ValueError(f"source shape {tuple(source.shape)} must be {expected} (x's shape with axis {ax} "
                         f"the index length)")
    if alpha != 1:
        source = source * alpha
    return x + movement.take_grad(source, index, axis=ax, size=x.shape[ax])


@builder()
def scatter_reduce(x: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, include_self: bool = True) -> Tensor:
    """``torch.scatter_reduce``: reduce ``src`` into a copy of ``x`` at ``index`` along ``dim``.

    ``reduce`` is ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``.

    >>> import rustyasg.core as rg
    >>> rg.scatter_reduce(rg.zeros((2,)), 0, rg.constant([0, 0, 1]), rg.constant([3., 5., -1.]),
    ...                   "amax", include_self=False).tolist()
    [5.0, -1.0]
    """
    return scatter_reduce_op(as_tensor(x), as_tensor(index), as_tensor(src), axis=dim, reduce=reduce,
                             include_self=include_self)


@builder()
def scatter(x: Tensor, dim: int, index: Tensor, src=None, value=None, reduce: Optional[str] = None) -> Tensor:
    """``torch.scatter``: a copy of ``x`` with ``src`` (or the scalar ``value``) written at ``index`` along ``dim``.

    Where one position is written twice, the later index position wins (PyTorch leaves
    the order unspecified). ``reduce="add"``/``"multiply"`` are the legacy forms of
    :func:`scatter_reduce`'s ``"sum"``/``"prod"``.

    >>> import rustyasg.core as rg
    >>> rg.scatter(rg.zeros((2, 3)), 1, rg.constant([[2], [0]]), value=7.0).tolist()
    [[0.0, 0.0, 7.0], [7.0, 0.0, 0.0]]
    """
    x, index = as_tensor(x), as_tensor(index)
    if src is not None and value is None and np.ndim(src) == 0 and not isinstance(src, Tensor):
        src, value = None, src  # torch.scatter(x, dim, index, 2.5): a scalar is the value form
    if (src is None) == (value is None):
        raise ValueError("pass exactly one of src (a tensor) and value (a scalar)")
    if src is None:
        src = _scalar_like_index(value, x, index)
    mode = {None: "assign", "add": "sum", "multiply": "prod"}.get(reduce)
    if mode is None:
        raise ValueError(f"reduce must be None, 'add' or 'multiply', got {reduce!r}")
    src = as_tensor(src)
    if tuple(src.shape) != tuple(index.shape):  # torch reads the leading index-shaped block of src
        src = movement.slice_(src, starts=(0,) * src.ndim, stops=tuple(index.shape), steps=(1,) * src.ndim)
    return scatter_reduce_op(x, index, src, axis=dim, reduce=mode, include_self=True)


def _scalar_like_index(value, x: Tensor, index: Tensor) -> Tensor:
    """The scalar ``value`` in ``x``'s dtype, broadcast to ``index``'s shape."""
    return reduce.broadcast_to(constant(np.asarray(value, x.dtype)), shape=tuple(index.shape))


@builder()
def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """``torch.masked_fill``: ``value`` where the boolean ``mask`` (broadcast to ``x``) is true; ``x``'s dtype is kept.

    >>> import rustyasg.core as rg
    >>> rg.masked_fill(rg.constant([1., 2.]), rg.constant([True, False]), -1.0).tolist()
    [-1.0, 2.0]
    """
    x, mask = as_tensor(x), as_tensor(mask)
    if mask.dtype != dtypes.bool_:
        raise TypeError(f"mask must be bool, got {mask.dtype}")
    value = as_tensor(value, x)
    if value.ndim:
        raise ValueError(f"value must be a scalar (0-d), got shape {tuple(value.shape)}")
    out = where(mask, value if value.dtype == x.dtype else value.astype(x.dtype), x)
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not broadcast to x's shape {tuple(x.shape)}")
    return out


@builder()
def take_along_dim(x: Tensor, indices: Tensor, dim: Optional[int] = None) -> Tensor:
    """``torch.take_along_dim``: ``gather`` after broadcasting ``x`` and ``indices`` off ``dim``.

    >>> import rustyasg.core as rg
    >>> rg.take_along_dim(rg.input((3, 4), name="a"), rg.constant([[0], [2], [1]]), 1).shape
    (3, 1)
    """
    x, indices = as_tensor(x), as_tensor(indices)
    if dim is None:
        return movement.gather(movement.reshape(x, shape=(-1,)), movement.reshape(indices, shape=(-1,)), axis=0)
    if x.ndim != indices.ndim:
        raise ValueError(f"x rank {x.ndim} and indices rank {indices.ndim} must be equal")
    ax = normalize_axis(dim, x.ndim)
    shape = np.broadcast_shapes(*[tuple(1 if i == ax else d for i, d in enumerate(t.shape)) for t in (x, indices)])
    x_shape = tuple(x.shape[ax] if i == ax else d for i, d in enumerate(shape))
    i_shape = tuple(indices.shape[ax] if i == ax else d for i, d in enumerate(shape))
    xb = x if tuple(x.shape) == x_shape else reduce.broadcast_to(x, shape=x_shape)
    ib = indices if tuple(indices.shape) == i_shape else reduce.broadcast_to(indices, shape=i_shape)
    return movement.gather(xb, ib, axis=ax)


# --- data-dependent shapes: refused, with the static alternative ------------------------------------
def _data_dependent(name: str, alternative: str):
    def refuse(*args, **kwargs):
        from .errors import ShapeError
        from .source import user_location

        raise ShapeError(name, f"its output shape depends on the values, which a graph's fixed shapes cannot "
                               f"express; {alternative}", [], user_location())
    refuse.__name__ = name
    refuse.__doc__ = f"Refused: ``torch.{name}``'s output shape depends on the data; {alternative}."
    return refuse


masked_select = _data_dependent("masked_select", "use where(mask, x, 0) (or masked_fill) to keep the shape, "
                                                 "and a masked sum/mean to reduce")
nonzero = _data_dependent("nonzero", "use where(cond, x, y) to select, or compare against arange and reduce "
                                     "with a fixed size (e.g. topk over the mask) to get a bounded list of positions")
unique = _data_dependent("unique", "sort the values and compare neighbours (a fixed-size result), or pass the "
                                   "known set of values as a constant")
