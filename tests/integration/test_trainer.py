"""The training loop: compiled once, schedules without recompiling, evaluation, logging, early stopping,
callbacks, progress output and errors. Tiny models on synthetic data, so the suite stays fast."""

from __future__ import annotations

import doctest
import importlib
import io
import math
import os
import re
import sys

import numpy as np
import pytest

import rustyasg.nn as nn
from rustyasg.data import DataLoader, EarlyStopping, InMemoryDataset, MetricLogger
from rustyasg.data.metrics import Accuracy
from rustyasg.nn.schedulers import StepLR, WarmupCosineAnnealingLR
from rustyasg.nn.training import Callback, LambdaCallback, MissingProgressError, Trainer, fit


@pytest.fixture
def backend() -> str:
    return os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")


def blobs(n: int, seed: int, dim: int = 4, classes: int = 3, centres_seed: int = 0):
    """Gaussian blobs around random centres: learnable, never hard-coded."""
    centres = np.random.default_rng(centres_seed).standard_normal((classes, dim)) * 3.0
    gen = np.random.default_rng(seed)
    y = gen.integers(0, classes, n)
    x = centres[y] + gen.standard_normal((n, dim))
    return x.astype(np.float32), y.astype(np.int64)


def classifier(seed: int, dim: int = 4, classes: int = 3) -> nn.Module:
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, classes))


def test_fit_learns_compiles_once_and_the_schedule_never_recompiles(backend):
    x, y = blobs(256, seed=1)
    xv, yv = blobs(160, seed=2)  # the same classes, fresh samples
    train = DataLoader(InMemoryDataset(x, y), batch_size=32, shuffle=True, drop_last=True, seed=3)
    val = DataLoader(InMemoryDataset(xv, yv), batch_size=40)
    model = classifier(0)
    opt = nn.optim.Adam(model.parameters(), lr=0.05)
    sched = WarmupCosineAnnealingLR(opt, warmup_steps=4, total_steps=4 * len(train))
    lr_var = opt.param_groups[0].scalar_variables()["lr"]
    seen_lrs = []
    trainer = Trainer(model, nn.cross_entropy, opt, scheduler=sched, metrics={"acc": Accuracy()}, backend=backend,
                      progress=False, callbacks=[LambdaCallback(
                          on_step_end=lambda t, step: seen_lrs.append(float(lr_var.value())))])
    result = trainer.fit(train, epochs=4, val_data=val)

    assert result.epochs_completed == 4 and result.global_step == 4 * len(train)
    assert trainer.train_step.stats["compiles"] == 1
    assert trainer.eval_step.stats["compiles"] == 1
    # The variable the compiled step reads follows the schedule step by step.
    expected = [sched.lr_at(s, 0.05) for s in range(1, 4 * len(train) + 1)]
    np.testing.assert_allclose(seen_lrs, expected, rtol=1e-6)
    assert len(set(np.round(seen_lrs, 8))) > 10
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.final["val_acc"] > 0.9
    assert result.train_time_s > 0 and result.final["samples_per_s"] > 0


