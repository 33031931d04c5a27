"""The ``hoist_reshapes`` pass: a reshape moves ahead of the elementwise ops it follows, so a linear
layer's bias add meets the residual add or the activation after it; values never change."""

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.passes import dce, hoist_reshapes
from rustyasg.core.program import lower

SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -2.5, 1e-30, 3e4])


def _values(rng, shape, dtype=np.float32):
    v = rng.standard_normal(shape)
    v.flat[: min(v.size, SPECIALS.size)] = SPECIALS[: v.size]
    return v.astype(dtype)


def _fused_ops(f, *args):
    """The op names of each fused group of the cpu plan."""
    program = f.lower(*args)
    by_id = program.by_id()
    return [[by_id[m].op for m in u.members] for u in program.plan.groups if len(u.members) > 1]


def _ops(outputs, inputs, shapes):
    p = dce(hoist_reshapes(lower(inputs, outputs, [], [(s, np.float32) for s in shapes])))
    return [i.op for i in p.instrs if i.op != "input"]


def test_a_bias_add_fuses_with_the_residual_add_after_the_reshape():
    rng = np.random.default_rng(0)
    x, w, b = rg.input((2, 5, 4), name="x"), rg.input((4, 4), name="w"), rg.input((4,), name="b")
    y = (x.reshape((10, 4)) @ w + b).reshape((2, 5, 4)) + x
    xv, wv, bv = _values(rng, (2, 5, 4)), rng.standard_normal((4, 4)).astype(np.float32), _values(rng, (4,))
    f = rg.function([x, w, b], y, backend="cpu")
    assert ["add", "add"] in _fused_ops(f, xv, wv, bv)
    x64 = xv.astype(np.float64)
    want = ((x64.reshape(10, 4) @ wv + bv).reshape(2, 5, 4) + x64).astype(np.float32)
    np.testing.assert_allclose(f(xv, wv, bv), want, rtol=1e-6, atol=1e-6)
    assert np.array_equal(np.isnan(f(xv, wv, bv)), np.isnan(want))


