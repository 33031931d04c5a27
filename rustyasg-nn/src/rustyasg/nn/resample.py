"""Resampling and rearranging: interpolate / Upsample, pixel_shuffle, unfold / fold (im2col), pad.

Everything is built from core ops while the graph is built:

* ``interpolate`` is separable: each resized axis is a ``take`` (nearest modes) or a weighted
  sum over the taps PyTorch's CPU kernel reads (:func:`axis_taps`): two for linear, four clamped
  ones for cubic (A = -0.75), the adaptive window for area, computed in float64 with PyTorch's
  source-index rules (``align_corners``, ``scale_factor`` vs. size ratio). ``antialias=True``
  (bilinear, bicubic) takes PyTorch's antialiasing taps: when downsampling, the filter (triangle,
  or cubic with A = -0.5) is stretched by the scale so every input pixel counts, and each row is
  normalised to sum 1. Summing taps rather than multiplying by a dense matrix keeps inf and NaN
  where PyTorch puts them (a matrix's zeros would turn every output of the row into NaN).
* ``pixel_shuffle`` / ``pixel_unshuffle`` are a reshape, a transpose and a reshape.
* ``unfold`` gathers the windows with two constant-index ``take``\\ s; ``fold`` is their adjoint
  (``take_grad`` scatter-adds overlapping windows), then a crop of the padding.
* ``pad`` takes PyTorch's order (last axis first) and modes; the ``*Pad{1,2,3}d`` modules are
  generated from one table.

Example:
    >>> import rustyasg.core as rg
    >>> interpolate(rg.input((1, 3, 4, 5)), scale_factor=2, mode="bilinear").shape
    (1, 3, 8, 10)
    >>> pixel_shuffle(rg.input((1, 8, 3, 3)), 2).shape
    (1, 2, 6, 6)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.ops.window_geometry import adaptive_positions

from ._checks import shape_error
from .module import Module

__all__ = ["interpolate", "upsample", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "pixel_shuffle",
           "pixel_unshuffle", "PixelShuffle", "PixelUnshuffle", "Unflatten", "unfold", "fold", "Unfold", "Fold", "pad",
           "interpolation_matrix"]

_MODES = {"nearest": 0, "nearest-exact": 0, "linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3, "area": 0}


def _fma(a, b, c) -> np.ndarray:
    """``a * b + c`` rounded once, elementwise (exact integer arithmetic; Python's int division rounds correctly).

    PyTorch's CPU resampling kernels, as its x86-64 wheels are built, fuse these multiply-adds;
    rounding once decides whether a source index is exactly an integer or a weight exactly 0,
    and so whether an inf at that tap turns the output into NaN.
    """
    def one(a, b, c):
        (an, ad), (bn, bd), (cn, cd) = float(a).as_integer_ratio(), float(b).as_integer_ratio(), \
            float(c).as_integer_ratio()
        return (an * bn * cd + cn * ad * bd) / (ad * bd * cd)
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))
    return np.array([one(*abc) for abc in zip(a.ravel(), b.ravel(), c.ravel())], np.float64).reshape(a.shape)


def _source(out: int, size: int, scale: Optional[float], align_corners: bool) -> np.ndarray:
    """PyTorch's ``area_pixel_compute_source_index`` before clamping (float64)."""
    dst = np.arange(out, dtype=np.float64)
    if align_corners:
        return dst * ((size - 1) / (out - 1) if out > 1 else 0.0)
    return _fma(1.0 / scale if scale else size / out, dst + 0.5, -0.5)


def _guard(src: np.ndarray, size: int):
    """PyTorch's ``guard_index_and_lambda``: the left tap (at most ``size - 1``) and the fraction in [0, 1].

    The tap is ``floorf`` of the source index, which rounds it to float32 first: a source a hair
    below an integer lands on that integer, with fraction 0.
    """
    lo = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), size - 1)
    return lo, np.clip(src - lo, 0.0, 1.0)


def _cubic_convolution(x: np.ndarray, a: float, far: bool) -> np.ndarray:
    """PyTorch's ``cubic_convolution1`` (``|x| <= 1``) and ``cubic_convolution2`` (``1 < |x| < 2``), with its
    multiply-adds fused."""
    if far:
        return _fma(_fma(_fma(a, x, -5 * a), x, 8 * a), x, -4 * a)
    return _fma(_fma(a + 2, x, -(a + 3)) * x, x, 1.0)


