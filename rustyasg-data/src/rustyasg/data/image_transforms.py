"""Geometric image transforms that change the image size: resize, center crop, random resized crop.

Resampling is Pillow's (bilinear or bicubic with antialiasing, as torchvision's PIL path), applied
per channel in 32-bit float mode, so values are not quantised to 8 bits. Images are C×H×W float
arrays (``layout="HWC"`` and ``"HW"`` are accepted too); the batch form resizes sample by sample.

>>> import numpy as np
>>> x = np.random.default_rng(0).random((3, 40, 60), dtype=np.float32)
>>> Resize(20)(x).shape, CenterCrop(16)(x).shape, RandomResizedCrop(24, seed=0)(x).shape
((3, 20, 30), (3, 16, 16), (3, 24, 24))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import MissingDependencyError
from .transforms import _LAYOUTS, Transform, _as_float, _from_nchw, _pair, _Random, _to_nchw

__all__ = ["Resize", "CenterCrop", "RandomResizedCrop", "IMAGENET_MEAN", "IMAGENET_STD", "imagenet_transforms"]

#: Per-channel statistics of the ImageNet training set (RGB, pixels in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingDependencyError("Pillow", "resizing images", hint="pip install rustyasg-data[images]") from exc
    return Image


def _resample(interpolation: str) -> Any:
    image = _pil()
    modes = {"bilinear": image.Resampling.BILINEAR, "bicubic": image.Resampling.BICUBIC,
             "nearest": image.Resampling.NEAREST}
    if interpolation not in modes:
        raise ValueError(f"interpolation must be one of {sorted(modes)}, got {interpolation!r}")
    return modes[interpolation]


def _resize_nchw(x: np.ndarray, size: tuple[int, int], interpolation: str,
                 box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Resize (a ``box`` = left, top, right, bottom of) every channel of every image to ``size`` = (h, w)."""
    image, resample = _pil(), _resample(interpolation)
    h, w = size
    out = np.empty(x.shape[:2] + (h, w), np.float32)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            plane = image.fromarray(np.ascontiguousarray(x[n, c], np.float32), mode="F")
            out[n, c] = np.asarray(plane.resize((w, h), resample=resample, box=box))
    return out.astype(x.dtype, copy=False)


class Resize(Transform):
    """Resize to ``size``: an int scales the shorter side to it (keeping the aspect ratio), a pair is (h, w).

    >>> import numpy as np
    >>> Resize((4, 6))(np.ones((1, 8, 8), np.float32)).shape
    (1, 4, 6)
    """

    def __init__(self, size: int | Sequence[int], interpolation: str = "bilinear", layout: str = "CHW"):
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        _resample(interpolation)
        self.size, self.interpolation, self.layout = size, interpolation, layout

    def _target(self, h: int, w: int) -> tuple[int, int]:
        if not np.isscalar(self.size):
            return _pair(self.size, "size")
        s = int(self.size)  # type: ignore[arg-type]
        return (s, max(1, round(w * s / h))) if h <= w else (max(1, round(h * s / w)), s)

    def apply(self, x, batched):
        nchw = _as_float(_to_nchw(x, self.layout, batched))
        return _from_nchw(_resize_nchw(nchw, self._target(*nchw.shape[2:]), self.interpolation), self.layout, batched)


class CenterCrop(Transform):
    """Crop the central ``size`` (int or (h, w)) window; images smaller than it are zero-padded first.

    >>> import numpy as np
    >>> CenterCrop(2)(np.arange(16.0).reshape(1, 4, 4)).tolist()
    [[[5.0, 6.0], [9.0, 10.0]]]
    """

    def __init__(self, size: int | Sequence[int], layout: str = "CHW"):
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        self.size, self.layout = _pair(size, "size"), layout

    def apply(self, x, batched):
        nchw = _to_nchw(x, self.layout, batched)
        (h, w), (hi, wi) = self.size, nchw.shape[2:]
        ph, pw = max(h - hi, 0), max(w - wi, 0)
        if ph or pw:
            nchw = np.pad(nchw, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
        top, left = (nchw.shape[2] - h) // 2, (nchw.shape[3] - w) // 2
        return _from_nchw(nchw[:, :, top:top + h, left:left + w], self.layout, batched)


class RandomResizedCrop(_Random):
    """A random crop of random area ``scale`` and aspect ``ratio``, resized to ``size`` (Inception-style).

    Follows torchvision's sampling: ten tries at a crop inside the image, then the central crop
    of the clamped ratio.

    >>> import numpy as np
    >>> RandomResizedCrop(8, seed=1).batch(np.ones((2, 3, 20, 30), np.float32)).shape
    (2, 3, 8, 8)
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = "bilinear",
                 layout: str = "CHW", seed: int | None = None):
        super().__init__(seed)
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        if not (0 < scale[0] <= scale[1]) or not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"scale and ratio must be increasing positive pairs, got {scale}, {ratio}")
        _resample(interpolation)
        self.size, self.scale, self.ratio = _pair(size, "size"), scale, ratio
        self.interpolation, self.layout = interpolation, layout

    def _box(self, h: int, w: int) -> tuple[int, int, int, int]:
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * self._rng.uniform(*self.scale)
            aspect = math.exp(self._rng.uniform(*log_ratio))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = int(self._rng.integers(0, h - ch + 1)), int(self._rng.integers(0, w - cw + 1))
                return left, top, left + cw, top + ch
        aspect = w / h
        cw, ch = (w, round(w / self.ratio[0])) if aspect < self.ratio[0] else \
            ((round(h * self.ratio[1]), h) if aspect > self.ratio[1] else (w, h))
        left, top = (w - cw) // 2, (h - ch) // 2
        return left, top, left + cw, top + ch

    def apply(self, x, batched):
        nchw = _as_float(_to_nchw(x, self.layout, batched))
        out = [_resize_nchw(nchw[n:n + 1], self.size, self.interpolation, self._box(*nchw.shape[2:]))
               for n in range(nchw.shape[0])]
        return _from_nchw(np.concatenate(out), self.layout, batched)


def imagenet_transforms(train: bool, size: int = 224, resize: int = 256, seed: int | None = None) -> Transform:
    """The standard ImageNet pipeline on C×H×W images in [0, 1].

    Training: random resized crop to ``size`` and a random horizontal flip; evaluation: resize the
    shorter side to ``resize`` and take the central ``size`` crop. Both end with per-channel
    normalisation by :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`.

    >>> import numpy as np
    >>> imagenet_transforms(train=False)(np.ones((3, 300, 400), np.float32)).shape
    (3, 224, 224)
    """
    from .transforms import Compose, Normalize, RandomHorizontalFlip

    normalize = Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD, channel_axis=0)
    if train:
        return Compose([RandomResizedCrop(size, seed=seed), RandomHorizontalFlip(seed=seed), normalize])
    return Compose([Resize(resize), CenterCrop(size), normalize])
