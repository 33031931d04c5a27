"""Tensor creation with PyTorch's signatures: ranges, identity, filled tensors, triangles, grids, randint.

Values that depend only on Python arguments are constants (folded into the graph); ``*_like``
functions follow ``x``'s shape, symbolic dimensions included. ``empty`` and ``empty_like``
return zeros: a graph has no uninitialised memory to hand out, and zeros are the one
deterministic choice.

Example:
    >>> import rustyasg.core as rg
    >>> rg.arange(1, 2, 0.25).numpy()
    array([1.  , 1.25, 1.5 , 1.75], dtype=float32)
    >>> rg.eye(2, 3, dtype="int64").numpy()
    array([[1, 0, 0],
           [0, 1, 0]])
"""

from __future__ import annotations

import math
import operator
from typing import Optional

import numpy as np

from . import dtypes
from .builders import builder
from .graph import Tensor, as_tensor, constant
from .ops import movement, reduce
from .shapes import Dim

__all__ = ["arange", "linspace", "eye", "full", "full_like", "zeros", "ones", "empty", "zeros_like", "ones_like",
           "empty_like", "tril", "triu", "tril_mask", "triu_mask", "meshgrid", "randint"]

#: randint draws ``floor(u * (high - low))`` from 24-bit uniforms ``u``: exact and unbiased up to this range.
RANDINT_MAX_RANGE = 1 << 24


def _size(size) -> tuple:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all mean shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for d in size:
        if not isinstance(d, (int, np.integer, Dim)) or (isinstance(d, (int, np.integer)) and d < 0):
            raise ValueError(f"a shape is made of non-negative ints, got {tuple(size)}")
    return tuple(size)


def _value_dtype(value, dtype):
    return dtypes.as_dtype(dtype) if dtype is not None else dtypes.scalar_dtype(value)


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    """``start, start + step, ...`` below ``end`` (``torch.arange``); int64 unless an argument is a float.

    >>> import rustyasg.core as rg
    >>> rg.arange(5).numpy(), rg.arange(5, 0, -2).numpy()
    (array([0, 1, 2, 3, 4]), array([5, 3, 1]))
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    values = (start, end, step)
    if not all(math.isfinite(float(v)) for v in values):
        raise ValueError(f"arange: start, end and step must be finite, got {values}")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the range from {start} to {end} and the sign of step {step} disagree")
    if dtype is None:
        floating = any(dtypes.scalar_kind(v) == "float" for v in values)
        dtype = dtypes.DEFAULT_FLOAT if floating else dtypes.DEFAULT_INT
    dt = dtypes.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    return constant((start + np.arange(n, dtype=np.float64 if dt.kind == "f" else np.int64) * step).astype(dt))


def linspace(start: float, end: float, steps: int, dtype="float32") -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (``torch.linspace``).

    >>> import rustyasg.core as rg
    >>> rg.linspace(0, 1, 5).numpy()
    array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    """
    steps = operator.index(steps)
    if steps < 0:
        raise ValueError(f"linspace: steps must be >= 0, got {steps}")
    return constant(np.linspace(float(start), float(end), steps).astype(dtypes.as_dtype(dtype)))


def eye(n: int, m: Optional[int] = None, dtype="float32") -> Tensor:
    """The ``n x m`` identity matrix (``m`` defaults to ``n``)."""
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    if n < 0 or m < 0:
        raise ValueError(f"eye: sizes must be >= 0, got {n} x {m}")
    return constant(np.eye(n, m, dtype=dtypes.as_dtype(dtype)))


def full(size, fill_value, dtype=None) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value (bool, int64, float32)."""
    dt = _value_dtype(fill_value, dtype)
    shape = _size((size,) if not isinstance(size, (tuple, list)) else (tuple(size),))
    if any(isinstance(d, Dim) for d in shape):
        raise ValueError(f"full needs a concrete shape, got {shape}; use full_like for a symbolic one")
    return constant(np.full(shape, fill_value, dtype=dt))


def _shape_dtype(size, dtype):
    """``(2, 3)``, ``((2, 3),)`` or numpy's ``((2, 3), dtype)`` -> shape, dtype."""
    if len(size) == 2 and isinstance(size[0], (tuple, list)):
        size, dtype = size[:1], size[1]
    return _size(size), dtypes.as_dtype(dtype)


def zeros(*size, dtype="float32") -> Tensor:
    """Zeros of ``size``: ``zeros(2, 3)``, ``zeros((2, 3))`` or numpy's ``zeros((2, 3), "int64")``."""
    shape, dt = _shape_dtype(size, dtype)
    return constant(np.zeros(shape, dt))


def ones(*size, dtype="float32") -> Tensor:
    """Ones of ``size``: ``ones(2, 3)``, ``ones((2, 3))`` or numpy's ``ones((2, 3), "int64")``."""
    shape, dt = _shape_dtype(size, dtype)
    return constant(np.ones(shape, dt))


def empty(*size, dtype="float32") -> Tensor:
    """Zeros of ``size`` (a graph has no uninitialised memory; zeros are deterministic)."""
    return zeros(*size, dtype=dtype)


@builder()
def full_like(x: Tensor, fill_value, dtype=None) -> Tensor:
    """``fill_value`` in ``x``'s shape (symbolic dimensions too); ``x``'s dtype unless ``dtype`` is given.

    >>> import rustyasg.core as rg
    >>> rg.full_like(rg.input((None, 2), name="f"), 7.0).shape
    (Dim(f.0), 2)
    """
    x = as_tensor(x)
    dt = dtypes.as_dtype(dtype) if dtype is not None else x.dtype
    return reduce.broadcast_to(constant(np.asarray(fill_value).astype(dt)), shape=x.shape)


