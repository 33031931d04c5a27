"""Mergeable running moments (count, mean, sum of squared deviations) — Chan et al.'s update.

Merging per-batch moments keeps variance accurate over millions of values, where the naive
``E[x²] - E[x]²`` loses all precision for data with a large mean.

>>> import numpy as np
>>> m = Moments.of(np.array([1.0, 2.0])).merge(Moments.of(np.array([3.0, 4.0])))
>>> float(m.mean), float(m.var())
(2.5, 1.25)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Moments"]


@dataclass(frozen=True)
class Moments:
    """Count, mean and M2 (sum of squared deviations) of values, per column if 2-D.

    >>> Moments.of(np.array([[1.0, 10.0], [3.0, 10.0]])).var().tolist()
    [1.0, 0.0]
    """

    count: float = 0.0
    mean: np.ndarray | float = 0.0
    m2: np.ndarray | float = 0.0

    @classmethod
    def of(cls, values: np.ndarray) -> "Moments":
        """Moments of ``values`` along axis 0."""
        values = np.asarray(values, dtype=np.float64)
        if len(values) == 0:
            return cls()
        mean = values.mean(axis=0)
        return cls(float(len(values)), mean, ((values - mean) ** 2).sum(axis=0))

    def merge(self, other: "Moments") -> "Moments":
        """Moments of the union of both value sets."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return Moments(n, mean, m2)

    def var(self, ddof: int = 0) -> np.ndarray | float:
        """Variance with ``ddof`` delta degrees of freedom (NaN when undefined)."""
        denom = self.count - ddof
        return self.m2 / denom if denom > 0 else np.full(np.shape(self.m2), np.nan)[()]