def _cubic(t: np.ndarray, a: float = -0.75):
    """The four cubic-convolution weights for offsets -1, 0, 1, 2 (PyTorch's ``get_cubic_upsample_coefficients``)."""
    return (_cubic_convolution(t + 1.0, a, True), _cubic_convolution(t, a, False),
            _cubic_convolution(1.0 - t, a, False), _cubic_convolution((1.0 - t) + 1.0, a, True))


def _antialias_filter(mode: str):
    """PyTorch's antialiasing filters (``aa_filter``: a triangle; ``bicubic``: A = -0.5) and their half widths."""
    if mode == "linear":
        return (lambda x: np.maximum(1.0 - np.abs(x), 0.0)), 1.0

    def cubic(x, a=-0.5):
        x = np.abs(x)
        return np.where(x < 1.0, _cubic_convolution(x, a, False),
                        np.where(x < 2.0, _cubic_convolution(x, a, True), 0.0))
    return cubic, 2.0


@dataclass(frozen=True)
class AxisTaps:
    """The input entries ("taps") PyTorch's CPU kernel combines to resize one axis of ``size`` entries.

    Output ``i`` is ``sum_k weight[i, k] * x[index[i, k]]`` over the ``k`` with ``valid[i, k]``
    (``valid`` is None when every output reads all ``K`` taps). A tap of weight 0 still counts:
    PyTorch reads it, so an inf or NaN there makes the output NaN, as it does here.
    """

    index: np.ndarray  # (out, K) int64
    weight: np.ndarray  # (out, K) float64
    valid: Optional[np.ndarray]  # (out, K) bool, or None
    size: int

    @property
    def is_identity(self) -> bool:
        """Each output copies its input entry (PyTorch's antialiased kernel skips such an axis)."""
        return (self.index.shape == (self.size, 1) and self.valid is None and bool(np.all(self.weight == 1.0))
                and bool(np.all(self.index[:, 0] == np.arange(self.size))))

    def matrix(self) -> np.ndarray:
        """The dense ``(out, size)`` matrix of the same weights (it forgets which zero weights are taps)."""
        mat = np.zeros((self.index.shape[0], self.size))
        weight = self.weight if self.valid is None else np.where(self.valid, self.weight, 0.0)
        np.add.at(mat, (np.arange(self.index.shape[0])[:, None], self.index), weight)
        return mat


def _taps(index, weight, valid, size) -> AxisTaps:
    if valid is not None and valid.all():
        valid = None
    return AxisTaps(np.ascontiguousarray(index, np.int64), np.ascontiguousarray(weight, np.float64), valid, size)


def _linear_taps(size: int, out: int, scale: Optional[float], align_corners: bool) -> AxisTaps:
    """Two taps ``lo``, ``min(lo + 1, size - 1)`` with weights ``1 - λ``, ``λ`` (``compute_source_index_and_lambda``;
    an axis that keeps its size reads ``(i, i)`` with weights ``(1, 0)`` whatever the scale, as PyTorch does)."""
    if out == size:
        lo = hi = np.arange(out)
        lam = np.zeros(out)
    else:
        lo, lam = _guard(np.maximum(_source(out, size, scale, align_corners), 0.0), size)
        hi = np.minimum(lo + 1, size - 1)
    return _taps(np.stack([lo, hi], 1), np.stack([1.0 - lam, lam], 1), None, size)


def _cubic_taps(size: int, out: int, scale: Optional[float], align_corners: bool) -> AxisTaps:
    """Four taps ``lo - 1 .. lo + 2`` clamped to the axis, cubic weights with A = -0.75."""
    lo, lam = _guard(_source(out, size, scale, align_corners), size)
    index = np.clip(lo[:, None] + np.arange(-1, 3), 0, size - 1)
    return _taps(index, np.stack(_cubic(lam), 1), None, size)