def test_trainer_matches_a_float64_numpy_sgd_loop_with_a_step_schedule():
    # Linear regression by mini-batch SGD with StepLR, on the float64 reference backend:
    # the loop (batch order, schedule order, number of steps) must match numpy exactly.
    gen = np.random.default_rng(7)
    x = gen.standard_normal((48, 3))
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * gen.standard_normal((48, 1)))
    batches = [(x[i:i + 12], y[i:i + 12]) for i in range(0, 48, 12)]
    model = nn.Linear(3, 1).double()
    w0, b0 = model.weight.value(), model.bias.value()
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    fit(model, nn.mse_loss, opt, batches, epochs=3, scheduler=sched, backend="reference", progress=False)

    w, b, lr = w0.copy(), b0.copy(), 0.1
    for step in range(3 * len(batches)):
        xb, yb = batches[step % len(batches)]
        err = xb @ w.T + b - yb
        gw, gb = 2 * err.T @ xb / err.size, 2 * err.sum(axis=0) / err.size
        w, b = w - lr * gw, b - lr * gb
        lr = 0.1 * 0.5 ** ((step + 1) // 3)
    np.testing.assert_allclose(model.weight.value(), w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.value(), b, rtol=1e-10, atol=1e-12)


def test_evaluate_matches_numpy_loss_and_accuracy(backend):
    x, y = blobs(90, seed=5)
    model = nn.Linear(4, 3)
    trainer = Trainer(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), backend=backend,
                      metrics={"acc": Accuracy()}, progress=False)
    batches = [(x[i:i + 40], y[i:i + 40]) for i in range(0, 90, 40)]  # 40, 40, 10: uneven last batch
    out = trainer.evaluate(batches)

    logits = x.astype(np.float64) @ model.weight.value().T.astype(np.float64) + model.bias.value()
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    assert out["loss"] == pytest.approx(-logp[np.arange(90), y].mean(), rel=1e-5)
    assert out["acc"] == pytest.approx((logits.argmax(axis=1) == y).mean())
    assert trainer.eval_step.stats["compiles"] == 2  # one per batch shape


def test_batchnorm_running_stats_are_updated_by_the_step_and_used_in_eval(backend):
    x, y = blobs(64, seed=2)
    x = x * 3.0 + 5.0  # far from the initial running statistics (0, 1)
    model = classifier(1)
    bn = model[1]
    trainer = Trainer(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.0), backend=backend,
                      progress=False)
    trainer.fit([(x, y)], epochs=3)
    # lr=0: weights fixed, so the batch statistics are the same each step: m_k = 0.9 m_{k-1} + 0.1 mu.
    h = x.astype(np.float64) @ model[0].weight.value().T.astype(np.float64) + model[0].bias.value()
    mu, var = h.mean(axis=0), h.var(axis=0, ddof=1)
    np.testing.assert_allclose(bn.running_mean.value(), (1 - 0.9 ** 3) * mu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.value(), 0.9 ** 3 + (1 - 0.9 ** 3) * var, rtol=1e-4)
    assert int(bn.num_batches_tracked.value()) == 3
    out = trainer.evaluate([(x, y)])
    norm = (h - bn.running_mean.value()) / np.sqrt(bn.running_var.value() + 1e-5) * bn.weight.value() + bn.bias.value()
    logits = np.maximum(norm, 0) @ model[3].weight.value().T.astype(np.float64) + model[3].bias.value()
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    assert out["loss"] == pytest.approx(-logp[np.arange(64), y].mean(), rel=1e-4)


def test_early_stopping_stops_and_the_logger_records_steps_and_epochs(backend):
    x, y = blobs(64, seed=4)
    model = classifier(2)
    logger = MetricLogger()
    stopper = EarlyStopping(mode="min", patience=2)
    # lr=0: the validation loss never improves after the first epoch.
    trainer = Trainer(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.0), backend=backend,
                      logger=logger, early_stopping=stopper, monitor="val_loss", log_every=2, progress=False)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    result = trainer.fit(batches, epochs=10, val_data=batches)
    assert result.stopped_early and result.epochs_completed == 3
    history = logger.history
    assert [s for s, _ in history["loss"]] == list(range(2, 13, 2))
    assert [s for s, _ in history["val_loss"]] == [4, 8, 12]
    assert [v for _, v in history["epoch"]] == [1, 2, 3]
    assert all(math.isfinite(v) for _, v in history["loss"])


