"""Memory planning: buffers packed by lifetime, allocated once, reused across calls."""

from __future__ import annotations

import tracemalloc

import numpy as np

import rustyasg.core as rg
from rustyasg.core.backend_api import planned_peak_bytes
from rustyasg.cpu.memory import ALIGN, allocate


def test_arena_is_aligned():
    for n in (1, 100, 4096):
        assert allocate(n).ctypes.data % ALIGN == 0


def _mlp(rng, hidden=64):
    x = rg.input(("B", 32), "float32", name="x")
    w1 = rg.variable(rng.standard_normal((32, hidden)).astype(np.float32) * 0.1, name="w1")
    w2 = rg.variable(rng.standard_normal((hidden, 10)).astype(np.float32) * 0.1, name="w2")
    h = x
    for _ in range(4):  # a deep chain of same-shaped temporaries, each dead after the next layer
        h = rg.tanh(h @ w1 @ rg.transpose(w1, axes=(1, 0)))
    loss = rg.mean(rg.square(h @ w1 @ w2))
    grads = rg.grad(loss, [w1, w2])
    return rg.function([x], loss, updates={w1: w1 - 0.01 * grads[0], w2: w2 - 0.01 * grads[1]}, backend="cpu")


def test_intermediates_share_memory_and_the_report_says_so(rng):
    f = _mlp(rng)
    xv = rng.standard_normal((128, 32)).astype(np.float32)
    report = f.memory_report(xv)
    assert report["arena_bytes"] < report["naive_bytes"] / 2
    assert report["live_peak_bytes"] <= report["arena_bytes"]
    assert report["inplace_updates"] == 2 and report["deferred_updates"] == 0
    memory = f.compile(xv).program.plan.memory
    assert memory.layout.alignment == ALIGN and not memory.layout.pooled
    assert all(b.slot % ALIGN == 0 for b in memory.buffers.values())
    assert report["live_peak_bytes"] == planned_peak_bytes(f.compile(xv)) == max(memory.live_bytes)


def test_running_allocates_nothing_but_the_outputs(rng):
    f = _mlp(rng)
    xv = rng.standard_normal((128, 32)).astype(np.float32)
    f(xv)
    exe = f.compile(xv)
    arena = exe._arena.ctypes.data
    tracemalloc.start()
    for _ in range(5):
        f(xv)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    one_activation = 128 * 64 * 4
    assert peak < one_activation, peak
    assert exe._arena.ctypes.data == arena


def test_results_do_not_alias_internal_buffers(rng):
    x = rg.input((4,), "float64", name="x")
    f = rg.function([x], [rg.exp(x), x * 2.0], backend="cpu")
    a1, b1 = f(np.zeros(4))
    a2, b2 = f(np.ones(4))
    np.testing.assert_array_equal(a1, np.ones(4))
    np.testing.assert_array_equal(b1, np.zeros(4))
    np.testing.assert_allclose(a2, np.e)
