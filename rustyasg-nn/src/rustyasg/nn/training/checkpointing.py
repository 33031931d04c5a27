"""What a training checkpoint holds, and putting it back.

A trainer checkpoint is the model's state dict, the optimizer's (moments, step
counts, settings), the scheduler's, the RNG streams of the model (dropout), the
trainer's position (epoch, batch in the epoch, global step) and the early-stopping
tracker's state. Saving goes through the ``CheckpointManager`` given to the trainer
(``rustyasg.nn.checkpoint``), which writes one crash-safe SafeTensors file; the
trainer's own state rides in the file's user metadata under ``"rustyasg.trainer"``.

Example:
    >>> import tempfile, numpy as np, rustyasg.nn as nn
    >>> from rustyasg.nn.training import Trainer
    >>> model = nn.Linear(2, 1)
    >>> trainer = Trainer(model, nn.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1), backend="reference",
    ...                   checkpoints=nn.CheckpointManager(tempfile.mkdtemp()), progress=False)
    >>> batch = (np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32))
    >>> path = trainer.fit([batch, batch], epochs=1).checkpoint
    >>> nn.read_checkpoint(path).metadata[TRAINER_KEY]
    {'epoch': 1, 'batch': 0, 'global_step': 2}
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Mapping

TRAINER_KEY = "rustyasg.trainer"  # the trainer's entry in the checkpoint's user metadata


def trainer_state(trainer) -> Dict[str, Any]:
    """The trainer's position plus the early-stopping tracker (plain Python values)."""
    state: Dict[str, Any] = trainer.state.as_dict()
    stopper = trainer.early_stopping
    if stopper is not None and hasattr(stopper, "state_dict"):
        state["early_stopping"] = stopper.state_dict()
    return state


def restore_trainer_state(trainer, state: Mapping[str, Any]) -> None:
    trainer.state.epoch = int(state["epoch"])
    trainer.state.batch = int(state["batch"])
    trainer.state.global_step = int(state["global_step"])
    stopper = trainer.early_stopping
    if "early_stopping" in state and stopper is not None and hasattr(stopper, "load_state_dict"):
        stopper.load_state_dict(dict(state["early_stopping"]))


def _metrics_for(manager, logs: Mapping[str, Any]) -> Dict[str, float]:
    """Numeric logs for the manager's ranking.

    A manager that keeps the best by a metric needs that metric on every save; a checkpoint
    written on Ctrl-C mid-epoch has no fresh evaluation, so it gets the worst possible value
    and is never mistaken for the best one.
    """
    metrics = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    ranked_by = getattr(manager, "metric", None)
    if getattr(manager, "keep_best", 0) and ranked_by is not None and ranked_by not in metrics:
        metrics[ranked_by] = math.inf if getattr(manager, "mode", "min") == "min" else -math.inf
    return metrics


def save(trainer, manager, logs: Mapping[str, Any]) -> str:
    """Save the whole training state through ``manager``; ``logs`` are the metrics it may rank by.

    Returns the path written.
    """
    metadata = {**trainer.checkpoint_metadata, TRAINER_KEY: trainer_state(trainer)}
    objects = {"model": trainer.model, "optimizer": trainer.optimizer}
    if trainer.scheduler is not None:
        objects["scheduler"] = trainer.scheduler
    path = manager.save(trainer.state.global_step, metrics=_metrics_for(manager, logs), metadata=metadata, **objects)
    return str(path)


def resume(trainer, source) -> None:
    """Restore the training state from a ``CheckpointManager`` (its latest file) or a checkpoint path.

    Model weights and buffers, optimizer state and settings, scheduler, RNG streams, the
    trainer's position and the early-stopping tracker all come back.
    """
    from ..checkpoint import load_checkpoint

    objects = {"model": trainer.model, "optimizer": trainer.optimizer}
    if trainer.scheduler is not None:
        objects["scheduler"] = trainer.scheduler
    if isinstance(source, (str, os.PathLike)):
        _require_trainer_state(source)  # before anything is assigned
        ckpt = load_checkpoint(source, **objects)
    elif hasattr(source, "restore_latest"):
        latest = source.latest()
        if latest is None:
            raise FileNotFoundError(f"resume_from: no checkpoint in {getattr(source, 'directory', source)}")
        ckpt = source.restore_latest(**objects)  # falls back to an older file if the newest is damaged
        if ckpt is None:
            raise FileNotFoundError(f"resume_from: no readable checkpoint in {getattr(source, 'directory', source)}")
    else:
        raise TypeError(f"resume_from must be a checkpoint path or a CheckpointManager, got {type(source).__name__}")
    if TRAINER_KEY not in ckpt.metadata:
        raise ValueError(_not_ours(ckpt.path))
    restore_trainer_state(trainer, ckpt.metadata[TRAINER_KEY])


def _require_trainer_state(path) -> None:
    """Fail early, naming the file, on a checkpoint that Trainer did not write."""
    from ..serialization import safetensors_metadata

    user = json.loads(safetensors_metadata(path).get("user", "{}"))
    if TRAINER_KEY not in user:
        raise ValueError(_not_ours(path))


def _not_ours(path) -> str:
    return (f"{path}: no trainer state in the checkpoint (not written by Trainer); "
            f"load it with rustyasg.nn.load_checkpoint to start a new run from its weights")