def test_callbacks_run_in_order_and_can_stop(backend):
    x, y = blobs(32, seed=6)
    events = []

    class Recorder(Callback):
        def on_fit_start(self, trainer):
            events.append("fit_start")

        def on_epoch_start(self, trainer, epoch):
            events.append(f"epoch_start {epoch}")

        def on_step_end(self, trainer, step):
            events.append(f"step {step}")

        def on_epoch_end(self, trainer, epoch, logs):
            events.append(f"epoch_end {epoch}")
            if epoch == 1:
                trainer.request_stop()

        def on_fit_end(self, trainer, result):
            events.append(f"fit_end {result.epochs_completed}")

    model = classifier(3)
    fit(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), [(x[:16], y[:16]), (x[16:], y[16:])],
        epochs=5, backend=backend, progress=False, callbacks=[Recorder()])
    assert events == ["fit_start", "epoch_start 0", "step 1", "step 2", "epoch_end 0",
                      "epoch_start 1", "step 3", "step 4", "epoch_end 1", "fit_end 2"]


def test_progress_shows_loss_and_throughput_with_tqdm_and_without(backend, monkeypatch):
    x, y = blobs(64, seed=8)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    model = classifier(4)
    out = io.StringIO()
    fit(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), batches, epochs=1, backend=backend,
        progress="tqdm", stream=out, log_every=2)
    text = out.getvalue()
    assert "epoch 1/1" in text and "loss=" in text and "samples/s=" in text and "4/4" in text

    # Without tqdm (its import fails): "auto" falls back to plain lines, "tqdm" names the pip command.
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = io.StringIO()
    fit(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), batches, epochs=1, backend=backend,
        progress="auto", stream=out)
    lines = out.getvalue().splitlines()
    assert any(re.fullmatch(r"epoch 1/1: 4/4 loss=\S+, lr=0\.1, samples/s=[\d.]+", line) for line in lines), lines
    with pytest.raises(MissingProgressError, match="pip install"):
        fit(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), batches, epochs=1,
            backend=backend, progress="tqdm")


def test_gradient_clipping_is_part_of_the_step():
    gen = np.random.default_rng(9)
    x, y = gen.standard_normal((16, 3)), gen.standard_normal((16, 1)) * 100.0
    model = nn.Linear(3, 1).double()
    w0, b0 = model.weight.value(), model.bias.value()
    fit(model, nn.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1), [(x, y)], epochs=1, backend="reference",
        clip_grad_norm=1.0, progress=False)
    err = x @ w0.T + b0 - y
    g = np.concatenate([(2 * err.T @ x / 16).ravel(), 2 * err.sum(axis=0) / 16])
    g *= 1.0 / (np.linalg.norm(g) + 1e-6)
    np.testing.assert_allclose(model.weight.value().ravel(), w0.ravel() - 0.1 * g[:3], rtol=1e-10)
    np.testing.assert_allclose(model.bias.value(), b0 - 0.1 * g[3:], rtol=1e-10)


def test_nonfinite_loss_stops_with_a_clear_error(backend):
    x, y = blobs(16, seed=10)
    x[3, 1] = np.nan
    model = classifier(5)
    with pytest.raises(FloatingPointError, match=r"training loss became nan by step 1 \(epoch 1\)"):
        fit(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), [(x, y)], epochs=1,
            backend=backend, progress=False, log_every=1)


def test_bad_training_data_is_reported_clearly(backend):
    model = classifier(6)
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    x, y = blobs(8, seed=11)
    with pytest.raises(TypeError, match=r"\(x, y\) pairs.*an array of shape \(8, 4\)"):
        fit(model, nn.cross_entropy, opt, [x], epochs=1, backend=backend, progress=False)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fit(model, nn.cross_entropy, opt, iter([(x, y)]), epochs=2, backend=backend, progress=False)
    with pytest.raises(ValueError, match="disagree on the batch size"):
        fit(model, nn.cross_entropy, opt, [(x, y[:5])], epochs=1, backend=backend, progress=False)
    with pytest.raises(ValueError, match="scheduler_interval"):
        Trainer(model, nn.cross_entropy, opt, scheduler_interval="batch")


@pytest.mark.parametrize("name", ["callbacks", "checkpointing", "interrupts", "progress", "steps", "trainer"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"rustyasg.nn.training.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
