"""Running statistics of a stream of values (losses, timings): mean, standard deviation, EMA.

>>> m = RunningMean(); m.update(1.0); m.update([2.0, 3.0])
>>> m.compute()
2.0
>>> e = EMA(decay=0.5); e.update(4.0); e.update(2.0)
>>> e.compute()  # bias-corrected: (0.25*4 + 0.5*2) / (1 - 0.5**2)
2.6666666666666665
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from .base import Metric
from .moments import Moments

__all__ = ["RunningMean", "RunningStd", "EMA"]


def _values(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1)


class RunningMean(Metric):
    """Mean of every value seen (each array element counts once), or of the last ``window`` values.

    >>> m = RunningMean(window=2)
    >>> for v in (1.0, 5.0, 7.0): m.update(v)
    >>> m.compute()
    6.0
    """

    def __init__(self, window: int | None = None):
        if window is not None and window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        super().__init__()

    def reset(self) -> None:
        self._sum, self._count = 0.0, 0
        self._recent: collections.deque = collections.deque(maxlen=self.window)

    def update(self, value: Any) -> None:
        v = _values(value)
        if self.window is None:
            self._sum += float(v.sum())
            self._count += v.size
        else:
            self._recent.extend(v.tolist())

    def compute(self) -> float:
        if self.window is not None:
            return float(np.mean(self._recent)) if self._recent else float("nan")
        return self._sum / self._count if self._count else float("nan")


class RunningStd(Metric):
    """Standard deviation of every value seen (numerically stable merge; ``ddof`` as numpy).

    >>> s = RunningStd(); s.update([1.0, 2.0]); s.update([3.0, 4.0])
    >>> round(s.compute(), 6), s.mean
    (1.118034, 2.5)
    """

    def __init__(self, ddof: int = 0):
        self.ddof = int(ddof)
        super().__init__()

    def reset(self) -> None:
        self._moments = Moments()

    def update(self, value: Any) -> None:
        self._moments = self._moments.merge(Moments.of(_values(value)))

    @property
    def mean(self) -> float:
        """Mean of the values seen (NaN before any update)."""
        return float(self._moments.mean) if self._moments.count else float("nan")

    @property
    def count(self) -> int:
        return int(self._moments.count)

    def compute(self) -> float:
        return float(np.sqrt(self._moments.var(self.ddof)))


class EMA(Metric):
    """Exponential moving average ``ema = decay * ema + (1 - decay) * x`` of per-update values.

    Each ``update`` is one observation (an array is averaged first). With ``bias_correction``
    (default) the average starts from zero and is divided by ``1 - decay**t``, as in Adam, so early
    values are not dragged towards zero; without it, it starts at the first observation.

    >>> e = EMA(decay=0.9, bias_correction=False)
    >>> e.update(10.0); e.update(0.0)
    >>> e.compute()
    9.0
    """

    def __init__(self, decay: float = 0.9, bias_correction: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay, self.bias_correction = float(decay), bool(bias_correction)
        super().__init__()

    def reset(self) -> None:
        self._value, self._steps = 0.0, 0

    def update(self, value: Any) -> None:
        x = float(_values(value).mean())
        if self._steps == 0 and not self.bias_correction:
            self._value = x
        else:
            self._value = self.decay * self._value + (1.0 - self.decay) * x
        self._steps += 1

    def compute(self) -> float:
        if self._steps == 0:
            return float("nan")
        if self.bias_correction:
            return self._value / (1.0 - self.decay**self._steps)
        return self._value