def test_a_bias_add_fuses_with_the_activation_whose_gradient_also_reads_it():
    # GPT's MLP: the pre-activation is read by gelu and by gelu's gradient, both in (B, T, C)
    rng = np.random.default_rng(1)
    x, w, b = rg.input((3, 4, 6), "float64", name="x"), rg.input((6, 8), "float64", name="w"), \
        rg.input((8,), "float64", name="b")
    h = rg.gelu_tanh((x.reshape((12, 6)) @ w + b).reshape((3, 4, 8)))
    loss = rg.sum(h * h)
    grads = rg.grad(loss, [x, w, b])
    args = [_values(rng, (3, 4, 6), np.float64), rng.standard_normal((6, 8)), _values(rng, (8,), np.float64)]
    args[0][np.isnan(args[0]) | np.isinf(args[0])] = 0.5   # finite, for the gradient comparison
    args[2][np.isnan(args[2]) | np.isinf(args[2])] = -1.5
    f = rg.function([x, w, b], [loss, *grads], backend="cpu")
    # on the cpu the activation is its gate (cpu_gelu_gate: the gradient reads it) times the pre-activation
    assert any(ops[:3] == ["add", "cpu.gelu_tanh_gate", "mul"] for ops in _fused_ops(f, *args))
    kept = rg.function([x, w, b], [loss, *grads], backend="cpu", disabled_passes=("hoist_reshapes",))
    reference = rg.function([x, w, b], [loss, *grads], backend="reference")
    for got, before, want in zip(f(*args), kept(*args), reference(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(before, want, rtol=1e-12, atol=1e-12)


def test_a_reshape_stays_where_moving_it_would_split_a_fused_pair():
    # the cross-entropy's mask: not_equal is read by the where and by a cast; moving the where
    # into the reshaped shape would leave not_equal behind in the old one
    t = rg.input((12,), name="t")
    mask = rg.not_equal(t, 3.0)
    picked = rg.where(mask, t, 0.0).reshape((12, 1)) * 2.0
    ops = _ops([picked, rg.sum(mask.astype("float32"))], [t], [(12,)])
    assert ops.index("where") < ops.index("reshape")


def test_a_reshape_that_feeds_no_elementwise_op_stays_in_place():
    x, w = rg.input((6, 4), name="x"), rg.input((2, 4, 3), name="w")
    ops = _ops([rg.tanh(x).reshape((2, 3, 4)) @ w], [x, w], [(6, 4), (2, 4, 3)])
    assert ops.index("tanh") < ops.index("reshape")


@pytest.mark.parametrize("source,operand_shape,target,moves", [
    ((6, 4), (1, 4), (2, 3, 4), True),         # a bias: its axis survives the reshape
    ((6, 4), (), (3, 2, 4), True),             # a scalar
    ((6, 4), (6, 1), (2, 3, 4), False),        # a column over the rows the reshape splits
    ((2, 3, 4), (3, 1), (6, 4), False),        # over axes it merges
    ((2, 3, 2, 4), (1, 3, 1, 4), (6, 8), False),  # over axes it merges, and more axes than the result
    ((1, 2, 3, 4), (1, 1, 1, 4), (6, 4), False),  # more axes than the result, even if only leading 1s
])
def test_an_operand_moves_along_only_if_it_broadcasts_the_same_way_after_the_reshape(source, operand_shape,
                                                                                   target, moves):
    rng = np.random.default_rng(2)
    x, c = rg.input(source, name="x"), rg.input(operand_shape, name="c")
    y = (x + c).reshape(target) * 3.0
    ops = _ops([y], [x, c], [source, operand_shape])
    assert (ops.index("add") > ops.index("reshape")) == moves, ops
    xv, cv = _values(rng, source), _values(rng, operand_shape)
    want = ((xv.astype(np.float64) + cv).reshape(target) * 3.0).astype(np.float32)
    np.testing.assert_allclose(rg.function([x, c], y, backend="cpu")(xv, cv), want, rtol=1e-6, atol=1e-30)


UNARY = [rg.tanh, rg.exp, rg.relu, rg.sigmoid, lambda v: v * v]
BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, rg.maximum]


def _random_chain(rng):
    """A recipe: ops before a reshape that keeps the last axis (on the input, a bias or a scalar,
    some values also summed elsewhere) and ops after it (with a full-shape operand)."""
    before = [(int(rng.integers(3)), int(rng.integers(5)), rng.random() < 0.3) for _ in range(rng.integers(1, 4))]
    after = [(rng.random() < 0.5, int(rng.integers(5))) for _ in range(rng.integers(1, 3))]
    return before, after


def _build(recipe, x, y, bias, target):
    before, after = recipe
    h, shared = x, []
    for kind, k, read_twice in before:
        h = UNARY[k](h) if kind == 0 else BINARY[k % len(BINARY)](h, bias if kind == 1 else 0.5)
        if read_twice:
            shared.append(rg.sum(h))
    h = h.reshape(target)
    for binary, k in after:
        h = BINARY[k % len(BINARY)](h, y) if binary else UNARY[k](h)
    return [h, *shared]


@pytest.mark.parametrize("seed", range(12))
def test_random_chains_of_elementwise_ops_and_reshapes_give_the_same_values(seed):
    """Random chains around a reshape, against float64 and with the pass turned off."""
    rng = np.random.default_rng(100 + seed)
    a, b, c = (int(v) for v in rng.integers(1, 5, 3))
    shapes = {"x": (a * b, c), "y": (a, b, c), "bias": (c,)}
    values = [_values(rng, s) for s in shapes.values()]
    recipe = _random_chain(rng)

    def function(dtype, **kw):
        inputs = [rg.input(s, dtype, name=n) for n, s in shapes.items()]
        return rg.function(inputs, _build(recipe, *inputs, (a, b, c)), **kw)

    want = function("float64", backend="reference")(*(v.astype(np.float64) for v in values))
    got = function("float32", backend="cpu")(*values)
    before = function("float32", backend="cpu", disabled_passes=("hoist_reshapes",))(*values)
    for g, bf, w in zip(got, before, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(bf, w, rtol=2e-5, atol=1e-6)
