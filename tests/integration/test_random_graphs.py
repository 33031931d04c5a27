"""Seeded random graphs of elementwise, reduction and broadcast ops: cpu and wgpu give the reference's answer.

Each case builds a random DAG over a few broadcast-compatible inputs holding NaN, +-inf, +-0,
negatives and ordinary values, with several outputs that share subexpressions, plus (for some)
its gradient and a Hessian-vector product. Fusion must accept every such graph (no cycle between
kernels) and every template must propagate NaN/inf as numpy does. Set ``RUSTYASG_RANDOM_GRAPHS``
to run more cases (``RUSTYASG_RANDOM_GRAPHS=500``).

One documented limit: Vulkan drivers compile WGSL with algebraic identities that hold only for
finite values (Mesa folds ``a - a`` and ``a + (-a)`` to 0 without float controls), so wgpu is
fed the same values without +-inf, and a binary op never gets the same operand twice.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import rustyasg.core as rg

SHAPES = [(), (3,), (2, 1), (1, 3), (2, 3)]
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.5, -2.0, 3.0], np.float32)
# Ops whose outputs are smooth where they are finite: safe anywhere in a chain.
SMOOTH_UNARY = ["neg", "abs", "relu", "exp", "tanh", "sigmoid", "square", "sqrt", "log", "rsqrt", "reciprocal",
                "gelu_tanh", "silu", "sin", "erf", "log1p", "expm1"]
# Ops that jump (a tiny rounding difference can flip them): only applied to inputs.
STEP_UNARY = ["sign", "floor", "ceil", "round"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]
COMPARE = ["greater", "less", "equal", "not_equal", "greater_equal", "less_equal"]
REDUCE = ["sum", "mean", "max", "min"]


def _values(rng, shape):
    v = rng.uniform(-2.0, 2.0, shape).astype(np.float32)
    flat = v.reshape(-1)
    for k in range(flat.size):
        if rng.random() < 0.3:
            flat[k] = rng.choice(SPECIAL)
    return v


def _unary(rng, name, x):
    if name in ("exp", "expm1"):
        x = rg.clamp(x, min=None, max=20.0)  # keep chains finite where numpy's are
    return getattr(rg, name)(x)


def build(seed: int):
    """(inputs, outputs, feeds) of one random graph."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 4))
    shapes = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in range(n_in)]
    inputs = [rg.input(s, "float32", name=f"x{k}") for k, s in enumerate(shapes)]
    feeds = [_values(rng, s) for s in shapes]
    pool = list(inputs)
    pool += [getattr(rg, str(rng.choice(STEP_UNARY)))(x) for x in inputs if rng.random() < 0.4]
    for _ in range(int(rng.integers(3, 9))):
        kind = rng.random()
        a = pool[int(rng.integers(len(pool)))]
        if kind < 0.35:
            pool.append(_unary(rng, str(rng.choice(SMOOTH_UNARY)), a))
        elif kind < 0.65:
            others = [t for t in pool if t is not a]
            b = others[int(rng.integers(len(others)))] if others else rg.constant(np.float32(0.5))
            pool.append(getattr(rg, str(rng.choice(BINARY)))(a, b))
        elif kind < 0.72:
            lo = float(rng.uniform(-1, 0))
            pool.append(rg.clamp(a, min=lo, max=lo + float(rng.uniform(0, 2))))
        elif kind < 0.78:
            pool.append(a ** float(rng.choice([0.0, 2.0, 3.0, -1.0, 0.5])))
        elif kind < 0.85:
            x, y = inputs[int(rng.integers(n_in))], inputs[int(rng.integers(n_in))]
            cond = getattr(rg, str(rng.choice(COMPARE)))(x, y)
            pool.append(rg.where(cond, a, pool[int(rng.integers(len(pool)))]))
        elif kind < 0.95 and a.ndim:
            axis = None if rng.random() < 0.3 else int(rng.integers(-a.ndim, a.ndim))
            pool.append(getattr(rg, str(rng.choice(REDUCE)))(a, axis=axis, keepdims=bool(rng.random() < 0.5)))
        else:
            pool.append(rg.broadcast_to(a, shape=np.broadcast_shapes(a.shape, (2, 3))))
    made = pool[n_in:] or [inputs[0] * 2.0]
    k = int(rng.integers(1, min(3, len(made)) + 1))
    outputs = [made[-1]] + [made[int(i)] for i in rng.choice(len(made), size=k - 1, replace=False)]
    return inputs, outputs, feeds


def with_derivatives(seed, inputs, outputs):
    """The outputs, the gradient of their sum and a Hessian-vector product (for graphs that have them)."""
    loss = rg.sum(outputs[0])
    for o in outputs[1:]:
        loss = loss + rg.sum(o)
    grads = rg.grad(loss, inputs)
    grads = [g if g is not None else rg.zeros_like(x) for g, x in zip(grads, inputs)]
    hv = rg.grad(sum((rg.sum(g * 0.5) for g in grads[1:]), rg.sum(grads[0] * 0.5)), inputs)
    return outputs + grads + [h for h in hv if h is not None]


def _compare(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN positions")
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"{what}: inf values")
    finite = np.isfinite(want)
    assert np.isfinite(got[finite]).all(), f"{what}: finite in the reference, not here"
    scale = 1.0 + np.abs(want[finite]).max(initial=0.0)
    np.testing.assert_allclose(got[finite], want[finite], rtol=2e-3, atol=2e-4 * scale, err_msg=what)


def check(seed: int, derivatives: bool, backends=("cpu", "wgpu")):
    inputs, outputs, feeds = build(seed)
    if derivatives:
        outputs = with_derivatives(seed, inputs, outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the reference's numpy warns on NaN/inf
        want = rg.function(inputs, outputs, backend="reference")(*feeds)
        finite_feeds = [np.where(np.isinf(v), np.float32(1e4) * np.sign(v), v) for v in feeds]
        want_finite = rg.function(inputs, outputs, backend="reference")(*finite_feeds)
    for backend in backends:
        if backend == "wgpu":  # see the module docstring
            feeds, want = finite_feeds, want_finite
        got = rg.function(inputs, outputs, backend=backend)(*feeds)
        for k, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"seed {seed}, {backend}, output {k} of {len(want)}")


CASES = int(os.environ.get("RUSTYASG_RANDOM_GRAPHS", "24"))


@pytest.mark.parametrize("seed", range(CASES))
def test_random_graph_values_match_reference(seed):
    check(seed, derivatives=False)


@pytest.mark.parametrize("seed", range(1000, 1000 + CASES // 2))
def test_random_graph_gradients_and_hvp_match_reference(seed):
    check(seed, derivatives=True)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(4))
def test_many_random_graphs_on_cpu(chunk):
    for seed in range(10_000 + 50 * chunk, 10_050 + 50 * chunk):
        check(seed, derivatives=seed % 2 == 0, backends=("cpu",))
