"""Transforms: preprocessing and seeded augmentation of numpy samples and whole batches.

Every transform works on one sample (``t(x)``) and, vectorised, on a batch whose leading axis
indexes samples (``t.batch(xb)``). :class:`~rustyasg.data.MapDataset` and the DataLoader use the
batch form, so augmenting a batch of 256 images is a handful of numpy calls, not 256 Python calls.
Random transforms own a seeded ``numpy.random.Generator``: the same seed gives the same stream.

>>> import numpy as np
>>> t = Compose([Clip(0, 1), Normalize(mean=0.5, std=0.5)])
>>> t(np.array([-1.0, 0.5, 2.0]))
array([-1.,  0.,  1.])
>>> t.batch(np.zeros((4, 3))).shape
(4, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Transform",
    "Lambda",
    "Compose",
    "ToDtype",
    "Normalize",
    "MinMaxScale",
    "OneHot",
    "Clip",
    "Log",
    "Flatten",
    "RandomNoise",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
]


def _as_float(x: np.ndarray) -> np.ndarray:
    """Keep a float array's precision; integer/bool data becomes float32 (the training dtype)."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


class Transform:
    """Base class. Subclasses implement ``apply(x, batched)``; users call ``t(x)`` or ``t.batch(xb)``.

    >>> import numpy as np
    >>> class Double(Transform):
    ...     def apply(self, x, batched): return x * 2
    >>> Double()(np.array([1, 2])), Double().batch(np.ones((2, 1))).tolist()
    (array([2, 4]), [[2.0], [2.0]])
    """

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: Any) -> np.ndarray:
        """Transform one sample."""
        return self.apply(np.asarray(x), batched=False)

    def batch(self, x: Any) -> np.ndarray:
        """Transform a batch (leading axis = samples) in one vectorised call."""
        return self.apply(np.asarray(x), batched=True)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Lambda(Transform):
    """Wrap a per-sample function; the batch form loops over samples (use only when needed).

    >>> import numpy as np
    >>> Lambda(np.sort).batch(np.array([[3, 1], [2, 0]])).tolist()
    [[1, 3], [0, 2]]
    """

    def __init__(self, fn: Callable[[np.ndarray], Any]):
        self.fn = fn

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        return np.stack([np.asarray(self.fn(s)) for s in x]) if batched else self.fn(x)


