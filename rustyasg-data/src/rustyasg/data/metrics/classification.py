"""Classification metrics on a streaming confusion matrix: accuracy, precision, recall, F-beta,
confusion matrix, and top-k accuracy.

Predictions may be integer class labels, per-class scores/logits (an extra class axis, ``(N, C)`` or
``(N, C, ...)``, reduced with argmax), or binary probabilities/logits of the same shape as the
targets (thresholded; values outside [0, 1] are taken as logits and passed through a sigmoid), as
in torchmetrics. Averages follow scikit-learn: ``macro`` and ``weighted`` average over the classes
that occur in the targets or the predictions.

>>> import numpy as np
>>> f1 = F1Score(average="macro")
>>> f1.update(np.array([[2.0, 0.1], [0.3, 0.9]]), np.array([0, 1]))   # logits -> argmax
>>> f1.update(np.array([1]), np.array([0]))                           # labels
>>> round(f1.compute(), 4)
0.6667
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Metric

__all__ = ["to_labels", "ConfusionMatrix", "Accuracy", "Precision", "Recall", "FBetaScore", "F1Score", "TopKAccuracy"]

_AVERAGES = ("binary", "micro", "macro", "weighted", None)


def _integral(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_ or (a.size > 0 and bool(np.all(a == np.round(a))))


def to_labels(preds: Any, target: Any, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat int64 ``(pred_labels, target_labels, min_classes)`` from any supported prediction form.

    ``min_classes`` is the number of classes the predictions imply (``C`` for scores, 2 for
    binary probabilities, 0 when they are plain labels).

    >>> to_labels([0.2, 0.7], [0, 1])[0].tolist()          # probabilities, threshold 0.5
    [0, 1]
    >>> to_labels([[0.1, 3.0, 0.2]], [1])[0].tolist()      # scores -> argmax
    [1]
    """
    p, t = np.asarray(preds), np.asarray(target)
    if not _integral(t) and t.size:
        raise ValueError(f"targets must be integer class labels, got dtype {t.dtype} with fractional values")
    min_classes = 0
    if p.ndim == t.ndim + 1:
        axis = 1 if p.ndim > 1 and t.ndim > 0 else 0
        if np.delete(np.asarray(p.shape), axis).tolist() != list(t.shape):
            raise ValueError(f"scores of shape {p.shape} do not match targets of shape {t.shape} (class axis {axis})")
        min_classes = p.shape[axis]
        p = np.argmax(p, axis=axis)
    elif p.shape != t.shape:
        raise ValueError(f"predictions of shape {p.shape} do not match targets of shape {t.shape}")
    elif np.issubdtype(p.dtype, np.floating):
        # Same shape and floating: binary scores, never labels (torchmetrics' rule; labels are ints).
        if p.size and (p.min() < 0 or p.max() > 1):
            p = 1.0 / (1.0 + np.exp(-p))  # logits -> probabilities
        p = p >= threshold
        min_classes = 2
    p, t = p.reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64)
    if (p.size and p.min() < 0) or (t.size and t.min() < 0):
        raise ValueError("class labels must be non-negative")
    return p, t, min_classes


class ConfusionMatrix(Metric):
    """Streaming confusion matrix: rows are true classes, columns predicted (scikit-learn layout).

    ``num_classes`` fixes the size; if omitted the matrix grows to the largest label seen.
    ``normalize`` in ``{None, "true", "pred", "all"}`` divides by row sums, column sums or the total.

    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update([0, 2, 2], [0, 1, 2])
    >>> cm.compute().tolist()
    [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    """

    def __init__(self, num_classes: int | None = None, normalize: str | None = None, threshold: float = 0.5):
        if normalize not in (None, "true", "pred", "all"):
            raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
        self.num_classes, self.normalize, self.threshold = num_classes, normalize, threshold
        super().__init__()

    _min_size = 0

    def reset(self) -> None:
        size = max(self.num_classes or 0, self._min_size)
        self._matrix = np.zeros((size, size), dtype=np.int64)

    def _grow(self, size: int) -> None:
        if size > len(self._matrix):
            if self.num_classes is not None:
                raise ValueError(
                    f"label {size - 1} is outside [0, {self.num_classes}) (num_classes={self.num_classes})"
                )
            grown = np.zeros((size, size), dtype=np.int64)
            k = len(self._matrix)
            grown[:k, :k] = self._matrix
            self._matrix = grown

    def update(self, preds: Any, target: Any) -> None:
        """Add a batch: predictions (labels, scores or probabilities) and integer targets."""
        p, t, min_classes = to_labels(preds, target, self.threshold)
        top = max(int(p.max(initial=-1)), int(t.max(initial=-1))) + 1
        self._grow(max(top, min_classes))
        k = len(self._matrix)
        # One bincount over flattened (true, pred) pairs counts the whole batch.
        self._matrix = self._matrix + np.bincount(t * k + p, minlength=k * k).reshape(k, k)

    @property
    def matrix(self) -> np.ndarray:
        """The raw count matrix accumulated so far."""
        return self._matrix

    def compute(self) -> np.ndarray:
        m = self._matrix
        if self.normalize is None:
            return m.copy()
        denom = {"true": m.sum(axis=1, keepdims=True), "pred": m.sum(axis=0, keepdims=True), "all": m.sum()}[
            self.normalize
        ]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(m / denom)


def _safe_divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