def _antialias_taps(size: int, out: int, mode: str, align_corners: bool, scale: Optional[float]) -> AxisTaps:
    """PyTorch's ``_compute_indices_min_size_weights_aa``: taps ``[center - support + 0.5, center + support + 0.5)``.

    The filter is centred on ``ratio * (i + 0.5)``; when downsampling (``ratio > 1``) its support and
    argument are stretched by ``ratio``; a row has at most ``2 * ceil(support) + 1`` taps; rows sum to 1.
    An axis that keeps its size is copied (the separable kernel skips it).
    """
    if out == size:
        return _taps(np.arange(size)[:, None], np.ones((size, 1)), None, size)
    if align_corners:
        ratio = (size - 1) / (out - 1) if out > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale else size / out
    fn, half = _antialias_filter(mode)
    support = half * ratio if ratio >= 1.0 else half
    invscale = 1.0 / ratio if ratio >= 1.0 else 1.0
    center = ratio * (np.arange(out) + 0.5)
    lo = np.maximum((center - support + 0.5).astype(np.int64), 0)  # C++ truncation toward zero, as PyTorch's cast
    count = np.clip(np.minimum((center + support + 0.5).astype(np.int64), size) - lo, 0, 2 * math.ceil(support) + 1)
    k = np.arange(max(int(count.max()), 1))
    valid = k < count[:, None]
    valid[:, 0] = True  # the kernel reads the first tap even of an empty window
    index = np.minimum(lo[:, None] + k, size - 1)
    weight = np.where(valid, fn((lo[:, None] + k - center[:, None] + 0.5) * invscale), 0.0)
    total = weight.sum(axis=1, keepdims=True)
    weight = np.divide(weight, total, out=weight.copy(), where=total != 0.0)
    return _taps(np.where(valid, index, lo[:, None].clip(max=size - 1)), weight, valid, size)


def _area_taps(size: int, out: int) -> AxisTaps:
    """Adaptive-average windows ``[floor(i * size / out), ceil((i + 1) * size / out))``, weight ``1 / length``."""
    index, valid = adaptive_positions(size, out)
    return _taps(index, np.broadcast_to(1.0 / valid.sum(axis=1, keepdims=True), index.shape), valid, size)


def axis_taps(size: int, out: int, mode: str, align_corners: bool = False, scale: Optional[float] = None,
              antialias: bool = False) -> AxisTaps:
    """The taps resizing one axis from ``size`` to ``out`` entries (``mode``: linear, bicubic or area).

    ``scale`` is the user's scale factor (None: the size ratio); ``antialias`` (linear, bicubic)
    takes PyTorch's antialiasing filter, stretched when downsampling.

    >>> t = axis_taps(3, 5, "linear", align_corners=True)
    >>> t.index.tolist(), t.weight.tolist()[1]
    ([[0, 1], [0, 1], [1, 2], [1, 2], [2, 2]], [0.5, 0.5])
    >>> t = axis_taps(5, 3, "area")  # windows of 2, 3 and 2 entries
    >>> t.index.tolist(), t.valid.tolist()
    ([[0, 1, 0], [1, 2, 3], [3, 4, 3]], [[True, True, False], [True, True, True], [True, True, False]])
    """
    if mode not in ("linear", "bilinear", "trilinear", "bicubic", "area"):
        raise ValueError(f"mode must be linear, bilinear, trilinear, bicubic or area, got {mode!r}")
    kind = "cubic" if mode == "bicubic" else "area" if mode == "area" else "linear"
    if antialias:
        if kind == "area":
            raise ValueError("antialias=True applies to the linear and bicubic modes, not 'area'")
        return _antialias_taps(size, out, kind, align_corners, scale)
    if kind == "area":
        return _area_taps(size, out)
    return (_cubic_taps if kind == "cubic" else _linear_taps)(size, out, scale, align_corners)


def interpolation_matrix(size: int, out: int, mode: str, align_corners: bool, scale: Optional[float],
                         antialias: bool = False) -> np.ndarray:
    """``(out, size)`` weights resizing one axis (linear, cubic or area modes): :func:`axis_taps` made dense.

    >>> interpolation_matrix(2, 4, "linear", False, None).round(3).tolist()[1]
    [0.75, 0.25]
    >>> interpolation_matrix(4, 2, "linear", False, None, antialias=True).round(3).tolist()
    [[0.429, 0.429, 0.143, 0.0], [0.0, 0.143, 0.429, 0.429]]
    """
    return axis_taps(size, out, mode, align_corners, scale, antialias).matrix()


