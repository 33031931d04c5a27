"""Composite functions built from core ops, with numpy/PyTorch-style signatures.

These add no new ops: each is a few graph ops, so every backend that runs the
core set runs them, and their gradients come for free.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((2, 3, 4), name="x")
    >>> rg.stack([x, x], axis=1).shape
    (2, 2, 3, 4)
"""

from __future__ import annotations

import operator
from typing import Sequence

import numpy as np

from .builders import builder
from .creation import arange, ones, ones_like, zeros, zeros_like  # noqa: F401  (re-exported)
from .graph import Tensor, as_tensor
from .rng import dropout  # noqa: F401  (re-exported: seeded dropout lives with the random streams)
from .ops import concat, movement, reduce
from .shapes import Dim, format_shape, normalize_axis, normalize_axes, same_dim


@builder()
def reshape(x: Tensor, *shape, **kw) -> Tensor:
    """Reshape (one dim may be -1): ``reshape(x, (2, -1))``, ``reshape(x, 2, -1)`` or ``reshape(x, shape=...)``."""
    if "shape" in kw:
        shape = (kw.pop("shape"),)
    if kw:
        raise TypeError(f"reshape() got unexpected keyword arguments {sorted(kw)}")
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return movement.reshape(as_tensor(x), shape=shape)


@builder()
def transpose(x: Tensor, axes=None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None), as ``np.transpose``.

    >>> import rustyasg.core as rg
    >>> rg.transpose(rg.input((2, 3, 4), name="t"), (0, 2, 1)).shape
    (2, 4, 3)
    """
    x = as_tensor(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(axes)
    return movement.transpose(x, axes=axes)


permute = transpose


@builder()
def squeeze(x: Tensor, axis=None) -> Tensor:
    """Remove size-1 axes (all of them, or those in ``axis``); a 0-d tensor accepts axis 0 / -1.

    >>> import rustyasg.core as rg
    >>> rg.squeeze(rg.input((1, 3, 1), name="q"), -1).shape
    (1, 3)
    """
    x = as_tensor(x)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if axis is None else normalize_axes(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"axis {a} of {x.describe()} has size {x.shape[a]}, not 1")
    return movement.reshape(x, shape=tuple(d for i, d in enumerate(x.shape) if i not in axes))


@builder()
def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis`` (``expand_dims``)."""
    x = as_tensor(x)
    if not -(x.ndim + 1) <= operator.index(axis) <= x.ndim:
        raise ValueError(f"axis {axis} is out of range for a new axis of a rank-{x.ndim} tensor "
                         f"(valid: [{-(x.ndim + 1)}, {x.ndim}])")
    ax = normalize_axis(axis, x.ndim + 1)
    return movement.reshape(x, shape=x.shape[:ax] + (1,) + x.shape[ax:])


expand_dims = unsqueeze


@builder()
def flatten(x: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes ``start_axis..end_axis`` into one (PyTorch's ``flatten``)."""
    if x.ndim == 0:
        return movement.reshape(x, shape=(1,))
    s, e = normalize_axis(start_axis, x.ndim), normalize_axis(end_axis, x.ndim)
    if s > e:
        raise ValueError(f"start_axis {start_axis} comes after end_axis {end_axis}")
    merged = 1
    for d in x.shape[s:e + 1]:
        merged = merged * d
    return movement.reshape(x, shape=x.shape[:s] + (merged,) + x.shape[e + 1:])


@builder()
def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along a new axis (``torch.stack``); they must all have one shape.

    >>> import rustyasg.core as rg
    >>> rg.stack([rg.input((), name="s0"), rg.input((), name="s1")]).shape
    (2,)
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("needs at least one tensor")
    first = tensors[0]
    for t in tensors[1:]:
        if len(t.shape) != len(first.shape) or any(not same_dim(a, b) for a, b in zip(t.shape, first.shape)):
            raise ValueError("all tensors must have the same shape, got "
                             + ", ".join(format_shape(u.shape) for u in tensors))
    normalize_axis(axis, first.ndim + 1)
    return concat(*[unsqueeze(t, axis) for t in tensors], axis=axis)


@builder()
def split(x: Tensor, sections, axis: int = 0) -> list:
    """Split into equal ``sections`` (an int) or at sizes (a list of ints), as ``torch.split`` with sizes.

    >>> import rustyasg.core as rg
    >>> [t.shape for t in rg.split(rg.input((5, 2), name="sp"), [2, 3])]
    [(2, 2), (3, 2)]
    """
    x = as_tensor(x)
    ax = normalize_axis(axis, x.ndim)
    if x.ndim == 0:
        raise ValueError("cannot split a 0-d tensor")
    n = x.shape[ax]
    if isinstance(n, Dim):
        raise ValueError(f"axis {axis} of {x.describe()} is symbolic")
    if isinstance(sections, (int, np.integer)):
        if sections <= 0 or n % sections:
            raise ValueError(f"{n} is not divisible into {sections} equal sections along axis {axis}")
        sizes = [n // int(sections)] * int(sections)
    else:
        sizes = [int(s) for s in sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"sizes {sizes} are not >= 0 or do not add up to {n} (axis {axis})")
    out, offset = [], 0
    for size in sizes:
        out.append(narrow(x, ax, offset, size))
        offset += size
    return out


@builder()
def narrow(x: Tensor, axis: int, start: int, length: int) -> Tensor:
    """``x`` restricted to ``start:start+length`` along ``axis``."""
    ax = normalize_axis(axis, x.ndim)
    n = x.shape[ax] if x.ndim else 1
    if isinstance(n, int) and not (0 <= start and 0 <= length and start + length <= n):
        raise ValueError(f"start {start} and length {length} do not fit axis {axis} of size {n}")
    starts = tuple(start if i == ax else 0 for i in range(x.ndim))
    stops = tuple(start + length if i == ax else None for i in range(x.ndim))
    return movement.slice_(x, starts=starts, stops=stops, steps=(1,) * x.ndim)


@builder()
def unstack(x: Tensor, axis: int = 0) -> list:
    """Split along ``axis`` and drop it."""
    if x.ndim == 0:
        raise ValueError("cannot unstack a 0-d tensor")
    return [squeeze(t, axis) for t in split(x, x.shape[normalize_axis(axis, x.ndim)], axis)]


@builder()
def expand(x: Tensor, *shape) -> Tensor:
    """PyTorch's ``expand``: broadcast to ``shape``; -1 keeps a dimension."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    lead = len(shape) - x.ndim
    full = tuple(x.shape[i - lead] if (isinstance(d, int) and d == -1) else d for i, d in enumerate(shape))
    return reduce.broadcast_to(x, shape=full)


@builder()
def std(x: Tensor, axis=None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Standard deviation (``sqrt(var)``); its gradient at zero variance is 0, as in PyTorch.

    ``sqrt``'s derivative is infinite at 0 and the centred values are all 0 there, so the plain
    chain rule gives 0 * inf = NaN; both ``where`` branches keep the sqrt away from 0 instead.

    >>> import rustyasg.core as rg
    >>> rg.std(rg.input((4, 3), name="sd"), axis=0).shape
    (3,)
    """
    from .ops import sqrt, where

    v = reduce.var(x, axis=axis, keepdims=keepdims, correction=correction)
    nonzero = v != 0.0  # NaN variance stays on the sqrt branch and propagates
    return where(nonzero, sqrt(where(nonzero, v, 1.0)), 0.0)
