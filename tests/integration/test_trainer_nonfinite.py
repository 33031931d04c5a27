"""A run that goes non-finite: the trainer halts before saving it, and the checkpoint manager never
rotates the last checkpoint with finite weights out, even when told to keep only the newest."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn.checkpoint import CheckpointManager, all_finite, read_checkpoint
from rustyasg.nn.training import Trainer


@pytest.fixture
def backend() -> str:
    return os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")


def batches(seed: int, n: int = 4, nan_at=None):
    gen = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = gen.standard_normal((8, 3)).astype(np.float32)
        if i == nan_at:
            x[2, 1] = np.nan  # one bad sample, as a corrupt record in a real data set
        out.append((x, gen.integers(0, 2, 8).astype(np.int64)))
    return out


def mlp(seed: int) -> nn.Module:
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))


def weights_finite(model) -> bool:
    return all_finite(model.state_dict().values())


class SwitchingData:
    """Clean batches in the first epoch, one NaN batch in every later one (``set_epoch`` as DataLoader)."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 4

    def __iter__(self):
        return iter(batches(self.epoch, nan_at=None if self.epoch == 0 else 1))


def test_a_nan_batch_halts_the_run_before_anything_non_finite_is_saved(tmp_path, backend):
    model = mlp(0)
    manager = CheckpointManager(tmp_path, max_to_keep=1)
    trainer = Trainer(model, nn.cross_entropy, nn.optim.Adam(model.parameters(), lr=0.01), backend=backend,
                      checkpoints=manager, progress=False)
    with pytest.raises(FloatingPointError, match=r"became (nan|NaN/inf)") as err:
        trainer.fit(SwitchingData(), epochs=3)
    assert "epoch 2" in str(err.value)
    assert manager.steps == [4] and manager.last_finite_step == 4
    assert all_finite(read_checkpoint(manager.latest()).model.values())
    fresh = mlp(1)
    manager.restore_latest(model=fresh)
    assert weights_finite(fresh)


def test_weights_going_nan_under_a_finite_loss_halt_the_run(backend):
    # |z| written as sqrt(z * z): its gradient at z == 0 is 0 * inf = NaN (PyTorch agrees), while
    # the loss there is a perfectly finite 0. A zero input row with zero biases lands on it.
    model = nn.Linear(3, 1)
    model.bias.assign(np.zeros(1, np.float32))
    x = np.zeros((4, 3), np.float32)
    y = np.zeros((4, 1), np.float32)
    trainer = Trainer(model, nn.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1), backend=backend,
                      forward=lambda m, xs: rg.sqrt(m(xs) * m(xs)), progress=False, log_every=1)
    with pytest.raises(FloatingPointError, match=r"weights or optimizer state became NaN/inf at step 1 "
                                                 r"\(epoch 1\) while the loss stayed finite \(0\)"):
        trainer.fit([(x, y)], epochs=2)


def test_without_the_halt_keep_last_k_still_keeps_the_last_finite_checkpoint(tmp_path, backend):
    model = mlp(2)
    manager = CheckpointManager(tmp_path, max_to_keep=1)
    trainer = Trainer(model, nn.cross_entropy, nn.optim.Adam(model.parameters(), lr=0.01), backend=backend,
                      checkpoints=manager, progress=False, halt_on_nonfinite=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(SwitchingData(), epochs=3)
    assert not weights_finite(model)  # the NaN batch did poison the weights
    notes = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("NaN/inf" in n and "last finite one (step 4) is kept" in n for n in notes), notes
    assert manager.steps == [4, 12] and manager.latest_step == 12 and manager.last_finite_step == 4
    assert read_checkpoint(manager.latest()).metadata["rustyasg.trainer"]["epoch"] == 3
    # A new manager on the same directory reads the flags back from the headers, and rotation
    # with a finite checkpoint at last lets the old one go.
    again = CheckpointManager(tmp_path, max_to_keep=1)
    assert again.last_finite_step == 4
    good = mlp(3)
    restored = mlp(4)
    assert again.restore_last_finite(model=restored).step == 4 and weights_finite(restored)
    again.save(13, model=good)
    assert again.steps == [13] and again.last_finite_step == 13


def test_a_nan_metric_is_never_the_best(tmp_path):
    w = rg.variable(np.zeros(2, np.float32), name="w")
    manager = CheckpointManager(tmp_path, max_to_keep=1, keep_best=1, metric="val_loss")
    for step, loss in [(1, 0.7), (2, 0.4), (3, float("nan")), (4, 0.9)]:
        manager.save(step, model={"w": w}, metrics={"val_loss": loss})
    assert manager.best_step == 2 and manager.steps == [2, 4]