def zeros_like(x: Tensor, dtype=None) -> Tensor:
    """Zeros shaped like ``x`` (works with symbolic shapes)."""
    x = as_tensor(x)
    if dtype is None or dtypes.as_dtype(dtype) == x.dtype:
        return movement.zeros_like_shape(x)
    return full_like(x, 0, dtype)


def ones_like(x: Tensor, dtype=None) -> Tensor:
    """Ones shaped like ``x``."""
    from .ops import ones_like_scalar

    x = as_tensor(x)
    if dtype is None or dtypes.as_dtype(dtype) == x.dtype:
        return ones_like_scalar(x)
    return full_like(x, 1, dtype)


def empty_like(x: Tensor, dtype=None) -> Tensor:
    """Zeros shaped like ``x`` (see :func:`empty`)."""
    return zeros_like(x, dtype)


def _triangle_mask(x: Tensor, diagonal: int, lower: bool) -> np.ndarray:
    if x.ndim < 2:
        raise ValueError(f"needs a tensor of at least 2 dimensions, got {x.describe()}")
    rows, cols = x.shape[-2:]
    if isinstance(rows, Dim) or isinstance(cols, Dim):
        raise ValueError(f"the last two dimensions must be concrete, got {x.describe()}")
    keep = np.tri(rows, cols, k=diagonal, dtype=bool) if lower else ~np.tri(rows, cols, k=diagonal - 1, dtype=bool)
    return keep


@builder()
def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """``x`` on and below the ``diagonal``-th diagonal of its last two axes, zeros above (``torch.tril``)."""
    from .ops import where

    x = as_tensor(x)
    return where(constant(_triangle_mask(x, operator.index(diagonal), True)), x, constant(0, x.dtype))


@builder()
def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """``x`` on and above the ``diagonal``-th diagonal of its last two axes, zeros below (``torch.triu``)."""
    from .ops import where

    x = as_tensor(x)
    return where(constant(_triangle_mask(x, operator.index(diagonal), False)), x, constant(0, x.dtype))


def tril_mask(rows: int, cols: Optional[int] = None, diagonal: int = 0) -> Tensor:
    """A bool ``rows x cols`` mask, True on and below the ``diagonal``-th diagonal (a causal mask)."""
    return constant(np.tri(rows, rows if cols is None else cols, k=diagonal, dtype=bool))


def triu_mask(rows: int, cols: Optional[int] = None, diagonal: int = 0) -> Tensor:
    """A bool ``rows x cols`` mask, True on and above the ``diagonal``-th diagonal."""
    return constant(~np.tri(rows, rows if cols is None else cols, k=diagonal - 1, dtype=bool))


@builder()
def meshgrid(*tensors, indexing: str = "ij") -> list:
    """Coordinate grids from 1-d tensors (``torch.meshgrid``); ``indexing`` 'ij' (matrix) or 'xy' (Cartesian).

    >>> import rustyasg.core as rg
    >>> [g.shape for g in rg.meshgrid(rg.arange(2), rg.arange(3))]
    [(2, 3), (2, 3)]
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = [as_tensor(t) for t in tensors]
    for t in tensors:
        if t.ndim > 1:
            raise ValueError(f"meshgrid takes 0-d or 1-d tensors, got {t.describe()}")
    tensors = [t.reshape((1,)) if t.ndim == 0 else t for t in tensors]
    sizes = [t.shape[0] for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(tensors):
        axis = i
        if indexing == "xy" and len(tensors) >= 2 and i < 2:
            axis = 1 - i
        shape = tuple(sizes[axis] if a == axis else 1 for a in range(len(tensors)))
        out.append(reduce.broadcast_to(t.reshape(shape), shape=tuple(sizes)))
    return out


@builder()
def randint(low: int, high: Optional[int] = None, size=(), *, generator=None, seed=None, salt: int = 0,
            dtype="int64") -> Tensor:
    """Uniform integers in ``[low, high)`` (``torch.randint``), seeded like every draw of RustyASG.

    The stream is ``generator`` (an :class:`~rustyasg.core.RNG`, advanced every step), else the
    int scalar tensor ``seed`` with ``salt``, else a fresh default RNG (reproducible after
    ``rg.manual_seed``). ``high - low`` is at most 2**24 (the uniform draws carry 24 bits).

    >>> import rustyasg.core as rg
    >>> r = rg.randint(0, 10, (2, 3), seed=rg.constant(5, "int64"))
    >>> r.shape, r.dtype
    ((2, 3), dtype('int64'))
    """
    from .ops import cast, floor, minimum, random_uniform

    if high is None:
        low, high = 0, low
    low, high = operator.index(low), operator.index(high)
    span = high - low
    if span <= 0:
        raise ValueError(f"randint needs low < high, got low={low}, high={high}")
    if span > RANDINT_MAX_RANGE:
        raise ValueError(f"randint draws from ranges of at most 2**24 values, got {span}; "
                         "combine two draws for a wider range")
    dt = dtypes.as_dtype(dtype)
    if not dtypes.is_integer(dt):
        raise TypeError(f"randint makes integers, not {dt}")
    shape = _size((size,) if not isinstance(size, (tuple, list)) else (tuple(size),))
    if generator is not None:
        seed, salt = generator.state, generator.next_salt()
    elif seed is None:
        from .rng import RNG

        rng = RNG(name="randint")
        seed, salt = rng.state, rng.next_salt()
    seed = as_tensor(seed) if isinstance(seed, Tensor) else constant(int(seed), "int64")
    u = random_uniform(seed, shape=shape, salt=salt, low=0.0, high=float(span), dtype=dtypes.float64)
    k = cast(minimum(floor(u), float(span - 1)), dtype=dt)
    return k + low if low else k
