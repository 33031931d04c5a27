"""Compilation: signature cache, per-step scalars as inputs, passes, persistent state, updates."""

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.passes import cse, dce, constant_fold, simplify
from rustyasg.core.program import lower


def test_cache_by_signature_and_lr_input_does_not_recompile():
    x = rg.input(("B", 3), "float32", name="x")
    lr = rg.input((), "float32", name="lr")
    w = rg.variable(np.ones((3,), np.float32), name="w")
    loss = ((x * w).sum(axis=1) ** 2).mean()
    (g,) = rg.grad(loss, [w])
    step = rg.function([x, lr], loss, updates={w: w - lr * g}, backend="reference")
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((5, 3)).astype(np.float32)
    for lr_value in (0.1, 0.05, 0.01, 0.001):
        step(xb, lr_value)
    assert step.stats["compiles"] == 1
    step(rng.standard_normal((7, 3)).astype(np.float32), 0.1)   # new batch size: one more compile
    assert step.stats["compiles"] == 2
    step(xb, 0.3)
    assert step.stats["compiles"] == 2


def test_training_step_matches_numpy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 3))
    y = rng.standard_normal((8,))
    w0 = rng.standard_normal(3)
    x_in, y_in = rg.input(("B", 3), "float64", name="x"), rg.input(("B",), "float64", name="y")
    w = rg.variable(w0.copy(), name="w")
    loss = rg.mean((x_in @ w - y_in) ** 2)
    (g,) = rg.grad(loss, [w])
    step = rg.function([x_in, y_in], loss, updates={w: w - 0.1 * g}, backend="reference")
    wn = w0.copy()
    for _ in range(5):
        got = step(X, y)
        want = np.mean((X @ wn - y) ** 2)
        wn = wn - 0.1 * (2 / 8) * X.T @ (X @ wn - y)
        assert np.isclose(got, want)
    np.testing.assert_allclose(w.value(), wn, rtol=1e-12)


def test_updates_are_simultaneous():
    a = rg.variable(np.array(1.0), name="a")
    b = rg.variable(np.array(2.0), name="b")
    swap = rg.function([], [], updates={a: b, b: a}, backend="reference")
    swap()
    assert a.value() == 2.0 and b.value() == 1.0


def test_assign_from_host_is_seen_by_next_call():
    v = rg.variable(np.zeros(2), name="v")
    f = rg.function([], v * 2, backend="reference")
    np.testing.assert_array_equal(f(), [0, 0])
    v.assign([1.0, 2.0])
    np.testing.assert_array_equal(f(), [2, 4])
    with pytest.raises(ValueError, match="cannot assign shape"):
        v.assign(np.zeros(3))


def _program(outputs, inputs, sig):
    return lower(inputs, outputs, [], sig)


def test_cse_merges_duplicates_and_dce_drops_dead_code():
    x = rg.input((4,), "float32", name="x")
    a = rg.exp(x) + rg.exp(x)
    rg.sin(x)  # dead
    p = _program([a], [x], [((4,), np.float32)])
    p = dce(cse(p))
    ops = [i.op for i in p.instrs]
    assert ops.count("exp") == 1 and "sin" not in ops


def test_constant_folding_and_simplify():
    x = rg.input((3,), "float32", name="x")
    c = rg.constant(np.array([1.0, 2.0, 3.0], np.float32))
    y = (x * (c * 0.0 + 1.0)) + 0.0
    p = _program([y], [x], [((3,), np.float32)])
    p = dce(simplify(constant_fold(p)))
    assert [i.op for i in p.instrs] == ["input"]
    assert p.outputs == [p.inputs[0]]
    f = rg.function([x], y, backend="reference")
    np.testing.assert_array_equal(f(np.array([1, 2, 3], np.float32)), [1, 2, 3])


def test_transpose_pairs_cancel_and_square_rewrite():
    x = rg.input((2, 3), "float32", name="x")
    p = _program([(x.T.T) ** 2], [x], [((2, 3), np.float32)])
    p = dce(simplify(p))
    assert [i.op for i in p.instrs] == ["input", "square"]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_stop_gradient_leaves_the_differentiated_program(backend):
    # The gradient is built before lowering, so in the program stop_gradient is an identity: a kept
    # one was a copy of its whole operand wherever it joined a fused group.
    x = rg.input((4, 5), "float32", name="x")
    wv = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    w = rg.variable(wv, name="w")
    loss = (rg.stop_gradient(x * w) * w).sum() + rg.stop_gradient(x).mean()
    (gw,) = rg.grad(loss, [w])
    p = dce(simplify(_program([loss, gw], [x], [((4, 5), np.float32)])))
    assert "stop_gradient" not in [i.op for i in p.instrs]
    xv = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    xv[0, :2] = [np.inf, np.nan]
    got = rg.function([x], [loss, gw], backend=backend)(xv)
    x64, w64 = xv.astype(np.float64), wv.astype(np.float64)
    np.testing.assert_allclose(got[1], x64 * w64, rtol=1e-6)  # only the outer w carries a gradient
    np.testing.assert_allclose(got[0], (x64 * w64 * w64).sum() + x64.mean(), rtol=1e-5)


def test_dim_size_folds_to_a_constant_once_shapes_are_known():
    x = rg.input(("B", 4), "float32", name="x")
    f = rg.function([x], rg.mean(x), backend="reference")
    prog = f.lower(np.zeros((6, 4), np.float32))
    assert "dim_size" not in [i.op for i in prog.instrs]


