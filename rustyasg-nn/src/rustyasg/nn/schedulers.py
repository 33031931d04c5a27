"""Learning-rate schedulers that set ``group["lr"]`` on the host each ``step()``.

The optimizer keeps the learning rate in a scalar variable, so a schedule changes
what the compiled step reads without recompiling it. Schedules are closed forms
of the step count (``lr_at(step, base_lr)``), which makes their state two numbers
and resuming exact; they agree with PyTorch's recursive implementations.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.optim import SGD
    >>> opt = SGD([rg.variable(np.zeros(2), name="w")], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> [round(opt.param_groups[0]["lr"], 3) for _ in range(5) if sched.step() is None]
    [1.0, 0.5, 0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np  # noqa: F401  (the examples use np)

import rustyasg.core as rg  # noqa: F401  (the examples use rg)


class LRScheduler:
    """Base class: subclasses implement ``lr_at(step, base_lr)``.

    Like PyTorch, constructing a scheduler applies step 0 (``last_epoch`` becomes 0) and
    records each group's ``initial_lr``; ``step()`` advances one step and sets the new rates.
    """

    def __init__(self, optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param group {i} has no 'initial_lr'; it is needed to resume at last_epoch={last_epoch}")
        self.base_lrs: List[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: List[float] = []
        self.step()

    def lr_at(self, step: int, base_lr: float) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new learning rates into the optimizer."""
        self.last_epoch += 1
        self._last_lr = [self.lr_at(self.last_epoch, b) for b in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> List[float]:
        """The learning rates set by the latest ``step()``, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> Dict[str, Any]:
        """Plain Python values (JSON-serialisable): settings, ``last_epoch``, ``base_lrs``."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the optimizer's own state dict restores the current rates)."""
        self.__dict__.update(state)

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.state_dict().items() if not k.startswith("_"))
        return f"{type(self).__name__}({settings})"


class StepLR(LRScheduler):
    """``base_lr * gamma ** (step // step_size)`` (``torch.optim.lr_scheduler.StepLR``).

    >>> from rustyasg.nn.optim import SGD
    >>> opt = SGD([rg.variable(np.zeros(1), name="w")], lr=1.0)
    >>> s = StepLR(opt, step_size=10, gamma=0.5); s.lr_at(25, 1.0)
    0.25
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr):
        return base_lr * self.gamma ** (step // self.step_size)


class ExponentialLR(LRScheduler):
    """``base_lr * gamma ** step`` (``torch.optim.lr_scheduler.ExponentialLR``).

    >>> from rustyasg.nn.optim import SGD
    >>> opt = SGD([rg.variable(np.zeros(1), name="w")], lr=1.0)
    >>> round(ExponentialLR(opt, gamma=0.9).lr_at(2, 1.0), 6)
    0.81
    """

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr):
        return base_lr * self.gamma ** step


def cosine(progress: float, base_lr: float, eta_min: float) -> float:
    """Half a cosine from ``base_lr`` (progress 0) to ``eta_min`` (progress 1)."""
    return eta_min + (base_lr - eta_min) * (1.0 + math.cos(math.pi * progress)) / 2.0


def linear(progress: float, start: float, end: float) -> float:
    """Linear ramp from ``start`` (progress 0) to ``end`` (progress 1)."""
    return start + (end - start) * progress


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) (1 + cos(pi step / T_max)) / 2`` (``CosineAnnealingLR``).

    As in PyTorch, past ``T_max`` the cosine continues (the rate rises again).

    >>> from rustyasg.nn.optim import SGD
    >>> opt = SGD([rg.variable(np.zeros(1), name="w")], lr=1.0)
    >>> CosineAnnealingLR(opt, T_max=10, eta_min=0.1).lr_at(5, 1.0)
    0.55
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        if T_max < 1:
            raise ValueError(f"T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr):
        return cosine(step / self.T_max, base_lr, self.eta_min)


class LinearWarmupLR(LRScheduler):
    """Ramp from ``start_factor * base_lr`` to ``end_factor * base_lr`` over ``warmup_steps``, then hold.

    With ``start_factor > 0`` this is PyTorch's ``LinearLR(start_factor, end_factor, total_iters)``;
    the default ramps from 0 as usual for warmup.

    >>> from rustyasg.nn.optim import SGD
    >>> opt = SGD([rg.variable(np.zeros(1), name="w")], lr=1.0)
    >>> LinearWarmupLR(opt, warmup_steps=4).lr_at(1, 1.0)
    0.25
    """

    def __init__(self, optimizer, warmup_steps: int, start_factor: float = 0.0, end_factor: float = 1.0,
                 last_epoch: int = -1):
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        if not (0.0 <= start_factor <= 1.0 and 0.0 <= end_factor <= 1.0):
            raise ValueError(f"start_factor and end_factor must be in [0, 1], got {start_factor}, {end_factor}")
        self.warmup_steps, self.start_factor, self.end_factor = int(warmup_steps), float(start_factor), float(end_factor)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr):
        return base_lr * linear(min(step, self.warmup_steps) / self.warmup_steps, self.start_factor, self.end_factor)


class WarmupCosineAnnealingLR(LRScheduler):
    """Linear warmup over ``warmup_steps`` from ``warmup_start_factor * base_lr``, then a cosine to
    ``eta_min`` at ``total_steps``, then ``eta_min``.

    Equals PyTorch's ``SequentialLR([LinearLR(f, 1, W), CosineAnnealingLR(total - W, eta_min)], [W])``
    up to ``total_steps`` (where PyTorch's cosine would start rising again).

    >>> from rustyasg.nn.optim import SGD
    >>> opt = SGD([rg.variable(np.zeros(1), name="w")], lr=1.0)
    >>> s = WarmupCosineAnnealingLR(opt, warmup_steps=2, total_steps=12)
    >>> [round(s.lr_at(t, 1.0), 3) for t in (0, 1, 2, 7, 12, 20)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """

    def __init__(self, optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0,
                 warmup_start_factor: float = 0.0, last_epoch: int = -1):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
        if not 0.0 <= warmup_start_factor <= 1.0:
            raise ValueError(f"warmup_start_factor must be in [0, 1], got {warmup_start_factor}")
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.eta_min, self.warmup_start_factor = float(eta_min), float(warmup_start_factor)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr):
        if step < self.warmup_steps:
            return base_lr * linear(step / self.warmup_steps, self.warmup_start_factor, 1.0)
        progress = min(step - self.warmup_steps, self.total_steps - self.warmup_steps)
        return cosine(progress / (self.total_steps - self.warmup_steps), base_lr, self.eta_min)


__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmupLR",
           "WarmupCosineAnnealingLR"]
