"""Kernels split across threads give exactly the results of one call."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.cpu import threads


def test_pool_runs_chunks_concurrently_and_reraises_errors():
    pool = threads.Pool(3)
    seen, barrier = set(), threading.Barrier(3, timeout=10)

    def job(k):
        def run():
            barrier.wait()  # deadlocks unless all three run at the same time
            seen.add(k)
        return run

    pool.run([job(k) for k in range(3)])
    assert seen == {0, 1, 2}

    def boom():
        raise ValueError("chunk failed")

    with pytest.raises(ValueError, match="chunk failed"):
        pool.run([lambda: None, boom])
    pool.run([lambda: None, lambda: None])  # still usable


def _model(rng):
    x = rg.input((6, 3, 12, 12), "float32", name="x")
    w = rg.variable(rng.standard_normal((5, 3, 3, 3)).astype(np.float32) * 0.3, name="w")
    g = rg.variable(np.ones(10, np.float32), name="g")
    h = rg.max_pool2d(rg.relu(rg.conv2d(x, w, padding=1, stride=2)), 2, stride=1)
    h = rg.batch_norm(h, rg.constant(np.ones(5, np.float32)), rg.constant(np.zeros(5, np.float32)))
    t = h.reshape((6, 5 * 25))
    t = rg.layer_norm(t.reshape((6, 5, 25))[..., :10], g, rg.constant(np.zeros(10, np.float32)))
    att = rg.softmax(t @ rg.transpose(t, axes=(0, 2, 1)), axis=-1)
    loss = (rg.gelu(att) ** 2).mean() + rg.logsumexp(t, axis=(1, 2)).sum()
    grads = rg.grad(loss, [x, w, g])
    return [x], [loss] + grads


def test_split_kernels_match_single_calls_exactly(rng, monkeypatch):
    xv = rng.standard_normal((6, 3, 12, 12)).astype(np.float32)
    inputs, outputs = _model(rng)
    whole = rg.function(inputs, outputs, backend="cpu")(xv)
    monkeypatch.setattr(threads, "MIN_WORK", 0)
    monkeypatch.setenv("RUSTYASG_CPU_THREADS", "3")
    split = rg.function(inputs, outputs, backend="cpu")
    assert "run" in repr(split.compile(xv)._steps)  # steps bound to the pool's run
    for a, b in zip(split(xv), whole):
        np.testing.assert_array_equal(a, b)
