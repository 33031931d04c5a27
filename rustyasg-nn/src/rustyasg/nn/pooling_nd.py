"""Pooling of 1, 2 or 3 spatial axes and max-unpooling, lowered to the core's 2-D pooling ops.

One mechanism serves every rank and every window rule (fixed windows or adaptive ones):

* 1-D pooling is 2-D pooling over a unit height (so indices come out as flat positions too).
* 3-D pooling pools height and width with the 2-D op on ``(N, C*D, H, W)``, then the depth
  axis: max and box averages are separable (the max of a box is the max of per-axis maxima;
  the count of valid cells in a box is the product of per-axis counts). The depth pass gathers
  each output's depth window with a constant-index ``take`` and reduces it: max picks one depth
  by PyTorch's rule (the first maximum, or the last NaN: NaN propagates) for both the value and
  the flat ``(d*H + h)*W + w`` index, or a weighted sum that
  reads only the window, so a NaN or inf elsewhere along depth stays out (as in PyTorch).
  Window positions and weights come from the core's window geometry (PyTorch's
  ``ceil_mode``/``count_include_pad`` rules, adaptive windows ``floor(i*in/out)`` to
  ``ceil((i+1)*in/out)``).
* ``max_unpool{1,2,3}d`` writes each value at its flat index with ``scatter`` into zeros.

Example:
    >>> import rustyasg.core as rg
    >>> max_pool3d(rg.input((1, 2, 5, 6, 6)), 2).shape
    (1, 2, 2, 3, 3)
    >>> AvgPool1d(3, stride=2, padding=1)(rg.input((2, 4, 9))).shape
    (2, 4, 5)
    >>> AdaptiveMaxPool3d((2, None, 3), return_indices=True)(rg.input((1, 2, 5, 4, 7)))[1].describe()
    'int64(1, 2, 2, 4, 3)'
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.ops.window_geometry import adaptive_avg_matrix, adaptive_positions, avg_pool_matrix, pool_positions

from ._checks import check_rank, shape_error
from .module import Module

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool3d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d", "MaxPool1d", "MaxPool3d",
           "AvgPool1d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d",
           "MaxUnpool3d"]

_LAYOUT = {1: "input (N, C, L)", 2: "input (N, C, H, W)", 3: "input (N, C, D, H, W)"}


def _tuple(v, n: int) -> tuple:
    return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


def _window(kernel_size, stride, padding, dilation, n: int):
    kernel = _tuple(kernel_size, n)
    stride = kernel if stride is None or stride == () else _tuple(stride, n)
    return kernel, stride, _tuple(padding, n), _tuple(dilation, n)


def _plane(values: tuple, nd: int, unit) -> tuple:
    """The (height, width) part of per-axis ``values`` for the core's 2-D op (1-D: a unit height)."""
    return (unit,) + values if nd == 1 else values[-2:]


def _as_planes(x: Tensor, nd: int):
    """``x`` as the 2-D op's ``(N, C', H, W)`` input, and the function taking its results back to ``nd`` axes."""
    if nd == 1:
        return rg.unsqueeze(x, 2), lambda y: rg.squeeze(y, 2)
    if nd == 2:
        return x, lambda y: y
    n, c, d = x.shape[0], x.shape[1], x.shape[2]
    return x.reshape((n, c * d) + tuple(x.shape[3:])), lambda y: y.reshape((n, c, d) + tuple(y.shape[2:]))


def _depth_windows(y: Tensor, pos: np.ndarray, valid: np.ndarray, fill: float) -> Tensor:
    """``(N, C, Do, K, H, W)``: depth window ``k`` of every output depth, ``fill`` where the slot is padding."""
    win = rg.take(y, rg.constant(np.ascontiguousarray(pos, np.int64)), axis=2)
    if valid.all():
        return win
    return rg.where(rg.constant(np.ascontiguousarray(valid).reshape(valid.shape + (1, 1))), win, fill)