class _ConfusionBased(ConfusionMatrix):
    """Shared averaging logic for metrics computed from per-class tp / fp / fn."""

    def __init__(
        self,
        average: str | None = "binary",
        num_classes: int | None = None,
        pos_label: int = 1,
        zero_division: float = 0.0,
        threshold: float = 0.5,
    ):
        if average not in _AVERAGES:
            raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
        self.average, self.pos_label, self.zero_division = average, int(pos_label), zero_division
        # The binary positive class must exist even if a batch only ever showed class 0.
        self._min_size = self.pos_label + 1 if average == "binary" else 0
        super().__init__(num_classes=num_classes, threshold=threshold)

    def _per_class(self, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compute(self) -> Any:
        m = self._matrix
        tp = np.diag(m)
        fp, fn = m.sum(axis=0) - tp, m.sum(axis=1) - tp
        if self.average == "micro":
            return float(self._per_class(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))[0])
        scores = self._per_class(tp, fp, fn)
        if self.average is None:
            return scores
        if self.average == "binary":
            seen = np.flatnonzero(m.sum(axis=0) + m.sum(axis=1))
            if len(seen) and seen.max() > 1:
                raise ValueError(f"average='binary' needs labels 0/1, but class {seen.max()} occurred; "
                                 "use average='macro', 'micro' or 'weighted'")  # fmt: skip
            return float(scores[self.pos_label])
        present = (m.sum(axis=0) + m.sum(axis=1)) > 0
        if not present.any():
            return float(self.zero_division)
        if self.average == "weighted":
            support = m.sum(axis=1)
            return float(_safe_divide((scores * support).sum(), support.sum(), self.zero_division))
        return float(scores[present].mean())


class Precision(_ConfusionBased):
    """Precision ``tp / (tp + fp)``: binary (``pos_label``), or macro/micro/weighted/None averaged.

    >>> Precision()([1, 1, 0, 1], [1, 0, 0, 1])
    0.6666666666666666
    >>> Precision(average=None)([0, 1, 2, 2], [0, 1, 1, 2]).tolist()
    [1.0, 1.0, 0.5]
    """

    def _per_class(self, tp, fp, fn):
        return _safe_divide(tp, tp + fp, self.zero_division)


class Recall(_ConfusionBased):
    """Recall ``tp / (tp + fn)``; averages as :class:`Precision`.

    >>> Recall()([1, 0, 0, 1], [1, 1, 0, 1])
    0.6666666666666666
    """

    def _per_class(self, tp, fp, fn):
        return _safe_divide(tp, tp + fn, self.zero_division)


class FBetaScore(_ConfusionBased):
    """F-beta ``(1+b²)·tp / ((1+b²)·tp + b²·fn + fp)``, the weighted harmonic mean of P and R.

    >>> round(FBetaScore(beta=2.0)([1, 1, 0, 0], [1, 0, 1, 1]), 4)
    0.3571
    """

    def __init__(
        self,
        beta: float = 1.0,
        average: str | None = "binary",
        num_classes: int | None = None,
        pos_label: int = 1,
        zero_division: float = 0.0,
        threshold: float = 0.5,
    ):
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        super().__init__(average, num_classes, pos_label, zero_division, threshold)

    def _per_class(self, tp, fp, fn):
        b2 = self.beta**2
        return _safe_divide((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp, self.zero_division)


class F1Score(FBetaScore):
    """F1 (beta = 1), the harmonic mean of precision and recall.

    >>> F1Score(average="micro")([0, 2, 1], [0, 1, 1])
    0.6666666666666666
    """

    def __init__(
        self,
        average: str | None = "binary",
        num_classes: int | None = None,
        pos_label: int = 1,
        zero_division: float = 0.0,
        threshold: float = 0.5,
    ):
        super().__init__(1.0, average, num_classes, pos_label, zero_division, threshold)


class Accuracy(ConfusionMatrix):
    """Fraction of correct predictions; ``average="macro"`` gives balanced accuracy (mean recall).

    >>> Accuracy()([0, 1, 1, 1], [0, 1, 0, 0])
    0.5
    >>> Accuracy(average="macro")([0, 1, 1, 1], [0, 1, 0, 0])
    0.6666666666666666
    """

    def __init__(self, average: str = "micro", num_classes: int | None = None, threshold: float = 0.5):
        if average not in ("micro", "macro"):
            raise ValueError(f"Accuracy average must be 'micro' or 'macro', got {average!r}")
        self.average = average
        super().__init__(num_classes=num_classes, threshold=threshold)

    def compute(self) -> float:
        m = self._matrix
        if self.average == "micro":
            return float(_safe_divide(np.trace(m), m.sum(), 0.0))
        support = m.sum(axis=1)
        return float(_safe_divide(np.diag(m), support, 0.0)[support > 0].mean()) if support.any() else 0.0


class TopKAccuracy(Metric):
    """Fraction of samples whose true class is among the ``k`` highest scores.

    A true class counts as in the top k when fewer than ``k`` classes score strictly higher
    (ties resolve in the sample's favour).

    >>> TopKAccuracy(k=2)([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], [1, 0])
    0.5
    """

    def __init__(self, k: int = 5):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)
        super().__init__()

    def reset(self) -> None:
        self._correct, self._total = 0, 0

    def update(self, preds: Any, target: Any) -> None:
        """``preds``: scores of shape (N, C); ``target``: labels of shape (N,)."""
        scores, t = np.asarray(preds, dtype=np.float64), np.asarray(target).astype(np.int64).reshape(-1)
        if scores.ndim != 2 or len(scores) != len(t):
            raise ValueError(f"TopKAccuracy needs scores (N, C) and targets (N,), got {scores.shape} and {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= scores.shape[1]):
            raise ValueError(f"target labels must be in [0, {scores.shape[1]})")
        true_score = scores[np.arange(len(t)), t]
        higher = (scores > true_score[:, None]).sum(axis=1)
        self._correct += int((higher < self.k).sum())
        self._total += len(t)

    def compute(self) -> float:
        return self._correct / self._total if self._total else 0.0