def _nearest_index(size: int, out: int, exact: bool, scale: Optional[float]) -> np.ndarray:
    ratio = 1.0 / scale if scale else size / out
    dst = np.arange(out, dtype=np.float64) + (0.5 if exact else 0.0)
    return np.minimum(np.floor(dst * ratio).astype(np.int64), size - 1)


@rg.builder()
def interpolate(x: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False) -> Tensor:
    """``torch.nn.functional.interpolate`` over the spatial axes of ``(N, C, ...)`` (1, 2 or 3 of them).

    ``mode``: nearest, nearest-exact, linear (1-D), bilinear (2-D), bicubic (2-D), trilinear (3-D), area.
    ``antialias``: PyTorch's antialiased bilinear / bicubic (what torchvision's ``Resize`` uses):
    downsampling averages every input pixel under the stretched filter instead of sampling.

    >>> interpolate(rg.input((1, 1, 3)), size=5, mode="linear", align_corners=True).shape
    (1, 1, 5)
    >>> interpolate(rg.input((1, 3, 32, 32)), size=(8, 8), mode="bicubic", antialias=True).shape
    (1, 3, 8, 8)
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    nd = x.ndim - 2
    if nd < 1 or nd > 3:
        raise shape_error("interpolate", f"input must be (N, C, ...) with 1 to 3 spatial axes, got rank {x.ndim}", x)
    if _MODES[mode] and _MODES[mode] != nd:
        raise shape_error("interpolate", f"mode {mode!r} needs {_MODES[mode]} spatial axes, the input has {nd}", x)
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(f"antialias=True applies to the bilinear and bicubic modes (as in PyTorch), not {mode!r}")
    if align_corners is not None and mode not in ("linear", "bilinear", "bicubic", "trilinear"):
        raise ValueError(f"align_corners only applies to linear/bilinear/bicubic/trilinear modes, not {mode!r}")
    spatial = tuple(x.shape[2:])
    if any(not isinstance(s, int) for s in spatial):
        raise shape_error("interpolate", "spatial sizes must be concrete", x)
    if (size is None) == (scale_factor is None):
        raise ValueError("pass exactly one of size and scale_factor")
    if size is not None:
        out = (int(size),) * nd if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
        scales = (None,) * nd
    else:
        factors = (float(scale_factor),) * nd if np.ndim(scale_factor) == 0 else tuple(float(f) for f in scale_factor)
        out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, factors))
        scales = (None,) * nd if recompute_scale_factor else factors
    if len(out) != nd or any(o <= 0 for o in out):
        raise ValueError(f"output size {out} must have {nd} positive entries")
    y = x
    # Last axis first: PyTorch's kernels sum the last axis's taps innermost.
    for i in reversed(range(nd)):
        n, o, scale, axis = spatial[i], out[i], scales[i], 2 + i
        if mode in ("nearest", "nearest-exact"):
            if n != o or scale not in (None, 1.0):
                y = rg.take(y, rg.constant(_nearest_index(n, o, mode == "nearest-exact", scale)), axis=axis)
            continue
        taps = axis_taps(n, o, mode, bool(align_corners), scale, antialias)
        if not taps.is_identity:
            y = resize_axis(y, axis, taps)
    return y


def resize_axis(y: Tensor, axis: int, taps: AxisTaps) -> Tensor:
    """``y`` resized along ``axis``: ``sum_k where(valid_k, take(y, index_k) * weight_k, 0)``.

    Only the taps are combined, so an inf or NaN reaches just the outputs that read it (a dense
    matmul would spread ``0 * inf = NaN`` over every output of its row).
    """
    out, k = taps.index.shape
    shape = tuple(y.shape)
    if taps.valid is None and np.array_equal(taps.index.ravel(), np.arange(taps.size)):
        gathered = y.reshape(shape[:axis] + (out, k) + shape[axis + 1:])  # back-to-back windows: no gather
    elif axis == y.ndim - 1 and out * k >= taps.size:
        # Gathering whole rows is far faster than single entries: once the taps are as many as
        # the inputs, resizing the transpose and transposing back costs less (2-3x on cpu).
        return _swap_last(resize_axis(_swap_last(y), axis - 1, taps))
    else:
        gathered = rg.take(y, rg.constant(taps.index), axis=axis)  # (..., out, K, rest)
    bcast = (out, k) + (1,) * (y.ndim - axis - 1)
    terms = gathered * rg.constant(taps.weight.reshape(bcast).astype(y.dtype))
    if taps.valid is not None:
        terms = rg.where(rg.constant(taps.valid.reshape(bcast)), terms, 0.0)
    return rg.sum(terms, axis=axis + 1)


def _swap_last(y: Tensor) -> Tensor:
    perm = list(range(y.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return rg.transpose(y, tuple(perm))


upsample = interpolate


class Upsample(Module):
    """``torch.nn.Upsample``: :func:`interpolate` as a layer.

    >>> Upsample(scale_factor=2, mode="nearest")(rg.input((1, 2, 3, 3))).shape
    (1, 2, 6, 6)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d`` (``align_corners=True``)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "bilinear", align_corners=True)


