"""Callbacks: user code the trainer calls at fixed points of the loop.

Subclass :class:`Callback` and override any hook; every hook gets the trainer, so
a callback can read ``trainer.state`` (epoch, step), change ``trainer.optimizer``'s
settings, or ask the loop to stop with ``trainer.request_stop()``. Hooks run on the
host between compiled steps; they never change the compiled graph.

Example:
    >>> class PrintEpochs(Callback):
    ...     def on_epoch_end(self, trainer, epoch, logs):
    ...         print(epoch, round(logs["train_loss"], 2))
    >>> CallbackList([PrintEpochs()]).on_epoch_end(None, 0, {"train_loss": 0.5})
    0 0.5
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base class: every hook does nothing until overridden."""

    def on_fit_start(self, trainer) -> None:
        """Before the first step (after a resume restored the state)."""

    def on_epoch_start(self, trainer, epoch: int) -> None:
        """Before the first step of ``epoch`` (0-based)."""

    def on_step_end(self, trainer, step: int) -> None:
        """After training step ``step`` (1-based global count) ran; its loss is not read back here."""

    def on_epoch_end(self, trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        """After ``epoch``'s evaluation and logging; ``logs`` holds its metrics."""

    def on_fit_end(self, trainer, result) -> None:
        """When ``fit`` returns (normally, stopped early, or interrupted)."""


class LambdaCallback(Callback):
    """A callback from plain functions, one keyword per hook.

    >>> cb = LambdaCallback(on_epoch_start=lambda trainer, epoch: print("epoch", epoch))
    >>> cb.on_epoch_start(None, 3)
    epoch 3
    """

    def __init__(self, **hooks: Callable):
        unknown = sorted(set(hooks) - set(HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {unknown}; hooks are {list(HOOKS)}")
        for name, fn in hooks.items():
            setattr(self, name, fn)


class CallbackList:
    """Calls each hook on every callback in order (objects may implement only some hooks)."""

    def __init__(self, callbacks: Optional[Iterable[Any]] = None):
        self.callbacks = list(callbacks or [])

    def _dispatch(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def __getattr__(self, hook: str):
        # One dispatcher for every hook name instead of a method per hook.
        if hook in HOOKS:
            return lambda *args: self._dispatch(hook, *args)
        raise AttributeError(hook)