class Compose(Transform):
    """Apply transforms in order; plain functions are allowed and treated like :class:`Lambda`.

    >>> import numpy as np
    >>> Compose([Flatten(), Clip(0, 2)])(np.arange(4).reshape(2, 2)).tolist()
    [0, 1, 2, 2]
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = [t if isinstance(t, Transform) else Lambda(t) for t in transforms]

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        for t in self.transforms:
            x = t.apply(np.asarray(x), batched)
        return x


class ToDtype(Transform):
    """Cast, optionally scaling: ``ToDtype(np.float32, scale=1/255)`` turns uint8 pixels into [0, 1].

    >>> import numpy as np
    >>> ToDtype(np.float32, scale=1 / 255)(np.array([0, 255], dtype=np.uint8))
    array([0., 1.], dtype=float32)
    """

    def __init__(self, dtype: Any = np.float32, scale: float | None = None):
        self.dtype = np.dtype(dtype)
        self.scale = scale

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        out = x.astype(self.dtype)
        return out * self.dtype.type(self.scale) if self.scale is not None else out


def _channel_stat(values: Any, sample_ndim: int, channel_axis: int | None, dtype: np.dtype) -> np.ndarray:
    """Shape per-channel statistics so they broadcast against a sample or a batch alike.

    The shape is built from the right (``(C, 1, 1)`` for axis 0 of a CHW sample), so the same
    array broadcasts over an extra leading batch axis.
    """
    v = np.asarray(values, dtype=dtype)
    if v.ndim == 0 or channel_axis is None:
        return v
    axis = channel_axis if channel_axis >= 0 else sample_ndim + channel_axis
    if not 0 <= axis < sample_ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for samples with {sample_ndim} dims")
    return v.reshape((-1,) + (1,) * (sample_ndim - axis - 1))


def _reduce_axes(data: np.ndarray, channel_axis: int | None) -> tuple[int, ...]:
    """Axes of a batch ``data`` to reduce over to get per-channel statistics."""
    if channel_axis is None:
        return tuple(range(data.ndim))
    keep = 1 + (channel_axis if channel_axis >= 0 else data.ndim - 1 + channel_axis)
    return tuple(a for a in range(data.ndim) if a != keep)


class _ChannelAffine(Transform):
    """``(x - shift) * scale + offset`` with per-channel (or scalar) parameters."""

    channel_axis: int | None

    def _params(self, dtype: np.dtype, sample_ndim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        x = _as_float(x)
        shift, scale, offset = self._params(x.dtype, x.ndim - int(batched))
        return (x - shift) * scale + offset


class Normalize(_ChannelAffine):
    """``(x - mean) / std``, per channel when ``mean``/``std`` are sequences (torchvision-style).

    ``channel_axis`` indexes the *sample's* axes (0 for CHW images, -1 for HWC or for feature
    vectors). ``Normalize.fit(train_x)`` computes the statistics from a batch of data.

    >>> import numpy as np
    >>> img = np.ones((3, 2, 2))
    >>> Normalize(mean=[1, 0, 0], std=[1, 1, 2])(img)[:, 0, 0].tolist()
    [0.0, 1.0, 0.5]
    >>> Normalize.fit(np.array([[1.0], [3.0]]), channel_axis=-1).mean.tolist()
    [2.0]
    """

    def __init__(self, mean: Any, std: Any, channel_axis: int | None = 0):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if np.any(self.std == 0):
            raise ValueError("Normalize: std contains zeros; that would divide by zero")
        self.channel_axis = channel_axis

    @classmethod
    def fit(cls, data: Any, channel_axis: int | None = None, eps: float = 1e-12) -> "Normalize":
        """Normalize with the mean/std of ``data`` (a batch), per channel if ``channel_axis`` is set."""
        data = np.asarray(data, dtype=np.float64)
        axes = _reduce_axes(data, channel_axis)
        return cls(data.mean(axis=axes), np.maximum(data.std(axis=axes), eps), channel_axis=channel_axis)

    def _params(self, dtype, sample_ndim):
        mean = _channel_stat(self.mean, sample_ndim, self.channel_axis, dtype)
        inv = _channel_stat(1.0 / self.std, sample_ndim, self.channel_axis, dtype)
        return mean, inv, np.zeros((), dtype)


class MinMaxScale(_ChannelAffine):
    """Map ``[data_min, data_max]`` linearly onto ``feature_range`` (like sklearn's MinMaxScaler).

    A constant channel (max == min) is only shifted, never divided by zero.

    >>> import numpy as np
    >>> MinMaxScale(0, 10)(np.array([0.0, 5.0, 10.0])).tolist()
    [0.0, 0.5, 1.0]
    >>> MinMaxScale.fit(np.array([[2.0, 0.0], [4.0, 1.0]]), channel_axis=-1)(np.array([3.0, 1.0])).tolist()
    [0.5, 1.0]
    """

    def __init__(
        self,
        data_min: Any,
        data_max: Any,
        feature_range: tuple[float, float] = (0.0, 1.0),
        channel_axis: int | None = None,
    ):
        self.data_min = np.asarray(data_min, dtype=np.float64)
        self.data_max = np.asarray(data_max, dtype=np.float64)
        if np.any(self.data_max < self.data_min):
            raise ValueError("MinMaxScale: data_max is smaller than data_min")
        self.feature_range = (float(feature_range[0]), float(feature_range[1]))
        self.channel_axis = channel_axis

    @classmethod
    def fit(
        cls, data: Any, feature_range: tuple[float, float] = (0.0, 1.0), channel_axis: int | None = None
    ) -> "MinMaxScale":
        """MinMaxScale with the range of ``data`` (a batch), per channel if ``channel_axis`` is set."""
        data = np.asarray(data, dtype=np.float64)
        axes = _reduce_axes(data, channel_axis)
        return cls(data.min(axis=axes), data.max(axis=axes), feature_range, channel_axis)

    def _params(self, dtype, sample_ndim):
        span = self.data_max - self.data_min
        lo, hi = self.feature_range
        scale = (hi - lo) / np.where(span == 0, 1.0, span)
        stat = lambda v: _channel_stat(v, sample_ndim, self.channel_axis, dtype)  # noqa: E731
        return stat(self.data_min), stat(scale), np.asarray(lo, dtype)


class OneHot(Transform):
    """Integer labels (any shape) to one-hot vectors along a new last axis.

    >>> import numpy as np
    >>> OneHot(3)(np.int64(2)).tolist()
    [0.0, 0.0, 1.0]
    >>> OneHot(3).batch(np.array([0, 1])).shape
    (2, 3)
    """

    def __init__(self, num_classes: int, dtype: Any = np.float32):
        self.num_classes = int(num_classes)
        self.dtype = np.dtype(dtype)

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        if not np.issubdtype(x.dtype, np.integer):
            if np.any(x != np.round(x)):
                raise ValueError(f"OneHot expects integer class labels, got dtype {x.dtype} with fractions")
            x = x.astype(np.int64)
        if x.size and (x.min() < 0 or x.max() >= self.num_classes):
            bad = x[(x < 0) | (x >= self.num_classes)].reshape(-1)[0]
            raise ValueError(f"OneHot: label {bad} is outside [0, {self.num_classes})")
        # Indexing an identity matrix is one vectorised gather for any label shape.
        return np.eye(self.num_classes, dtype=self.dtype)[x]


class _Elementwise(Transform):
    """A transform that does not care whether it sees a sample or a batch."""

    def _fn(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply(self, x: np.ndarray, batched: bool) -> np.ndarray:
        return self._fn(x)


class Clip(_Elementwise):
    """Limit values to ``[min, max]`` (either bound may be None).

    >>> import numpy as np
    >>> Clip(0, 1)(np.array([-2.0, 0.5, 3.0])).tolist()
    [0.0, 0.5, 1.0]
    """

    def __init__(self, min: float | None = None, max: float | None = None):  # noqa: A002 - numpy's names
        if min is None and max is None:
            raise ValueError("Clip needs at least one of min and max")
        self.min, self.max = min, max

    def _fn(self, x):
        return np.clip(x, self.min, self.max)


class Log(_Elementwise):
    """``log(x + offset)``; ``Log(offset=1)`` is ``log1p`` (computed accurately) for counts.

    Values with ``x + offset <= 0`` raise, rather than silently turning into NaN or -inf.

    >>> import numpy as np
    >>> Log(offset=1)(np.array([0.0, np.e - 1])).round(6).tolist()
    [0.0, 1.0]
    """

    def __init__(self, offset: float = 0.0):
        self.offset = float(offset)

    def _fn(self, x):
        x = _as_float(x)
        if np.any(x + self.offset <= 0):
            raise ValueError(f"Log: x + {self.offset} must be > 0; min(x) = {x.min()}")
        return np.log1p(x) if self.offset == 1.0 else np.log(x + x.dtype.type(self.offset))


class Flatten(Transform):
    """Flatten the sample's axes from ``start_axis`` on (the batch axis is kept).

    >>> import numpy as np
    >>> Flatten()(np.zeros((1, 28, 28))).shape, Flatten().batch(np.zeros((5, 1, 28, 28))).shape
    ((784,), (5, 784))
    """

    def __init__(self, start_axis: int = 0):
        self.start_axis = int(start_axis)

    def apply(self, x, batched):
        start = self.start_axis + int(batched) if self.start_axis >= 0 else x.ndim + self.start_axis
        return x.reshape(x.shape[:start] + (-1,))


class _Random(Transform):
    """Random transforms hold their own seeded generator (reproducible, independent of numpy's)."""

    def __init__(self, seed: int | None):
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream from ``seed``."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)


class RandomNoise(_Random):
    """Add Gaussian noise ``N(mean, std)``, optionally clipped back into ``clip=(lo, hi)``.

    >>> import numpy as np
    >>> x = RandomNoise(std=0.1, seed=0).batch(np.zeros((1000, 4)))
    >>> bool(abs(x.std() - 0.1) < 0.01)
    True
    """

    def __init__(
        self, std: float = 0.1, mean: float = 0.0, clip: tuple[float, float] | None = None, seed: int | None = None
    ):
        super().__init__(seed)
        if std < 0:
            raise ValueError(f"RandomNoise: std must be >= 0, got {std}")
        self.std, self.mean, self.clip = float(std), float(mean), clip

    def apply(self, x, batched):
        x = _as_float(x)
        out = x + self._rng.normal(self.mean, self.std, size=x.shape).astype(x.dtype)
        return np.clip(out, *self.clip) if self.clip is not None else out


_LAYOUTS = ("CHW", "HWC", "HW")


def _to_nchw(x: np.ndarray, layout: str, batched: bool) -> np.ndarray:
    """A (N, C, H, W) view of a sample or batch in ``layout``."""
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    want = len(layout) + int(batched)
    if x.ndim != want:
        kind = "batch" if batched else "sample"
        raise ValueError(f"expected a {kind} with {want} dims for layout {layout}, got shape {x.shape}")
    if not batched:
        x = x[None]
    if layout == "HWC":
        return np.moveaxis(x, -1, 1)
    if layout == "HW":
        return x[:, None]
    return x


def _from_nchw(x: np.ndarray, layout: str, batched: bool) -> np.ndarray:
    if layout == "HWC":
        x = np.moveaxis(x, 1, -1)
    elif layout == "HW":
        x = x[:, 0]
    return x if batched else x[0]


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    h, w = (v, v) if np.isscalar(v) else tuple(v)
    if h < 0 or w < 0:
        raise ValueError(f"{name} must be non-negative, got {v}")
    return int(h), int(w)


class RandomCrop(_Random):
    """Random ``size`` crop after padding each side, per sample (CIFAR-style ``RandomCrop(32, 4)``).

    The batch form pads once and gathers every sample's window with a single fancy-index over a
    sliding-window view.

    >>> import numpy as np
    >>> RandomCrop(28, padding=2, seed=0).batch(np.zeros((8, 1, 28, 28))).shape
    (8, 1, 28, 28)
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] = 0,
        fill: float = 0.0,
        pad_mode: str = "constant",
        layout: str = "CHW",
        seed: int | None = None,
    ):
        super().__init__(seed)
        self.size = _pair(size, "size")
        self.padding = _pair(padding, "padding")
        self.fill, self.pad_mode, self.layout = fill, pad_mode, layout
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")

    def apply(self, x, batched):
        nchw = _to_nchw(x, self.layout, batched)
        ph, pw = self.padding
        if ph or pw:
            pad = ((0, 0), (0, 0), (ph, ph), (pw, pw))
            kw = {"constant_values": self.fill} if self.pad_mode == "constant" else {}
            nchw = np.pad(nchw, pad, mode=self.pad_mode, **kw)
        n, _, hp, wp = nchw.shape
        h, w = self.size
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop {h}x{w} is larger than the padded image {hp}x{wp}")
        top = self._rng.integers(0, hp - h + 1, size=n)
        left = self._rng.integers(0, wp - w + 1, size=n)
        windows = np.lib.stride_tricks.sliding_window_view(nchw, (h, w), axis=(2, 3))
        crops = windows[np.arange(n), :, top, left]  # (n, C, h, w): advanced indices go first
        return _from_nchw(crops, self.layout, batched)


class _RandomFlip(_Random):
    """Flip each sample along one spatial axis with probability ``p``."""

    spatial_axis: int  # 2 = H, 3 = W in (N, C, H, W)

    def __init__(self, p: float = 0.5, layout: str = "CHW", seed: int | None = None):
        super().__init__(seed)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        self.p, self.layout = float(p), layout

    def apply(self, x, batched):
        nchw = _to_nchw(x, self.layout, batched)
        flip = self._rng.random(nchw.shape[0]) < self.p
        out = nchw.copy()
        out[flip] = np.flip(nchw[flip], axis=self.spatial_axis)
        return _from_nchw(out, self.layout, batched)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror images left-right with probability ``p`` (per sample, vectorised over a batch).

    >>> import numpy as np
    >>> RandomHorizontalFlip(p=1.0, layout="HW")(np.array([[1, 2, 3]])).tolist()
    [[3, 2, 1]]
    """

    spatial_axis = 3


class RandomVerticalFlip(_RandomFlip):
    """Mirror images top-bottom with probability ``p``.

    >>> import numpy as np
    >>> RandomVerticalFlip(p=1.0, layout="HW")(np.array([[1], [2]])).tolist()
    [[2], [1]]
    """

    spatial_axis = 2
