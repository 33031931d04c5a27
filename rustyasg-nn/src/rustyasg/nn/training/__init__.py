"""The training loop: ``Trainer`` / ``fit`` around one compiled train step and one eval step.

Progress (tqdm when installed), periodic loss read-back, evaluation with any
``update/compute/reset`` metrics, logging, LR schedules without recompiles,
checkpoints through a ``CheckpointManager``, early stopping, clean Ctrl-C and
exact resumption.

Example:
    >>> import numpy as np, rustyasg.nn as nn
    >>> from rustyasg.nn.training import Trainer
    >>> x = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    >>> y = (x.sum(axis=1) > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> trainer = Trainer(model, nn.cross_entropy, nn.optim.Adam(model.parameters(), lr=1e-2),
    ...                   backend="reference", progress=False)
    >>> trainer.fit([(x, y)], epochs=2).global_step
    2
"""

from .callbacks import Callback, CallbackList, LambdaCallback
from .interrupts import InterruptGuard
from .progress import MissingProgressError, make_progress
from .steps import build_eval_step, build_train_step
from .trainer import FitResult, Trainer, TrainState, fit

__all__ = ["Trainer", "fit", "FitResult", "TrainState", "Callback", "CallbackList", "LambdaCallback",
           "InterruptGuard", "MissingProgressError", "make_progress", "build_train_step", "build_eval_step"]