@rg.builder()
def pixel_shuffle(x: Tensor, upscale_factor: int) -> Tensor:
    """``(*, C*r*r, H, W) -> (*, C, H*r, W*r)`` (``torch.nn.functional.pixel_shuffle``).

    >>> pixel_shuffle(rg.input((4, 3, 3)), 2).shape
    (1, 6, 6)
    """
    r = int(upscale_factor)
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise shape_error("pixel_shuffle", f"channels {c} are not divisible by upscale_factor² = {r * r}", x)
    lead = tuple(lead)
    y = x.reshape(lead + (c // (r * r), r, r, h, w))
    k = len(lead)
    y = rg.transpose(y, tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return y.reshape(lead + (c // (r * r), h * r, w * r))


@rg.builder()
def pixel_unshuffle(x: Tensor, downscale_factor: int) -> Tensor:
    """``(*, C, H*r, W*r) -> (*, C*r*r, H, W)`` (``torch.nn.functional.pixel_unshuffle``).

    >>> pixel_unshuffle(rg.input((1, 2, 6, 6)), 2).shape
    (1, 8, 3, 3)
    """
    r = int(downscale_factor)
    *lead, c, hr, wr = x.shape
    if hr % r or wr % r:
        raise shape_error("pixel_unshuffle", f"height {hr} and width {wr} must be divisible by {r}", x)
    lead, k = tuple(lead), len(lead)
    y = x.reshape(lead + (c, hr // r, r, wr // r, r))
    y = rg.transpose(y, tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
    return y.reshape(lead + (c * r * r, hr // r, wr // r))


class PixelShuffle(Module):
    """``torch.nn.PixelShuffle``."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return pixel_shuffle(x, self.upscale_factor)


class PixelUnshuffle(Module):
    """``torch.nn.PixelUnshuffle``."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return pixel_unshuffle(x, self.downscale_factor)


class Unflatten(Module):
    """``torch.nn.Unflatten``: split axis ``dim`` into ``unflattened_size``.

    >>> Unflatten(1, (2, 5))(rg.input((3, 10))).shape
    (3, 2, 5)
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return rg.unflatten(x, self.dim, self.unflattened_size)


# --- im2col -----------------------------------------------------------------------------------------
def _pair(v) -> tuple:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


def _windows(size: int, k: int, d: int, p: int, s: int) -> np.ndarray:
    count = (size + 2 * p - d * (k - 1) - 1) // s + 1
    if count <= 0:
        raise ValueError(f"kernel {k} (dilation {d}) does not fit the padded size {size + 2 * p}")
    return np.arange(count)[:, None] * s + np.arange(k)[None, :] * d


@rg.builder()
def unfold(x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: ``(N, C, H, W) -> (N, C*kh*kw, L)`` (``torch.nn.functional.unfold``).

    >>> unfold(rg.input((2, 3, 5, 5)), 3, padding=1).shape
    (2, 27, 25)
    """
    if x.ndim != 4:
        raise shape_error("unfold", f"input must be (N, C, H, W), got rank {x.ndim}", x)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = _pair(kernel_size), _pair(dilation), _pair(padding), _pair(stride)
    n, c, h, w = x.shape
    rows, cols = _windows(h, kh, dh, ph, sh), _windows(w, kw, dw, pw, sw)
    xp = rg.pad(x, (0, 0, 0, 0, ph, ph, pw, pw)) if ph or pw else x
    y = rg.take(rg.take(xp, rg.constant(rows), axis=2), rg.constant(cols), axis=4)  # (N, C, oh, kh, ow, kw)
    y = rg.transpose(y, (0, 1, 3, 5, 2, 4))
    return y.reshape((n, c * kh * kw, rows.shape[0] * cols.shape[0]))


@rg.builder()
def fold(x: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of :func:`unfold`: overlapping windows add up (``torch.nn.functional.fold``).

    >>> fold(rg.input((2, 27, 25)), (5, 5), 3, padding=1).shape
    (2, 3, 5, 5)
    """
    if x.ndim != 3:
        raise shape_error("fold", f"input must be (N, C*kh*kw, L), got rank {x.ndim}", x)
    (h, w), (kh, kw) = _pair(output_size), _pair(kernel_size)
    (dh, dw), (ph, pw), (sh, sw) = _pair(dilation), _pair(padding), _pair(stride)
    rows, cols = _windows(h, kh, dh, ph, sh), _windows(w, kw, dw, pw, sw)
    n, ck, length = x.shape
    if ck % (kh * kw) or length != rows.shape[0] * cols.shape[0]:
        raise shape_error("fold", f"input (N, {ck}, {length}) does not match kernel {(kh, kw)} and "
                                  f"{rows.shape[0]}x{cols.shape[0]} windows", x)
    c = ck // (kh * kw)
    y = rg.transpose(x.reshape((n, c, kh, kw, rows.shape[0], cols.shape[0])), (0, 1, 4, 2, 5, 3))
    y = rg.take_grad(y, rg.constant(cols), axis=4, size=w + 2 * pw)  # (N, C, oh, kh, Wp)
    y = rg.take_grad(y, rg.constant(rows), axis=2, size=h + 2 * ph)  # (N, C, Hp, Wp)
    return y if not (ph or pw) else rg.pad(y, (0, 0, 0, 0, -ph, -ph, -pw, -pw))


class Unfold(Module):
    """``torch.nn.Unfold``."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(Module):
    """``torch.nn.Fold``."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return fold(x, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)


# --- padding ------------------------------------------------------------------------------------------
@rg.builder()
def pad(x: Tensor, pad, mode: str = "constant", value: Optional[float] = None) -> Tensor:
    """``torch.nn.functional.pad``: ``pad`` lists (before, after) from the LAST axis backwards.

    Negative widths crop. Modes: constant, reflect, replicate, circular.

    >>> pad(rg.input((1, 2, 3)), (1, 2), mode="replicate").shape
    (1, 2, 6)
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad {pad} must have an even length of at most 2 * rank ({2 * x.ndim})")
    widths = [0] * (2 * x.ndim)
    for j in range(len(pad) // 2):
        axis = x.ndim - 1 - j
        widths[2 * axis], widths[2 * axis + 1] = pad[2 * j], pad[2 * j + 1]
    if mode == "constant":
        return rg.pad(x, tuple(widths), value=0.0 if value is None else float(value))
    if value not in (None, 0, 0.0):
        raise ValueError(f"value applies to mode='constant' only, not {mode!r}")
    return rg.pad(x, tuple(widths), mode=mode)


class _PadNd(Module):
    mode, nd = "constant", 1

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        self.padding = (int(padding),) * (2 * self.nd) if isinstance(padding, (int, np.integer)) else tuple(padding)
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        return pad(x, self.padding, self.mode, self.value if self.mode == "constant" else None)

    def extra_repr(self):
        return f"{self.padding}"


def _pad_module(name: str, mode: str, nd: int, takes_value: bool):
    def __init__(self, padding, *args, **kwargs):
        _PadNd.__init__(self, padding, *args, **kwargs) if takes_value else _PadNd.__init__(self, padding)

    doc = f"``torch.nn.{name}``: {mode} padding of the last {nd} axes."
    return type(name, (_PadNd,), {"mode": mode, "nd": nd, "__init__": __init__, "__doc__": doc,
                                  "__module__": __name__})


PAD_MODULES = {}  # name -> class: ZeroPad1d ... CircularPad3d
for _prefix, _mode, _value in (("Zero", "constant", False), ("Constant", "constant", True),
                               ("Reflection", "reflect", False), ("Replication", "replicate", False),
                               ("Circular", "circular", False)):
    for _nd in (1, 2, 3):
        _name = f"{_prefix}Pad{_nd}d"
        PAD_MODULES[_name] = globals()[_name] = _pad_module(_name, _mode, _nd, _value)
        __all__.append(_name)