def test_program_dump_is_readable():
    x = rg.input((2,), "float32", name="x")
    f = rg.function([x], rg.exp(x) * 2.0, backend="reference")
    text = f.lower(np.zeros(2, np.float32)).dump()
    assert "exp(%" in text and "outputs:" in text


def test_jit_traces_once_per_rank_and_keeps_batch_symbolic():
    calls = []

    @rg.jit(backend="reference")
    def f(x):
        calls.append(1)
        return (x * 2.0).sum(axis=0)

    np.testing.assert_allclose(f(np.ones((3, 2))), [6, 6])
    np.testing.assert_allclose(f(np.ones((5, 2))), [10, 10])
    assert len(calls) == 1


def test_transpose_of_matmul_is_computed_in_place_layout():
    rng = np.random.default_rng(5)
    xv, gv = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    x, g = rg.input((6, 4), "float64", name="x"), rg.input((6, 3), "float64", name="g")
    y = (x.T @ g).T   # the weight-gradient shape of x @ W.T
    p = dce(simplify(simplify(_program([y], [x, g], [((6, 4), np.float64), ((6, 3), np.float64)]))))
    by_id = p.by_id()
    out = by_id[p.outputs[0]]
    assert out.op == "matmul"   # no transpose after the product: g.T @ x directly
    assert [by_id[i].op for i in out.inputs] == ["transpose", "input"]
    assert [i.op for i in p.instrs].count("transpose") == 1
    f = rg.function([x, g], y, backend="reference")
    np.testing.assert_allclose(f(xv, gv), gv.T @ xv)


@pytest.mark.parametrize("a_shape,b_shape", [((6, 1), (1, 5)), ((3, 4, 1), (1, 2)), ((1, 1), (2, 1, 7)),
                                             ((0, 1), (1, 3)), ((2, 3, 1), (2, 1, 1))])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_matmul_over_an_inner_dimension_of_one_is_the_broadcast_product(a_shape, b_shape, backend):
    rng = np.random.default_rng(7)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -3.5, 1e-30], np.float32)
    av, bv = (rng.standard_normal(s).astype(np.float32) for s in (a_shape, b_shape))
    av.flat[: min(av.size, specials.size)] = specials[: av.size]
    bv.flat[::2] = np.inf
    a, b = rg.input(a_shape, "float32", name="a"), rg.input(b_shape, "float32", name="b")
    f = rg.function([a, b], a @ b, backend=backend)
    assert "matmul" not in [i.op for i in f.lower(av, bv).instrs]
    want = np.matmul(av.astype(np.float64), bv.astype(np.float64))
    np.testing.assert_array_equal(f(av, bv), want.astype(np.float32))  # one product each: exact, inf*0 = NaN too


def test_a_matmul_with_a_longer_inner_dimension_stays_a_matmul():
    a, b = rg.input((3, 2), "float32", name="a"), rg.input((2, 4), "float32", name="b")
    p = dce(simplify(_program([a @ b], [a, b], [((3, 2), np.float32), ((2, 4), np.float32)])))
    assert [i.op for i in p.instrs if i.op != "input"] == ["matmul"]


def _split_sum(parts, axis, shape, seed, names=("a", "b", "c", "d")):
    """Gradient of ``sum(w * concat-free pieces of x)``: one slice per (start, stop) in ``parts``."""
    rng = np.random.default_rng(seed)
    x = rg.input(shape, "float64", name="x")
    loss = 0.0
    weights = []
    for k, (lo, hi) in enumerate(parts):
        idx = tuple(slice(lo, hi) if d == axis % len(shape) else slice(None) for d in range(len(shape)))
        w = rng.standard_normal(x[idx].shape)
        weights.append((idx, w))
        loss = loss + rg.sum(rg.sin(x[idx]) * rg.constant(w))
    (gx,) = rg.grad(loss, [x])
    xv = rng.standard_normal(shape)
    want = np.zeros(shape)
    for idx, w in weights:
        want[idx] += np.cos(xv[idx]) * w
    return x, gx, xv, want


@pytest.mark.parametrize("parts,axis,shape", [
    ([(0, 4), (4, 8), (8, 12)], -1, (3, 5, 12)),          # q, k, v of a fused projection: one concat
    ([(2, 3), (3, 6)], 0, (7, 4)),                         # adjacent but not covering: concat, then padded
    ([(4, 8), (0, 4), (8, 12)], 1, (2, 12, 3)),            # summed out of order
])
def test_slice_gradients_of_adjacent_ranges_become_one_concat(parts, axis, shape):
    x, gx, xv, want = _split_sum(parts, axis, shape, seed=len(parts))
    p = dce(simplify(_program([gx], [x], [(shape, np.float64)])))
    ops = [i.op for i in p.instrs]
    assert ops.count("concat") == 1 and ops.count("slice_grad") == (0 if parts[0][0] in (0, 4) else 1), ops
    for backend in ("reference", "cpu"):
        np.testing.assert_allclose(rg.function([x], gx, backend=backend)(xv), want, rtol=1e-12, atol=1e-12)


def test_slice_gradients_that_overlap_or_leave_gaps_stay_as_they_are():
    for parts in ([(0, 4), (3, 8)], [(0, 3), (5, 8)]):
        x, gx, xv, want = _split_sum(parts, 1, (2, 8), seed=7)
        p = dce(simplify(_program([gx], [x], [((2, 8), np.float64)])))
        assert [i.op for i in p.instrs].count("concat") == 0
        np.testing.assert_allclose(rg.function([x], gx, backend="cpu")(xv), want, rtol=1e-12, atol=1e-12)
