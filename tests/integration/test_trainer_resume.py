"""Interrupting and resuming: a run stopped by Ctrl-C (a real SIGINT to this process) or at an epoch
boundary, then resumed into fresh objects, ends bit-for-bit where an uninterrupted run ends: weights,
BatchNorm buffers, Adam moments, the schedule, dropout's RNG stream and early stopping all continue."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import rustyasg.nn as nn
from rustyasg.data import DataLoader, EarlyStopping, InMemoryDataset
from rustyasg.data.metrics import Accuracy
from rustyasg.nn.checkpoint import CheckpointManager, read_checkpoint, save_checkpoint
from rustyasg.nn.schedulers import WarmupCosineAnnealingLR
from rustyasg.nn.training import LambdaCallback, Trainer

EPOCHS, BATCH = 3, 16


@pytest.fixture
def backend() -> str:
    return os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")


def data():
    gen = np.random.default_rng(21)
    centres = gen.standard_normal((3, 4)) * 2.0
    y = gen.integers(0, 3, 96)
    x = (centres[y] + gen.standard_normal((96, 4))).astype(np.float32)
    # A fresh, identically seeded loader each time, as a restarted process would build.
    train = DataLoader(InMemoryDataset(x[:64], y[:64]), batch_size=BATCH, shuffle=True, drop_last=True, seed=5)
    val = [(x[64:], y[64:])]
    return train, val


def make_trainer(backend, init_seed: int, rng_seed: int, manager, callbacks=()):
    nn.init.manual_seed(init_seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    model.set_rng(rng_seed)
    opt = nn.optim.Adam(model.parameters(), lr=0.02)
    sched = WarmupCosineAnnealingLR(opt, warmup_steps=3, total_steps=EPOCHS * 4)
    return Trainer(model, nn.cross_entropy, opt, scheduler=sched, metrics={"acc": Accuracy()},
                   early_stopping=EarlyStopping(mode="min", patience=10), checkpoints=manager, backend=backend,
                   progress=False, callbacks=callbacks)


def snapshot(trainer):
    out = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    for i, slots in trainer.optimizer.state_dict()["state"].items():
        out.update({f"opt/{i}/{k}": np.asarray(v) for k, v in slots.items()})
    out.update({f"rng/{k}": v.value() for k, v in trainer.model.rng_states().items()})
    return out


def assert_same_state(a, b):
    ta, tb = snapshot(a), snapshot(b)
    assert sorted(ta) == sorted(tb)
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]
    assert a.early_stopping.state_dict() == b.early_stopping.state_dict()
    assert a.state == b.state


@pytest.fixture
def straight(backend, tmp_path):
    """The uninterrupted reference run."""
    trainer = make_trainer(backend, 0, 123, CheckpointManager(tmp_path / "straight"))
    train, val = data()
    result = trainer.fit(train, EPOCHS, val_data=val)
    assert result.global_step == EPOCHS * 4 and not result.interrupted
    return trainer, result


def test_sigint_mid_epoch_then_resume_equals_uninterrupted(backend, tmp_path, straight):
    reference, ref_result = straight
    manager = CheckpointManager(tmp_path / "run", max_to_keep=3, keep_best=1, metric="val_loss")

    def ctrl_c(trainer, step):
        if step == 6:  # the second batch of the second epoch
            os.kill(os.getpid(), signal.SIGINT)

    first = make_trainer(backend, 0, 123, manager, [LambdaCallback(on_step_end=ctrl_c)])
    train, val = data()
    result = first.fit(train, EPOCHS, val_data=val)
    assert result.interrupted and result.global_step == 6 and result.epochs_completed == 1
    assert len(result.history) == 1
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt.step == 6 and ckpt.metadata["rustyasg.trainer"]["batch"] == 2
    assert manager.best_step == 4  # the Ctrl-C checkpoint has no evaluation: never ranked best
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler was put back

    # A fresh process would build everything anew: other initial weights and RNG seed, same data.
    resumed = make_trainer(backend, 99, 777, CheckpointManager(tmp_path / "run", max_to_keep=3, keep_best=1,
                                                               metric="val_loss"))
    train, val = data()
    result2 = resumed.fit(train, EPOCHS, val_data=val, resume_from=resumed.checkpoints)
    assert result2.global_step == EPOCHS * 4 and not result2.interrupted
    assert_same_state(resumed, reference)
    assert [h["val_loss"] for h in result2.history] == [h["val_loss"] for h in ref_result.history[1:]]
    assert resumed.train_step.stats["compiles"] == 1


def test_stop_at_an_epoch_boundary_then_resume_from_the_file(backend, tmp_path, straight):
    reference, _ = straight

    def stop_after_first(trainer, epoch, logs):
        if epoch == 0:
            trainer.request_interrupt()

    first = make_trainer(backend, 0, 123, CheckpointManager(tmp_path / "run"),
                         [LambdaCallback(on_epoch_end=stop_after_first)])
    train, val = data()
    result = first.fit(train, EPOCHS, val_data=val)
    assert result.interrupted and result.global_step == 4 and result.epochs_completed == 1
    assert first.checkpoints.steps == [4]  # the epoch-end save was not repeated

    resumed = make_trainer(backend, 5, 555, None)
    train, val = data()
    resumed.fit(train, EPOCHS, val_data=val, resume_from=result.checkpoint)
    assert_same_state(resumed, reference)


def test_resume_errors_name_the_problem(backend, tmp_path):
    trainer = make_trainer(backend, 0, 1, None)
    train, _ = data()
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        trainer.fit(train, 1, resume_from=CheckpointManager(tmp_path / "empty"))
    plain = save_checkpoint(tmp_path / "weights.safetensors", model=trainer.model, step=3)
    with pytest.raises(ValueError, match=r"weights\.safetensors: no trainer state"):
        trainer.fit(train, 1, resume_from=plain)
    with pytest.raises(TypeError, match="resume_from must be"):
        trainer.fit(train, 1, resume_from=42)
