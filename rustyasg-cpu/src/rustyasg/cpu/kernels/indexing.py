"""numba kernels for integer-array indexing: take (embedding lookup), its
scatter-add gradient, gather and scatter_add.

``take`` along an axis is a row copy in the ``(A, N, B)`` layout; ``gather`` and
``scatter_add`` use per-element base offsets precomputed at bind time, so one
kernel serves every rank and axis. Indices are checked (negative ones wrap, as
in numpy); an index out of range raises IndexError.

Example:
    >>> import numpy as np
    >>> out = np.empty((1, 2, 1)); take_rows(np.arange(3.0).reshape(1, 3, 1), np.array([2, 0]), out)
    >>> out.ravel()
    array([2., 0.])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import kernel_jit


@njit(inline="always", cache=True)
def _checked_index(j, n, message):
    """``j`` wrapped into ``0..n-1`` as numpy does (negative counts from the end); IndexError if out of range."""
    if j < 0:
        j += n
    if j < 0 or j >= n:
        raise IndexError(message)
    return j


@kernel_jit
def take_rows(x, idx, out):
    A, N, B = x.shape
    for a in range(A):
        for m in range(idx.shape[0]):
            j = _checked_index(idx[m], N, "take: index out of range")
            for b in range(B):
                out[a, m, b] = x[a, j, b]


@kernel_jit
def take_rows_grad(g, idx, out):
    out[:] = 0
    A, N, B = out.shape
    for a in range(A):
        for m in range(idx.shape[0]):
            j = _checked_index(idx[m], N, "take_grad: index out of range")
            for b in range(B):
                out[a, j, b] += g[a, m, b]


@kernel_jit
def gather_flat(x, idx, base, stride, n, out):
    for m in range(idx.shape[0]):
        j = _checked_index(idx[m], n, "gather: index out of range")
        out[m] = x[base[m] + j * stride]


@kernel_jit
def scatter_add_flat(x, idx, src, base, stride, n, out):
    for k in range(x.shape[0]):
        out[k] = x[k]
    for m in range(idx.shape[0]):
        j = _checked_index(idx[m], n, "scatter_add: index out of range")
        out[base[m] + j * stride] += src[m]


def flat_positions(idx: np.ndarray, base: np.ndarray, stride: int, n: int, op: str) -> np.ndarray:
    """``base + j * stride`` for the indices ``idx`` wrapped as :func:`_checked_index` does (numpy's
    form of :func:`gather_flat`'s and :func:`scatter_add_flat`'s addressing, for small operands).

    Example:
        >>> flat_positions(np.array([1, -1]), np.array([0, 3]), 1, 3, "gather")
        array([1, 5])
    """
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{op}: index out of range")
    pos = np.remainder(idx, n, dtype=np.int64)  # a negative index counts from the end
    if stride != 1:
        pos *= stride
    pos += base
    return pos


def base_offsets(x_shape, idx_shape, axis: int) -> np.ndarray:
    """Flat offset in ``x`` of each index position with the ``axis`` coordinate at 0."""
    strides = np.cumprod((1,) + tuple(x_shape[::-1]))[:-1][::-1]
    grids = np.indices(idx_shape, sparse=True)
    base = np.zeros(idx_shape, np.int64)
    for d, g in enumerate(grids):
        if d != axis:
            base = base + g * int(strides[d])
    return np.ascontiguousarray(base.reshape(-1))
