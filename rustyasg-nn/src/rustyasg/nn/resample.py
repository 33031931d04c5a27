"""Resampling and rearranging: interpolate / Upsample, pixel_shuffle, unfold / fold (im2col), pad.

Everything is built from core ops while the graph is built:

* ``interpolate`` is separable: each resized axis is a ``take`` (nearest modes) or a matmul
  with a constant ``(out, in)`` interpolation matrix (linear, cubic with PyTorch's A = -0.75
  and clamped borders, area = adaptive averaging), computed in float64 with PyTorch's
  source-index rules (``align_corners``, ``scale_factor`` vs. size ratio). ``antialias=True``
  (bilinear, bicubic) swaps in PyTorch's antialiasing matrix: when downsampling, the filter
  (triangle, or cubic with A = -0.5) is stretched by the scale so every input pixel counts,
  and each row is normalised to sum 1.
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
from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.ops.window_geometry import adaptive_avg_matrix

from ._checks import shape_error
from .module import Module

__all__ = ["interpolate", "upsample", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "pixel_shuffle",
           "pixel_unshuffle", "PixelShuffle", "PixelUnshuffle", "Unflatten", "unfold", "fold", "Unfold", "Fold", "pad",
           "interpolation_matrix"]

_MODES = {"nearest": 0, "nearest-exact": 0, "linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3, "area": 0}


def _source(out: int, size: int, scale: Optional[float], align_corners: bool) -> np.ndarray:
    """PyTorch's ``area_pixel_compute_source_index`` before clamping (float64)."""
    dst = np.arange(out, dtype=np.float64)
    if align_corners:
        return dst * ((size - 1) / (out - 1) if out > 1 else 0.0)
    ratio = 1.0 / scale if scale else size / out
    return (dst + 0.5) * ratio - 0.5


def _cubic(t: np.ndarray, a: float = -0.75):
    """The four cubic-convolution weights for offsets -1, 0, 1, 2 (PyTorch's ``get_cubic_upsample_coefficients``)."""
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _antialias_filter(mode: str):
    """PyTorch's antialiasing filters (``aa_filter``: a triangle; ``bicubic``: A = -0.5) and their half widths."""
    if mode == "linear":
        return (lambda x: np.maximum(1.0 - np.abs(x), 0.0)), 1.0

    def cubic(x, a=-0.5):
        x = np.abs(x)
        near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))
    return cubic, 2.0


def antialias_matrix(size: int, out: int, mode: str, align_corners: bool, scale: Optional[float]) -> np.ndarray:
    """``(out, size)`` weights of PyTorch's antialiased resize of one axis (``mode``: linear or bicubic).

    Follows ``_compute_weights_aa``: the filter is centred on ``scale * (i + 0.5)``; when
    downsampling (``scale > 1``) its support and argument are stretched by ``scale``; taps cover
    ``[center - support + 0.5, center + support + 0.5)`` clipped to the input; rows sum to 1.

    >>> antialias_matrix(4, 2, "linear", False, None).round(3).tolist()
    [[0.429, 0.429, 0.143, 0.0], [0.0, 0.143, 0.429, 0.429]]
    """
    if align_corners:
        ratio = (size - 1) / (out - 1) if out > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale else size / out
    fn, half = _antialias_filter(mode)
    support = half * ratio if ratio >= 1.0 else half
    invscale = 1.0 / ratio if ratio >= 1.0 else 1.0
    mat = np.zeros((out, size))
    for i in range(out):
        center = ratio * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)  # C++ truncation toward zero, as PyTorch's cast
        hi = min(int(center + support + 0.5), size)
        taps = np.arange(lo, hi)
        w = fn((taps - center + 0.5) * invscale)
        total = w.sum()
        mat[i, lo:hi] = w / total if total != 0.0 else w
    return mat


def interpolation_matrix(size: int, out: int, mode: str, align_corners: bool, scale: Optional[float],
                         antialias: bool = False) -> np.ndarray:
    """``(out, size)`` weights resizing one axis (linear, cubic or area modes).

    >>> interpolation_matrix(2, 4, "linear", False, None).round(3).tolist()[1]
    [0.75, 0.25]
    """
    if antialias:
        return antialias_matrix(size, out, mode, align_corners, scale)
    mat = np.zeros((out, size))
    rows = np.arange(out)
    if mode == "area":
        return adaptive_avg_matrix(size, out)
    src = _source(out, size, scale, align_corners)
    if mode == "bicubic":
        base = np.floor(src)
        for k, w in zip(range(-1, 3), _cubic(src - base)):
            np.add.at(mat, (rows, np.clip(base.astype(np.int64) + k, 0, size - 1)), w)
        return mat
    src = np.maximum(src, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
    hi = np.minimum(lo + 1, size - 1)
    lam = src - lo
    np.add.at(mat, (rows, lo), 1.0 - lam)
    np.add.at(mat, (rows, hi), lam)
    return mat


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
    for i, (n, o, scale) in enumerate(zip(spatial, out, scales)):
        axis = 2 + i
        if mode in ("nearest", "nearest-exact"):
            if n != o or scale not in (None, 1.0):
                y = rg.take(y, rg.constant(_nearest_index(n, o, mode == "nearest-exact", scale)), axis=axis)
            continue
        m = interpolation_matrix(n, o, "area" if mode == "area" else "bicubic" if mode == "bicubic" else "linear",
                                 bool(align_corners), scale, antialias)
        y = apply_along_axis(y, axis, m)
    return y


def apply_along_axis(y: Tensor, axis: int, m: np.ndarray) -> Tensor:
    """Contract ``y``'s ``axis`` with the ``(out, in)`` matrix ``m`` without moving axes:
    ``y @ m.T`` on the last axis, else ``m @ y`` over a ``(..., in, rest)`` view."""
    if axis == y.ndim - 1:
        return y @ rg.constant(np.ascontiguousarray(m.T).astype(y.dtype))
    lead, rest = tuple(y.shape[:axis]), tuple(y.shape[axis + 1:])
    folded = y.reshape(lead + (y.shape[axis], int(np.prod(rest))))
    out = rg.constant(np.ascontiguousarray(m).astype(y.dtype)) @ folded
    return out.reshape(lead + (m.shape[0],) + rest)


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