def _depth_pick(win: Tensor, valid: np.ndarray) -> Tensor:
    """Slot (keepdims on axis 3) of each depth window ``win`` ``(N, C, Do, K, H, W)`` that PyTorch's scan
    takes: it reads depth-major and takes a cell when ``v > best or isnan(v)``, so the last NaN wins when
    there are NaNs, otherwise the first maximum inside the input. As a score per slot: ``K + j`` for a NaN
    at slot ``j``, ``K - 1 - j`` for a maximum, -1 for the rest (padding included), and its argmax.

    The plane op already picked each depth's cell by the same rule, so the pick is PyTorch's overall.
    """
    k = win.shape[3]
    slot = np.arange(k).reshape(k, 1, 1)
    inside = rg.constant(np.ascontiguousarray(valid).reshape(valid.shape + (1, 1)))
    top = rg.max(win, axis=3, keepdims=True)
    score = rg.where(rg.isnan(win), rg.constant((k + slot).astype(np.float32)),
                     rg.where(inside & (win == top), rg.constant((k - 1 - slot).astype(np.float32)), -1.0))
    return rg.stop_gradient(rg.argmax(score, axis=3, keepdims=True))


def _max_nd(x: Tensor, nd: int, plane_op: Callable, depth, return_indices: bool):
    """Max pooling of ``nd`` spatial axes: ``plane_op(planes, indices)`` pools height and width (values, or
    int64 flat positions with ``indices``); ``depth`` = ``(positions, valid)`` windows of the depth axis."""
    planes, back = _as_planes(x, nd)
    y = back(plane_op(planes, False))
    idx = back(plane_op(planes, True)) if return_indices else None
    if nd == 3:
        pos, valid = depth
        win = _depth_windows(y, pos, valid, -np.inf)
        k = _depth_pick(win, valid)
        if idx is not None:
            # the picked depth's own flat (h*W + w) position, offset by that depth's plane
            area = int(x.shape[3]) * int(x.shape[4])
            flat = rg.take(idx, rg.constant(np.ascontiguousarray(pos, np.int64)), axis=2) \
                + rg.constant((pos.astype(np.int64) * area).reshape(pos.shape + (1, 1)))
            idx = rg.squeeze(rg.take_along_dim(flat, k, dim=3), 3)
        y = rg.squeeze(rg.take_along_dim(win, k, dim=3), 3)
    return (y, idx) if return_indices else y


def _avg_nd(x: Tensor, nd: int, plane_op: Callable, depth: Optional[np.ndarray]) -> Tensor:
    """Average pooling of ``nd`` spatial axes: ``plane_op`` pools height and width; ``depth`` is the
    ``(out, D)`` averaging matrix of the depth axis (each row's nonzero weights are its window)."""
    planes, back = _as_planes(x, nd)
    y = back(plane_op(planes))
    if nd < 3:
        return y
    rows = [np.flatnonzero(r) for r in depth]
    width = max(len(r) for r in rows)
    pos = np.array([np.pad(r, (0, width - len(r)), constant_values=r[0]) for r in rows], np.int64)
    valid = np.arange(width)[None, :] < np.array([len(r) for r in rows])[:, None]
    weight = np.where(valid, np.take_along_axis(depth, pos, axis=1), 0.0).reshape(pos.shape + (1, 1))
    win = _depth_windows(y, pos, valid, 0.0)
    return rg.sum(win * rg.constant(weight.astype(y.dtype)), axis=3)


# --- fixed windows -------------------------------------------------------------------------------
def _max_pool(where: str, nd: int, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,
              return_indices: bool):
    check_rank(where, x, nd + 2, _LAYOUT[nd])
    k, s, p, d = _window(kernel_size, stride, padding, dilation, nd)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise shape_error(where, f"padding {p} must be at most half the kernel {k}", x)
    args = (_plane(k, nd, 1), _plane(s, nd, 1), _plane(p, nd, 0), _plane(d, nd, 1), ceil_mode)

    def plane_op(t, indices):
        return (rg.max_pool2d_indices if indices else rg.max_pool2d)(t, *args)

    depth = pool_positions(int(x.shape[2]), k[0], s[0], p[0], d[0], ceil_mode) if nd == 3 else None
    return _max_nd(x, nd, plane_op, depth, return_indices)


