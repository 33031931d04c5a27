"""Window geometry of convolution and pooling along one spatial axis, with PyTorch's formulas.

Shared by the op declarations (shape rules), their numpy references and the
backends' kernels, so every part computes output sizes and window positions the
same way. All functions work on plain ints (one axis at a time).

Example:
    >>> conv_output_size(7, kernel=3, stride=2, padding=1, dilation=1)
    4
    >>> pool_output_size(5, kernel=2, stride=2, padding=0, dilation=1, ceil_mode=True)
    3
    >>> adaptive_bounds(5, 3)
    (array([0, 1, 3]), array([2, 4, 5]))
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution (``torch.nn.Conv2d``'s formula); may be <= 0 when the kernel is too big.

    >>> conv_output_size(5, 3, 1, 0, 2)
    1
    """
    return (size + 2 * padding - effective_kernel(kernel, dilation)) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                               output_padding: int) -> int:
    """Output length of a transposed convolution (``torch.nn.ConvTranspose2d``'s formula).

    >>> conv_transpose_output_size(3, 3, 2, 1, 1, 1)
    6
    """
    return (size - 1) * stride - 2 * padding + effective_kernel(kernel, dilation) + output_padding


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of max/avg pooling, as PyTorch's ``pooling_output_shape``.

    In ceil mode the last window may run past the padded input, but it must start
    inside the input or its left padding.

    >>> pool_output_size(6, 3, 2, 0, 1, False), pool_output_size(6, 3, 2, 0, 1, True)
    (2, 3)
    """
    out = (size + 2 * padding - effective_kernel(kernel, dilation) + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def window_positions(out: int, kernel: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """``(out, kernel)`` input positions read by each output (negative or past the end = padding).

    >>> window_positions(2, 2, 2, 1, 1).tolist()
    [[-1, 0], [1, 2]]
    """
    return np.arange(out)[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation


def adaptive_bounds(size: int, out: int):
    """PyTorch's adaptive windows: ``start = floor(i*size/out)``, ``end = ceil((i+1)*size/out)``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


@lru_cache(maxsize=256)
def adaptive_positions(size: int, out: int):
    """``(positions, valid)``, both ``(out, K)``, of adaptive windows padded to the widest one ``K``.

    Invalid slots repeat the window's first position, so gathering them is safe.

    >>> pos, valid = adaptive_positions(5, 3)
    >>> pos.tolist(), valid.tolist()
    ([[0, 1, 0], [1, 2, 3], [3, 4, 3]], [[True, True, False], [True, True, True], [True, True, False]])
    """
    start, end = adaptive_bounds(size, out)
    width = int((end - start).max())
    pos = start[:, None] + np.arange(width)[None, :]
    valid = pos < end[:, None]
    pos = np.where(valid, pos, start[:, None])
    pos.setflags(write=False), valid.setflags(write=False)
    return pos, valid


@lru_cache(maxsize=256)
def pool_positions(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool):
    """``(positions, valid)`` of max-pooling windows; invalid slots are padding (clipped into range).

    >>> pos, valid = pool_positions(4, 3, 2, 1, 1, False)
    >>> pos.tolist(), valid.tolist()
    ([[0, 0, 1], [1, 2, 3]], [[False, True, True], [True, True, True]])
    """
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    pos = window_positions(out, kernel, stride, padding, dilation)
    valid = (pos >= 0) & (pos < size)
    pos = np.clip(pos, 0, size - 1)
    pos.setflags(write=False), valid.setflags(write=False)
    return pos, valid


def _averaging_matrix(pos: np.ndarray, valid: np.ndarray, size: int, divisor: np.ndarray) -> np.ndarray:
    rows = np.broadcast_to(np.arange(pos.shape[0])[:, None], pos.shape)
    mat = np.zeros((pos.shape[0], size))
    np.add.at(mat, (rows[valid], pos[valid]), 1.0)
    mat /= divisor[:, None]
    mat.setflags(write=False)
    return mat


@lru_cache(maxsize=256)
def avg_pool_matrix(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool, count_include_pad: bool,
                    divisor: float = 0.0) -> np.ndarray:
    """``(out, size)`` averaging weights of avg pooling along one axis.

    Average pooling is separable: ``out = A_h @ x @ A_w.T`` per plane. As in PyTorch,
    ``count_include_pad`` counts padding up to ``size + padding`` (not what ceil mode
    adds past it). ``divisor`` > 0 replaces the count (``divisor_override``; pass it on one axis only).

    >>> avg_pool_matrix(3, 2, 1, 0, False, True).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
    """
    out = pool_output_size(size, kernel, stride, padding, 1, ceil_mode)
    start = np.arange(out) * stride - padding
    pos = window_positions(out, kernel, stride, padding, 1)
    valid = (pos >= 0) & (pos < size)
    if divisor > 0:
        div = np.full(out, float(divisor))
    elif count_include_pad:
        div = (np.minimum(start + kernel, size + padding) - start).astype(np.float64)
    else:
        div = valid.sum(axis=1).astype(np.float64)
    return _averaging_matrix(np.clip(pos, 0, size - 1), valid, size, div)


@lru_cache(maxsize=256)
def adaptive_avg_matrix(size: int, out: int) -> np.ndarray:
    """``(out, size)`` averaging weights of adaptive average pooling along one axis.

    >>> adaptive_avg_matrix(3, 2).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
    """
    pos, valid = adaptive_positions(size, out)
    return _averaging_matrix(pos, valid, size, valid.sum(axis=1).astype(np.float64))
