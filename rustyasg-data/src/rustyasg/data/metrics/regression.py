"""Regression metrics from streaming sufficient statistics: MSE, RMSE, MAE, R², MAPE, explained
variance and max error.

Every metric accumulates the same small set of per-output statistics (sums of errors, running
moments of targets and errors), so batch-by-batch accumulation gives exactly the whole-set value.
Targets may be ``(N,)`` or ``(N, D)``; with several outputs ``multioutput="uniform_average"``
averages the per-output values (scikit-learn's default) and ``"raw_values"`` returns them.

>>> import numpy as np
>>> r2 = R2Score()
>>> r2.update(np.array([1.1, 1.9]), np.array([1.0, 2.0]))   # (predictions, targets)
>>> r2.update(np.array([3.2]), np.array([3.0]))
>>> round(r2.compute(), 4)
0.97
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Metric
from .moments import Moments

__all__ = [
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsoluteError",
    "R2Score",
    "MeanAbsolutePercentageError",
    "ExplainedVariance",
    "MaxError",
]

_EPS = np.finfo(np.float64).eps  # scikit-learn's floor for |y| in MAPE


class _RegressionMetric(Metric):
    """Accumulates per-output error statistics; subclasses turn them into one number per output."""

    _reduce = staticmethod(np.mean)  # how per-output values combine under "uniform_average"

    def __init__(self, multioutput: str = "uniform_average"):
        if multioutput not in ("uniform_average", "raw_values"):
            raise ValueError(f"multioutput must be 'uniform_average' or 'raw_values', got {multioutput!r}")
        self.multioutput = multioutput
        super().__init__()

    def reset(self) -> None:
        self._n = 0
        self._sum_sq = self._sum_abs = self._sum_ape = 0.0
        self._max_abs = -np.inf
        self._target = Moments()
        self._error = Moments()
        self._ndim = None

    def update(self, preds: Any, target: Any) -> None:
        """Add a batch of predictions and targets of the same shape, ``(N,)`` or ``(N, D)``."""
        p, t = np.asarray(preds, dtype=np.float64), np.asarray(target, dtype=np.float64)
        if p.shape != t.shape or p.ndim not in (1, 2):
            raise ValueError(f"predictions {p.shape} and targets {t.shape} must have the same shape (N,) or (N, D)")
        if self._ndim is not None and p.shape[1:] != self._ndim:
            raise ValueError(f"output shape changed from {self._ndim} to {p.shape[1:]} between batches")
        self._ndim = p.shape[1:]
        if len(t) == 0:
            return
        err = t - p
        self._n += len(t)
        self._sum_sq = self._sum_sq + (err**2).sum(axis=0)
        self._sum_abs = self._sum_abs + np.abs(err).sum(axis=0)
        self._sum_ape = self._sum_ape + (np.abs(err) / np.maximum(np.abs(t), _EPS)).sum(axis=0)
        self._max_abs = np.maximum(self._max_abs, np.abs(err).max(axis=0))
        self._target = self._target.merge(Moments.of(t))
        self._error = self._error.merge(Moments.of(err))

    def _per_output(self) -> np.ndarray:
        raise NotImplementedError

    def compute(self) -> float | np.ndarray:
        if self._n == 0:
            raise ValueError(f"{type(self).__name__}.compute() called before any update")
        values = np.asarray(self._per_output(), dtype=np.float64)
        if self.multioutput == "raw_values":
            return np.atleast_1d(values)
        return float(self._reduce(values))


def _one_minus_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``1 - num/den`` with scikit-learn's finite convention for constant targets (den == 0)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.where(num == 0, 1.0, 0.0)
    np.subtract(1.0, num / np.where(den == 0, 1.0, den), out=out, where=den != 0)
    return out


class MeanSquaredError(_RegressionMetric):
    """Mean of squared errors.

    >>> MeanSquaredError()([1.0, 2.0], [1.0, 4.0])
    2.0
    """

    def _per_output(self):
        return self._sum_sq / self._n


class RootMeanSquaredError(_RegressionMetric):
    """Square root of the MSE (per output, then averaged, as scikit-learn).

    >>> RootMeanSquaredError()([0.0, 0.0], [3.0, -3.0])
    3.0
    """

    def _per_output(self):
        return np.sqrt(self._sum_sq / self._n)


class MeanAbsoluteError(_RegressionMetric):
    """Mean of absolute errors.

    >>> MeanAbsoluteError()([1.0, 2.0], [2.0, 4.0])
    1.5
    """

    def _per_output(self):
        return self._sum_abs / self._n


class MeanAbsolutePercentageError(_RegressionMetric):
    """Mean of ``|y - ŷ| / max(|y|, eps)`` (a fraction, not multiplied by 100, as scikit-learn).

    >>> MeanAbsolutePercentageError()([90.0, 110.0], [100.0, 100.0])
    0.1
    """

    def _per_output(self):
        return self._sum_ape / self._n


class R2Score(_RegressionMetric):
    """Coefficient of determination ``1 - SS_res / SS_tot``.

    >>> R2Score()([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """

    def _per_output(self):
        return _one_minus_ratio(self._sum_sq, self._target.m2)


class ExplainedVariance(_RegressionMetric):
    """``1 - Var(y - ŷ) / Var(y)``: like R² but blind to a constant bias.

    >>> ExplainedVariance()([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    1.0
    """

    def _per_output(self):
        return _one_minus_ratio(self._error.m2, self._target.m2)


class MaxError(_RegressionMetric):
    """Largest absolute error seen (over all outputs unless ``multioutput="raw_values"``).

    >>> MaxError()([1.0, 5.0], [1.5, 2.0])
    3.0
    """

    _reduce = staticmethod(np.max)

    def _per_output(self):
        return self._max_abs
