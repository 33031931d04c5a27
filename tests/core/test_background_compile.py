"""``Function.compile(..., background=True)``: the compile runs in a thread, the first call waits for it."""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn.training import Trainer


@pytest.fixture
def rng():
    return np.random.default_rng(20261208)


def _step(backend, w0):
    x = rg.input((None, 3), "float32", name="x")
    w = rg.variable(w0.copy(), name="w")
    loss = (rg.tanh(x @ w) ** 2).mean()
    (g,) = rg.grad(loss, [w])
    return rg.function([x], loss, updates={w: w - 0.1 * g}, backend=backend), w


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_background_compile_gives_the_steps_of_a_foreground_one(backend, rng):
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    batches = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(4)]
    ahead, w_ahead = _step(backend, w0)
    pending = ahead.compile(np.zeros((5, 3), np.float32), background=True)
    assert isinstance(pending, concurrent.futures.Future)
    assert ahead.compile(np.zeros((5, 3), np.float32), background=True) is pending  # one compile per signature
    got = [float(ahead(b)) for b in batches]
    assert pending.done() and ahead.stats["compiles"] == 1 and ahead.stats["background_compile_s"] > 0
    assert 0 <= ahead.stats["last_compile_s"]  # what the first call waited, with its first run
    assert pending.result() is ahead.compile(batches[0])  # the executable the calls run

    plain, w_plain = _step(backend, w0)
    want = [float(plain(b)) for b in batches]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(w_ahead.value(), w_plain.value())
    done = ahead.compile(np.zeros((5, 3), np.float32), background=True)  # compiled: a future already done
    assert done.done() and done.result() is pending.result()


def test_a_background_compile_error_is_raised_by_the_first_call_and_the_future(monkeypatch):
    x = rg.input((None, 3), "float32", name="x")
    f = rg.function([x], x.sum(), backend="reference")
    started = threading.Event()

    def broken(program):
        started.set()
        raise RuntimeError("backend compile failed")

    monkeypatch.setattr(f.backend, "compile", broken)
    pending = f.compile(np.zeros((2, 3), np.float32), background=True)
    with pytest.raises(RuntimeError, match="backend compile failed"):
        f(np.ones((2, 3), np.float32))
    assert started.is_set() and isinstance(pending.exception(), RuntimeError)
    assert f.stats["compiles"] == 0
    monkeypatch.undo()
    assert float(f(np.ones((2, 3), np.float32))) == 6.0  # the next call compiles again, in the foreground
    assert f.stats["compiles"] == 1


def test_background_compile_checks_the_arguments_at_once():
    x = rg.input((None, 3), "float32", name="x")
    f = rg.function([x], x.sum(), backend="reference")
    with pytest.raises(TypeError, match="expected 1 argument"):
        f.compile(np.zeros((2, 3)), np.zeros(2), background=True)


def _trainer(seed):
    nn.init.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    return Trainer(model, nn.cross_entropy, nn.optim.Adam(model.parameters(), lr=0.01), progress=False,
                   backend="cpu"), model


def test_trainer_compiles_its_step_ahead_and_trains_as_without(rng):
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32).astype(np.int64)
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    ahead, model_ahead = _trainer(3)
    ahead.compile((np.zeros((8, 6), np.float32), np.zeros(8, np.int64)), background=True).result()
    result = ahead.fit(batches, epochs=2)
    assert ahead.train_step.stats["compiles"] == 1  # fit's first step used the compiled executable
    assert result.compile_time_s < ahead.train_step.stats["background_compile_s"] + 1.0
    plain, model_plain = _trainer(3)
    plain.fit(batches, epochs=2)
    for (name, a), (_, b) in zip(model_ahead.state_dict().items(), model_plain.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
