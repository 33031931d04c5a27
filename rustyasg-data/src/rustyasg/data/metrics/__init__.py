"""Streaming metrics (numpy): ``update(batch)`` as batches arrive, ``compute()`` at the end.

>>> from rustyasg.data.metrics import Accuracy, MeanSquaredError
>>> acc = Accuracy()
>>> acc.update([[0.1, 0.9], [0.8, 0.2]], [1, 1])   # scores -> argmax
>>> acc.compute()
0.5
"""

from .base import Metric
from .classification import (
    Accuracy,
    ConfusionMatrix,
    F1Score,
    FBetaScore,
    Precision,
    Recall,
    TopKAccuracy,
    to_labels,
)
from .moments import Moments
from .regression import (
    ExplainedVariance,
    MaxError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    R2Score,
    RootMeanSquaredError,
)
from .running import EMA, RunningMean, RunningStd

# Short aliases, as torchmetrics users spell them.
MSE, RMSE, MAE, MAPE, R2 = (
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    R2Score,
)
F1 = F1Score

__all__ = [
    "Metric",
    "Moments",
    "to_labels",
    "Accuracy",
    "Precision",
    "Recall",
    "FBetaScore",
    "F1Score",
    "F1",
    "ConfusionMatrix",
    "TopKAccuracy",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "R2Score",
    "ExplainedVariance",
    "MaxError",
    "MSE",
    "RMSE",
    "MAE",
    "MAPE",
    "R2",
    "RunningMean",
    "RunningStd",
    "EMA",
]