@rg.builder()
def max_pool1d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling over ``(N, C, L)`` (``torch.nn.functional.max_pool1d``).

    >>> max_pool1d(rg.input((2, 3, 8)), 2).shape
    (2, 3, 4)
    """
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@rg.builder()
def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """``torch.nn.functional.max_pool2d``, with ``return_indices`` (flat ``h*W + w`` positions).

    >>> y, i = max_pool2d(rg.input((1, 1, 4, 4)), 2, return_indices=True); i.dtype
    dtype('int64')
    """
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@rg.builder()
def max_pool3d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling over ``(N, C, D, H, W)`` (``torch.nn.functional.max_pool3d``); indices are flat
    ``(d*H + h)*W + w`` positions.

    >>> max_pool3d(rg.input((1, 1, 4, 4, 4)), 3, 1, 1).shape
    (1, 1, 4, 4, 4)
    """
    return _max_pool("max_pool3d", 3, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(where: str, nd: int, x: Tensor, kernel_size, stride, padding, ceil_mode: bool,
              count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    check_rank(where, x, nd + 2, _LAYOUT[nd])
    k, s, p, _ = _window(kernel_size, stride, padding, 1, nd)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise shape_error(where, f"padding {p} must be at most half the kernel {k}", x)
    # With an override over 3 axes the plane pass sums (divisor 1) and the depth pass divides by it.
    plane_divisor = 1 if divisor_override and nd == 3 else divisor_override

    def plane_op(t):
        return rg.avg_pool2d(t, _plane(k, nd, 1), _plane(s, nd, 1), _plane(p, nd, 0), ceil_mode, count_include_pad,
                             plane_divisor)

    depth = avg_pool_matrix(int(x.shape[2]), k[0], s[0], p[0], ceil_mode, count_include_pad,
                            float(divisor_override or 0)) if nd == 3 else None
    return _avg_nd(x, nd, plane_op, depth)


@rg.builder()
def avg_pool1d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Average pooling over ``(N, C, L)`` (``torch.nn.functional.avg_pool1d``).

    >>> avg_pool1d(rg.input((2, 3, 8)), 3, 2, 1).shape
    (2, 3, 4)
    """
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


@rg.builder()
def avg_pool3d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """Average pooling over ``(N, C, D, H, W)`` (``torch.nn.functional.avg_pool3d``).

    >>> avg_pool3d(rg.input((1, 2, 4, 4, 4)), 2).shape
    (1, 2, 2, 2, 2)
    """
    return _avg_pool("avg_pool3d", 3, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# --- adaptive windows ------------------------------------------------------------------------------
def _adaptive_size(where: str, x: Tensor, output_size, nd: int, global_mean: bool = False) -> tuple:
    """PyTorch's ``output_size``: an int for every axis or one entry per axis, ``None`` keeping that input size."""
    check_rank(where, x, nd + 2, _LAYOUT[nd])
    size = (output_size,) * nd if output_size is None or isinstance(output_size, (int, np.integer)) \
        else tuple(output_size)
    if len(size) != nd:
        raise shape_error(where, f"output_size {output_size!r} needs {nd} entries (one per spatial axis)", x)
    if any(o is not None and int(o) <= 0 for o in size):
        raise shape_error(where, f"output_size {output_size!r} must be positive", x)
    if global_mean and all(o == 1 for o in size):  # a plain mean: any spatial sizes, symbolic ones too
        return size
    if any(not isinstance(n, (int, np.integer)) for n in x.shape[2:]):
        raise shape_error(where, "adaptive pooling to a size other than 1 needs static spatial sizes; give the "
                          "input's spatial axes fixed sizes", x)
    return tuple(int(n) if o is None else int(o) for o, n in zip(size, x.shape[2:]))


def _adaptive_avg(where: str, nd: int, x: Tensor, output_size) -> Tensor:
    size = _adaptive_size(where, x, output_size, nd, global_mean=True)
    if all(o == 1 for o in size):  # a plain mean: cheaper
        return x.mean(axis=tuple(range(2, nd + 2)), keepdims=True)
    depth = adaptive_avg_matrix(int(x.shape[2]), size[0]) if nd == 3 else None
    return _avg_nd(x, nd, lambda t: rg.adaptive_avg_pool2d(t, _plane(size, nd, 1)), depth)


def _adaptive_max(where: str, nd: int, x: Tensor, output_size, return_indices: bool):
    size = _adaptive_size(where, x, output_size, nd)

    def plane_op(t, indices):
        return (rg.adaptive_max_pool2d_indices if indices else rg.adaptive_max_pool2d)(t, _plane(size, nd, 1))

    depth = adaptive_positions(int(x.shape[2]), size[0]) if nd == 3 else None
    return _max_nd(x, nd, plane_op, depth, return_indices)


@rg.builder()
def adaptive_avg_pool1d(x: Tensor, output_size) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool1d`` over ``(N, C, L)``: window ``i`` spans
    ``floor(i*L/out)`` to ``ceil((i+1)*L/out)``.

    >>> adaptive_avg_pool1d(rg.input((2, 3, 10)), 4).shape
    (2, 3, 4)
    """
    return _adaptive_avg("adaptive_avg_pool1d", 1, x, output_size)


@rg.builder()
def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool2d`` over ``(N, C, H, W)`` (``None`` keeps that input size).

    >>> adaptive_avg_pool2d(rg.input((2, 3, 10, 9)), (4, None)).shape
    (2, 3, 4, 9)
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, x, output_size)


@rg.builder()
def adaptive_avg_pool3d(x: Tensor, output_size) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool3d`` over ``(N, C, D, H, W)``.

    >>> adaptive_avg_pool3d(rg.input((2, 3, 5, 6, 7)), (2, 3, None)).shape
    (2, 3, 2, 3, 7)
    """
    return _adaptive_avg("adaptive_avg_pool3d", 3, x, output_size)


@rg.builder()
def adaptive_max_pool1d(x: Tensor, output_size, return_indices: bool = False):
    """``torch.nn.functional.adaptive_max_pool1d`` over ``(N, C, L)``; indices are int64 positions along ``L``.

    >>> adaptive_max_pool1d(rg.input((2, 3, 10)), 3).shape
    (2, 3, 3)
    """
    return _adaptive_max("adaptive_max_pool1d", 1, x, output_size, return_indices)


@rg.builder()
def adaptive_max_pool2d(x: Tensor, output_size, return_indices: bool = False):
    """``torch.nn.functional.adaptive_max_pool2d``; indices are int64 flat ``h*W + w`` positions.

    >>> adaptive_max_pool2d(rg.input((2, 3, 10, 9)), 3, return_indices=True)[1].describe()
    'int64(2, 3, 3, 3)'
    """
    return _adaptive_max("adaptive_max_pool2d", 2, x, output_size, return_indices)


@rg.builder()
def adaptive_max_pool3d(x: Tensor, output_size, return_indices: bool = False):
    """``torch.nn.functional.adaptive_max_pool3d``; indices are int64 flat ``(d*H + h)*W + w`` positions.

    >>> adaptive_max_pool3d(rg.input((1, 2, 5, 6, 7)), (2, 3, 4)).shape
    (1, 2, 2, 3, 4)
    """
    return _adaptive_max("adaptive_max_pool3d", 3, x, output_size, return_indices)


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
    idx, src = indices.reshape((n, c, flat)), x.reshape((n, c, flat))
    # Overlapping windows repeat an index. PyTorch writes the value there (the copies are equal) and its
    # gradient gathers the output gradient at every index, so each copy gets it. The written value
    # comes from the plain scatter; the gradient from a scatter-add whose value is taken back out
    # (where finite: inf - inf would be NaN).
    placed = rg.scatter(zeros, 2, idx, rg.stop_gradient(src))
    routed = rg.scatter_add(zeros, idx, src, axis=2)
    out = placed + rg.where(rg.isfinite(rg.stop_gradient(routed)), routed - rg.stop_gradient(routed), 0.0)
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

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode,
                         return_indices=return_indices)


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


class _AdaptivePool(Module):
    """Stores ``output_size``; ``forward`` calls the function of the same name."""

    fn = None

    def __init__(self, output_size, **options):
        super().__init__()
        self.output_size, self.options = output_size, options

    def forward(self, x: Tensor):
        return type(self).fn(x, self.output_size, **self.options)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size, return_indices=return_indices)


class AdaptiveAvgPool1d(_AdaptivePool):
    """``torch.nn.AdaptiveAvgPool1d``."""

    fn = staticmethod(adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """``torch.nn.AdaptiveAvgPool2d`` (``output_size`` an int or a pair; ``None`` entries keep the input size)."""

    fn = staticmethod(adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptivePool):
    """``torch.nn.AdaptiveAvgPool3d``."""

    fn = staticmethod(adaptive_avg_pool3d)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool1d``."""

    fn = staticmethod(adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool2d``."""

    fn = staticmethod(adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool3d``."""

    fn = staticmethod(adaptive_max_pool3d)


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
