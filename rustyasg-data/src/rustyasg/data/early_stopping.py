"""EarlyStopping: stop training when a monitored value has stopped improving.

>>> stopper = EarlyStopping(mode="min", patience=2)
>>> [stopper.step(v) for v in (1.0, 0.8, 0.9, 0.85, 0.95)]
[False, False, False, True, True]
>>> stopper.best, stopper.best_step
(0.8, 1)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Track the best value of a metric and signal a stop after ``patience`` steps without gain.

    ``mode="min"`` (loss) counts ``value < best - min_delta`` as an improvement, ``mode="max"``
    (accuracy) ``value > best + min_delta``. NaN never improves. ``improved`` tells whether the
    last step set a new best (the moment to save a checkpoint).

    >>> es = EarlyStopping(mode="max", patience=1, min_delta=0.01)
    >>> es.step(0.90), es.step(0.905), es.improved, es.should_stop
    (False, True, False, True)
    """

    def __init__(self, mode: str = "min", patience: int = 10, min_delta: float = 0.0, baseline: float | None = None):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 0 or min_delta < 0:
            raise ValueError("patience and min_delta must be non-negative")
        self.mode, self.patience, self.min_delta, self.baseline = mode, int(patience), float(min_delta), baseline
        self.reset()

    def reset(self) -> None:
        """Forget the history (start monitoring anew)."""
        self.best: float | None = None if self.baseline is None else float(self.baseline)
        self.best_step: int | None = None
        self.num_bad_steps = 0
        self.steps = 0
        self.improved = False
        self.should_stop = False

    def is_improvement(self, value: float) -> bool:
        """Whether ``value`` would beat the current best by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: Any) -> bool:
        """Record one evaluation; returns True once training should stop."""
        value = float(value.compute() if hasattr(value, "compute") else value)
        self.improved = self.is_improvement(value)
        if self.improved:
            self.best, self.best_step, self.num_bad_steps = value, self.steps, 0
        else:
            self.num_bad_steps += 1
        self.steps += 1
        self.should_stop = self.should_stop or self.num_bad_steps >= self.patience
        return self.should_stop

    def state_dict(self) -> dict[str, Any]:
        """The tracking state, to resume after a restart (``load_state_dict``)."""
        keys = ("best", "best_step", "num_bad_steps", "steps", "improved", "should_stop")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(mode={self.mode!r}, patience={self.patience}, best={self.best}, bad={self.num_bad_steps})"
        )
