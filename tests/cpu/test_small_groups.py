"""Small fused groups run as numpy calls where a step has large work beside them (``cpu/small_groups.py``)."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.cpu import small_groups

BIG = (4096, 2048)  # large elementwise work: a step of milliseconds, whose budget takes a few small groups

UNARY = [("exp", rg.exp, np.exp), ("tanh", rg.tanh, np.tanh), ("neg", lambda a: -a, np.negative),
         ("sqrt", rg.sqrt, np.sqrt), ("abs", rg.abs, np.abs), ("expm1", rg.expm1, np.expm1),
         ("log1p", rg.log1p, np.log1p)]
BINARY = [("add", lambda a, b: a + b, np.add), ("sub", lambda a, b: a - b, np.subtract),
          ("mul", lambda a, b: a * b, np.multiply), ("div", lambda a, b: a / b, np.divide),
          ("max", rg.maximum, np.maximum)]
SMALL_SHAPES = [(), (1,), (7,), (3, 5), (64, 10), (0, 4)]
EDGES = np.array([0.0, -0.0, -1.5, 2.5, np.inf, -np.inf, np.nan, 1e-30, -88.0, 90.0], np.float32)


def _labels(exe):
    return [line.split("(")[0] for line in exe.describe().splitlines()]


def _random_chain(rng, x, y, depth):
    """A random elementwise chain of x and y: the graph, and its steps as numpy ufuncs."""
    g, steps = x, []
    for _ in range(depth):
        if rng.random() < 0.5:
            _, op, npf = UNARY[rng.integers(len(UNARY))]
            g = op(g)
            steps.append((npf, False))
        else:
            _, op, npf = BINARY[rng.integers(len(BINARY))]
            g = op(g, y)
            steps.append((npf, True))
    return g, steps


def _numpy_chain(steps, xv, yv):
    """The chain in float32, one ufunc at a time (what the split group runs)."""
    v = xv
    with np.errstate(all="ignore"):
        for f, binary in steps:
            v = f(v, yv) if binary else f(v)
    return np.asarray(v, np.float32)


def _values(rng, shape):
    v = rng.standard_normal(shape).astype(np.float32) * 2
    flat = v.reshape(-1)
    if flat.size:
        k = min(flat.size, EDGES.size)
        flat[rng.choice(flat.size, k, replace=False)] = rng.choice(EDGES, k, replace=False)
    return v


@pytest.mark.parametrize("seed", range(12))
def test_random_small_chains_beside_large_work_run_on_numpy_and_give_the_reference(seed):
    rng = np.random.default_rng(seed)
    shape = SMALL_SHAPES[seed % len(SMALL_SHAPES)]
    a, b = rg.input(BIG, name="a"), rg.input(BIG, name="b")
    x, y = rg.input(shape, name="x"), rg.input(shape, name="y")
    chain, steps = _random_chain(rng, x, y, int(rng.integers(2, 6)))
    av, bv = (rng.standard_normal(BIG).astype(np.float32) for _ in range(2))
    xv, yv = _values(rng, shape), _values(rng, shape)
    f = rg.function([a, b, x, y], [(rg.exp(a) * b).sum(), chain, chain.sum() * 0.5], backend="cpu")
    labels = _labels(f.compile(av, bv, xv, yv))
    assert [k for k in labels if k.startswith("fused[")] == ["fused[exp,mul,sum]"], labels  # the large one
    got = f(av, bv, xv, yv)
    want = _numpy_chain(steps, xv, yv)
    np.testing.assert_array_equal(got[1], want)  # each member is the ufunc it names, to the bit
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(got[2], want.astype(np.float64).sum() * 0.5, rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(got[0], (np.exp(av.astype(np.float64)) * bv).sum(), rtol=1e-4)
    reference = rg.function([x, y], [chain, chain.sum() * 0.5], backend="reference")(xv, yv)
    np.testing.assert_allclose(got[1], reference[0], rtol=1e-5, atol=1e-6)  # float32 steps against float64
    np.testing.assert_allclose(got[2], reference[1], rtol=1e-5, atol=1e-30)


def test_the_split_is_what_the_budget_allows(monkeypatch):
    t = rg.input((), name="t")
    scale = rg.sqrt(1.0 - rg.exp(t * -0.1)) * 2.0 + 1.0
    x = rg.input(BIG, name="x")
    args = (np.ones(BIG, np.float32), np.float32(3.0))
    monkeypatch.setattr(small_groups, "STEP_SHARE", 0.0)
    kept = rg.function([x, t], [rg.tanh(x), scale], backend="cpu")
    assert "fused[mul,exp,sub,sqrt,mul,add]" in _labels(kept.compile(*args))
    monkeypatch.undo()
    split = rg.function([x, t], [rg.tanh(x), scale], backend="cpu")
    assert "numpy.exp" in _labels(split.compile(*args))
    want = np.sqrt(1 - np.exp(-0.3)) * 2 + 1
    np.testing.assert_allclose(kept(*args)[1], want, rtol=1e-6)
    np.testing.assert_allclose(split(*args)[1], want, rtol=1e-6)


def test_a_step_of_small_work_keeps_its_kernels():
    # An MLP step of a few thousand values: numpy's calls would cost more than the whole step.
    x = rg.input((32, 8), name="x")
    w = rg.variable(np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32), name="w")
    loss = (rg.tanh(x @ w) * 2.0 - 1.0).sum()
    f = rg.function([x], loss, backend="cpu")
    labels = _labels(f.compile(np.ones((32, 8), np.float32)))
    assert any(k.startswith("fused[") for k in labels), labels
    assert not any(k.startswith("numpy.tanh") for k in labels), labels


def test_a_kernel_that_also_runs_on_a_large_array_stays_compiled_everywhere():
    # The same loop on 7 values and on a million: it is compiled for the large one anyway, so the
    # small instance keeps it rather than adding numpy calls.
    big, small = rg.input((BIG[0] * BIG[1],), name="big"), rg.input((7,), name="small")
    chain = lambda v: rg.exp(v * 0.5) * 3.0 - 1.0  # noqa: E731
    f = rg.function([big, small], [chain(big), chain(small)], backend="cpu")
    bv, sv = np.linspace(-2, 2, BIG[0] * BIG[1], dtype=np.float32), _values(np.random.default_rng(3), (7,))
    labels = _labels(f.compile(bv, sv))
    assert labels.count("fused[mul,exp,mul,sub]") == 2, labels
    with np.errstate(all="ignore"):
        want = np.exp(sv.astype(np.float64) * 0.5) * 3 - 1
    np.testing.assert_allclose(f(bv, sv)[1], want.astype(np.float32), rtol=2e-6)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_a_small_cast_runs_on_numpy_with_the_cores_float_to_int_rule(dtype):
    from rustyasg.core.backend_api import float_to_int

    xv = np.array([0.0, -0.0, 2.7, -2.7, 300.0, -1e10, 1e10, np.nan, np.inf, -np.inf, 127.5], np.float32)
    x = rg.input(xv.shape, name="x")
    f = rg.function([x], x.astype(dtype), backend="cpu")
    assert _labels(f.compile(xv)) == ["numpy.cast"]
    want = xv.astype(bool) if dtype == "bool" else float_to_int(xv, np.dtype(dtype))
    got = f(xv)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, rg.function([x], x.astype(dtype), backend="reference")(xv))


def test_numpy_steps_are_as_quiet_as_compiled_ones_and_leave_numpys_settings_alone():
    import warnings

    # log of a negative, division by zero, exp overflow: values (NaN, inf), not warnings, whether
    # a step runs numba's loop or numpy's ufunc.
    x = rg.input((4,), name="x")
    values = np.array([-1.0, 0.0, 1.0, 100.0], np.float32)
    alone = rg.function([x], rg.log(x), backend="cpu")
    chain = rg.function([x], rg.exp(x * 2.0) / x, backend="cpu")
    assert _labels(alone.compile(values)) == ["numpy.log"]
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got_log, got_chain = alone(values), chain(values)
    assert np.geterr() == before
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got_log, np.log(values))
        np.testing.assert_allclose(got_chain, (np.exp(values.astype(np.float64) * 2) / values).astype(np.float32),
                                   rtol=2e-6)
