"""1-D and 3-D pooling and max-unpooling, lowered to the core's 2-D pooling ops.

* 1-D pooling is 2-D pooling over a unit height (so ``return_indices`` works too).
* 3-D pooling pools height and width with the 2-D op on ``(N, C*D, H, W)``, then the depth
  axis: max and box averages are separable (the max of a box is the max of per-axis maxima;
  the count of valid cells in a box is the product of per-axis counts). Depth max pooling is a
  constant-index ``take`` of the windows and a ``max``; depth averaging a matmul with the
  averaging matrix of the core's window geometry, with PyTorch's ``count_include_pad`` and
  ``ceil_mode`` rules.
* ``max_unpool{1,2,3}d`` writes each value at its flat index with ``scatter`` into zeros.

Example:
    >>> import rustyasg.core as rg
    >>> max_pool3d(rg.input((1, 2, 5, 6, 6)), 2).shape
    (1, 2, 2, 3, 3)
    >>> AvgPool1d(3, stride=2, padding=1)(rg.input((2, 4, 9))).shape
    (2, 4, 5)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.ops.window_geometry import avg_pool_matrix, pool_positions

from ._checks import check_rank, shape_error
from .module import Module

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool3d", "max_unpool1d", "max_unpool2d",
           "max_unpool3d", "MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d", "MaxUnpool1d", "MaxUnpool2d",
           "MaxUnpool3d"]


def _tuple(v, n: int) -> tuple:
    return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


def _window(kernel_size, stride, padding, dilation, n: int):
    kernel = _tuple(kernel_size, n)
    stride = kernel if stride is None or stride == () else _tuple(stride, n)
    return kernel, stride, _tuple(padding, n), _tuple(dilation, n)


@rg.builder()
def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """``torch.nn.functional.max_pool2d``, with ``return_indices`` (flat ``h*W + w`` positions).

    >>> y, i = max_pool2d(rg.input((1, 1, 4, 4)), 2, return_indices=True); i.dtype
    dtype('int64')
    """
    y = rg.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return y
    return y, rg.max_pool2d_indices(x, kernel_size, stride, padding, dilation, ceil_mode)


@rg.builder()
def max_pool1d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling over ``(N, C, L)`` (``torch.nn.functional.max_pool1d``).

    >>> max_pool1d(rg.input((2, 3, 8)), 2).shape
    (2, 3, 4)
    """
    check_rank("max_pool1d", x, 3, "input (N, C, L)")
    (k,), (s,), (p,), (d,) = _window(kernel_size, stride, padding, dilation, 1)
    out = max_pool2d(rg.unsqueeze(x, 2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    return tuple(rg.squeeze(t, 2) for t in out) if return_indices else rg.squeeze(out, 2)


@rg.builder()
def avg_pool1d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Average pooling over ``(N, C, L)`` (``torch.nn.functional.avg_pool1d``).

    >>> avg_pool1d(rg.input((2, 3, 8)), 3, 2, 1).shape
    (2, 3, 4)
    """
    check_rank("avg_pool1d", x, 3, "input (N, C, L)")
    (k,), (s,), (p,), _ = _window(kernel_size, stride, padding, 1, 1)
    return rg.squeeze(rg.avg_pool2d(rg.unsqueeze(x, 2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad), 2)


def _planes(x: Tensor):
    """``(N, C, D, H, W) -> (N, C*D, H, W)`` and back."""
    n, c, d = x.shape[0], x.shape[1], x.shape[2]
    return x.reshape((n, c * d) + tuple(x.shape[3:])), lambda y: y.reshape((n, c, d) + tuple(y.shape[2:]))


@rg.builder()
def max_pool3d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """Max pooling over ``(N, C, D, H, W)`` (``torch.nn.functional.max_pool3d``).

    >>> max_pool3d(rg.input((1, 1, 4, 4, 4)), 3, 1, 1).shape
    (1, 1, 4, 4, 4)
    """
    check_rank("max_pool3d", x, 5, "input (N, C, D, H, W)")
    k, s, p, d = _window(kernel_size, stride, padding, dilation, 3)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise shape_error("max_pool3d", f"padding {p} must be at most half the kernel {k}", x)
    flat, back = _planes(x)
    y = back(rg.max_pool2d(flat, k[1:], s[1:], p[1:], d[1:], ceil_mode))
    depth = x.shape[2]
    pos, valid = pool_positions(depth, k[0], s[0], p[0], d[0], ceil_mode)
    win = rg.take(y, rg.constant(np.ascontiguousarray(pos, np.int64)), axis=2)  # (N, C, Do, kd, Ho, Wo)
    if not valid.all():
        win = rg.where(rg.constant(valid.reshape(valid.shape + (1, 1))), win, -np.inf)
    return rg.max(win, axis=3)


@rg.builder()
def avg_pool3d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """Average pooling over ``(N, C, D, H, W)`` (``torch.nn.functional.avg_pool3d``).

    >>> avg_pool3d(rg.input((1, 2, 4, 4, 4)), 2).shape
    (1, 2, 2, 2, 2)
    """
    check_rank("avg_pool3d", x, 5, "input (N, C, D, H, W)")
    k, s, p, _ = _window(kernel_size, stride, padding, 1, 3)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise shape_error("avg_pool3d", f"padding {p} must be at most half the kernel {k}", x)
    flat, back = _planes(x)
    # With an override the plane pass sums (divisor 1) and the depth pass divides by it.
    y = back(rg.avg_pool2d(flat, k[1:], s[1:], p[1:], ceil_mode, count_include_pad,
                           1 if divisor_override else None))
    a = avg_pool_matrix(int(x.shape[2]), k[0], s[0], p[0], ceil_mode, count_include_pad,
                        float(divisor_override or 0))
    from .resample import apply_along_axis

    return apply_along_axis(y, 2, a)


def _max_unpool(x: Tensor, indices: Tensor, kernel_size, stride, padding, output_size, nd: int, where: str) -> Tensor:
    check_rank(where, x, nd + 2, "input")
    if tuple(indices.shape) != tuple(x.shape):
        raise shape_error(where, f"indices shape {tuple(indices.shape)} must equal the input's", x, indices)
    k, s, p, _ = _window(kernel_size, stride, padding, 1, nd)
    spatial = tuple(x.shape[2:])
    default = tuple((n - 1) * si - 2 * pi + ki for n, si, pi, ki in zip(spatial, s, p, k))
    size = default if output_size is None else tuple(int(v) for v in tuple(output_size)[-nd:])
    for want, base, si in zip(size, default, s):
        if not base - si < want < base + si:
            raise shape_error(where, f"output_size {size} must be within a stride of the default {default}", x)
    n, c = x.shape[0], x.shape[1]
    total = int(np.prod(size))
    zeros = rg.broadcast_to(rg.constant(np.zeros((), x.dtype)), shape=(n, c, total))
    flat = int(np.prod(spatial))
    out = rg.scatter(zeros, 2, indices.reshape((n, c, flat)), x.reshape((n, c, flat)))
    return out.reshape((n, c) + size)


@rg.builder()
def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Inverse of ``max_pool1d(return_indices=True)``: values at their positions, zeros elsewhere."""
    return _max_unpool(x, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


@rg.builder()
def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Inverse of ``max_pool2d(return_indices=True)`` (``torch.nn.functional.max_unpool2d``).

    >>> y, i = max_pool2d(rg.input((1, 2, 4, 4)), 2, return_indices=True)
    >>> max_unpool2d(y, i, 2).shape
    (1, 2, 4, 4)
    """
    return _max_unpool(x, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


@rg.builder()
def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Inverse of a 3-D max pooling with indices (flat ``(d*H + h)*W + w`` positions)."""
    return _max_unpool(x, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")


class _Pool(Module):
    """Stores the arguments; ``forward`` calls the function of the same name."""

    fn = None

    def __init__(self, kernel_size, stride=None, padding=0, **options):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.options = kernel_size, stride, padding, options

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x, self.kernel_size, self.stride, self.padding, **self.options)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(_Pool):
    """``torch.nn.MaxPool1d``."""

    fn = staticmethod(max_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode,
                         return_indices=return_indices)


class MaxPool3d(_Pool):
    """``torch.nn.MaxPool3d``."""

    fn = staticmethod(max_pool3d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode)


class AvgPool1d(_Pool):
    """``torch.nn.AvgPool1d``."""

    fn = staticmethod(avg_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)


class AvgPool3d(_Pool):
    """``torch.nn.AvgPool3d``."""

    fn = staticmethod(avg_pool3d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                         divisor_override=divisor_override)


class _Unpool(Module):
    fn = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor, indices: Tensor, output_size=None) -> Tensor:
        return type(self).fn(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool1d(_Unpool):
    """``torch.nn.MaxUnpool1d``."""

    fn = staticmethod(max_unpool1d)


class MaxUnpool2d(_Unpool):
    """``torch.nn.MaxUnpool2d``."""

    fn = staticmethod(max_unpool2d)


class MaxUnpool3d(_Unpool):
    """``torch.nn.MaxUnpool3d``."""

    fn = staticmethod(max_unpool3d)
