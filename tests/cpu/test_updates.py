"""Variable updates: in place when safe, simultaneous semantics always."""

from __future__ import annotations

import numpy as np

import rustyasg.core as rg


def test_sgd_updates_are_in_place_and_match_the_reference(rng):
    xv = rng.standard_normal((16, 8))
    results = {}
    for backend in ("cpu", "reference"):
        w = rg.variable(np.linspace(-1, 1, 8 * 4).reshape(8, 4), name="w")
        b = rg.variable(np.zeros(4), name="b")
        x = rg.input((16, 8), "float64", name="x")
        loss = rg.mean(rg.tanh(x @ w + b) ** 2)
        gw, gb = rg.grad(loss, [w, b])
        step = rg.function([x], loss, updates={w: w - 0.5 * gw, b: b - 0.5 * gb}, backend=backend)
        losses = [float(step(xv)) for _ in range(5)]
        results[backend] = (losses, w.value(), b.value(), step)
    np.testing.assert_allclose(results["cpu"][0], results["reference"][0], rtol=1e-12)
    np.testing.assert_allclose(results["cpu"][1], results["reference"][1], rtol=1e-12)
    report = results["cpu"][3].memory_report(xv)
    assert report["inplace_updates"] == 2


def test_updates_are_simultaneous_even_when_values_swap():
    a = rg.variable(np.array([1.0, 2.0]), name="a")
    b = rg.variable(np.array([3.0, 4.0]), name="b")
    step = rg.function([], [a + 0.0, b + 0.0], updates={a: b, b: a}, backend="cpu")
    old_a, old_b = step()
    np.testing.assert_array_equal(old_a, [1.0, 2.0])
    np.testing.assert_array_equal(a.value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.value(), [1.0, 2.0])
    step()
    np.testing.assert_array_equal(a.value(), [1.0, 2.0])


def test_an_output_that_reads_a_variable_returns_its_value_before_the_update():
    w = rg.variable(np.array([1.0, 2.0, 3.0]), name="w")
    step = rg.function([], [w, w * 2.0], updates={w: w * 10.0}, backend="cpu")
    before, doubled = step()
    np.testing.assert_array_equal(before, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(doubled, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(w.value(), [10.0, 20.0, 30.0])


def test_update_read_after_its_new_value_is_computed_is_not_done_in_place():
    # The old w is needed by a later instruction (the matmul) after w's new value exists.
    w = rg.variable(np.eye(3), name="w")
    x = rg.input((3, 3), "float64", name="x")
    new_w = w * 0.5
    out = new_w.sum() * 0.0 + (x @ w).sum()   # new_w is computed first, the matmul reads w after it
    step = rg.function([x], out, updates={w: new_w}, backend="cpu")
    xv = np.arange(9.0).reshape(3, 3)
    order = [i.op for i in step.lower(xv).instrs]
    assert order.index("mul") < order.index("matmul")
    assert step.memory_report(xv)["deferred_updates"] == 1
    assert float(step(xv)) == xv.sum()
    np.testing.assert_array_equal(w.value(), np.eye(3) * 0.5)
    assert float(step(xv)) == xv.sum() * 0.5


def test_assign_between_calls_is_seen_by_the_compiled_step():
    w = rg.variable(np.zeros(3), name="w")
    step = rg.function([], w.sum(), updates={w: w + 1.0}, backend="cpu")
    assert float(step()) == 0.0
    w.assign(np.full(3, 5.0))
    assert float(step()) == 15.0
    np.testing.assert_array_equal(w.value(), [6.0, 6.0, 6.0])


def test_two_functions_share_a_variable():
    w = rg.variable(np.ones(2), name="w")
    inc = rg.function([], w.sum(), updates={w: w + 1.0}, backend="cpu")
    read = rg.function([], w * 1.0, backend="cpu")
    inc()
    inc()
    np.testing.assert_array_equal(read(), [3.0, 3.0])
