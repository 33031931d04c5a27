"""Fusion: fused groups compute exactly what the unfused program computes (and the reference)."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core import OPS
from rustyasg.core.plugins import load_kernels
from rustyasg.cpu.kernels.protocol import Elementwise
from rustyasg.core.observe import Observer
from rustyasg.cpu import cache

TABLE = load_kernels("cpu")


def _takes_float(op: str) -> bool:
    """Whether the op's own type rule accepts a float tensor (bitwise ops, for one, refuse it)."""
    attrs = OPS[op].examples[0].attrs if OPS[op].examples else {}
    try:
        rg.apply(op, rg.input((2,), "float32"), **attrs)
    except rg.DTypeError:
        return False
    return True


UNARY_FLOAT = sorted(n for n, k in TABLE.items() if isinstance(k, Elementwise) and n in OPS and OPS[n].num_inputs == 1
                     and OPS[n].kind == "elementwise" and _takes_float(n)
                     and n not in ("logical_not", "isnan", "cast", "sign", "floor", "ceil", "round"))
BINARY_FLOAT = ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "mod", "floor_divide"]
DOMAIN = {"log": (0.2, 2.0), "log1p": (0.2, 2.0), "sqrt": (0.2, 2.0), "rsqrt": (0.2, 2.0), "reciprocal": (0.2, 2.0)}


def _chain(x, ops):
    """Every unary op applied to x and summed with its neighbour: one long elementwise chain."""
    acc = None
    for op in ops:
        lo, hi = DOMAIN.get(op, (None, None))
        arg = rg.clamp(x, min=lo, max=hi) if lo is not None else x
        y = getattr(rg, op)(arg) if op not in ("leaky_relu", "elu", "softplus", "clamp") else \
            rg.apply(op, arg, **OPS[op].examples[0].attrs)
        acc = y if acc is None else acc * 0.5 + y
    return acc


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_unary_op_in_one_fused_kernel_matches_unfused_and_reference(dtype, rng):
    x = rg.input((6, 7), dtype, name="x")
    out = _chain(x, UNARY_FLOAT)
    xv = rng.uniform(-2, 2, (6, 7)).astype(dtype)
    fused = rg.function([x], out, backend="cpu")
    plain = rg.function([x], out, backend="cpu", disabled_passes=("cpu_fusion",))
    ref = rg.function([x], out, backend="reference")
    groups = fused.lower(xv).plan.groups
    assert len(groups) == 1 and len(groups[0].members) > 2 * len(UNARY_FLOAT)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(fused(xv), ref(xv), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(plain(xv), ref(xv), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_ops_with_broadcasting_fuse_and_agree(dtype, rng):
    a = rg.input((4, 5, 6), dtype, name="a")
    b = rg.input((5, 1), dtype, name="b")
    c = rg.input((), dtype, name="c")
    acc = a
    for op in BINARY_FLOAT:
        rhs = rg.abs(b) + 0.5 if op in ("div", "mod", "floor_divide", "pow") else b
        lhs = rg.abs(acc) + 0.5 if op == "pow" else acc
        acc = getattr(rg, op)(lhs, rhs) * c + acc * 0.25
    av, bv = rng.uniform(-1, 1, (4, 5, 6)).astype(dtype), rng.uniform(-1, 1, (5, 1)).astype(dtype)
    cv = np.asarray(0.7, dtype)
    fused = rg.function([a, b, c], acc, backend="cpu")
    ref = rg.function([a, b, c], acc, backend="reference")
    assert fused.compile(av, bv, cv).memory_report()["fused_groups"] >= 1
    rtol = 1e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(fused(av, bv, cv), ref(av, bv, cv), rtol=rtol, atol=rtol)


def test_predicates_where_and_casts_fuse(rng):
    x = rg.input((3, 8), "float32", name="x")
    i = rg.input((8,), "int64", name="i")
    mask = rg.logical_and(x > 0.1, rg.logical_not(rg.isnan(x)))
    y = rg.where(mask, rg.floor(x * 3.0) + i.astype("float32"), rg.sign(x) * rg.round(x * 5.0))
    z = rg.where(rg.logical_or(x < -0.5, mask), y, rg.ceil(x)).astype("int64") + i
    xv = rng.uniform(-1, 1, (3, 8)).astype(np.float32)
    iv = rng.integers(-4, 4, 8)
    fused = rg.function([x, i], z, backend="cpu")
    assert fused.compile(xv, iv).memory_report()["fused_groups"] == 1
    np.testing.assert_array_equal(fused(xv, iv), rg.function([x, i], z, backend="reference")(xv, iv))


@pytest.mark.parametrize("axis,keepdims", [(None, False), ((1,), True), ((0, 2), False), ((2,), False),
                                           ((0,), False)])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reductions_fused_into_their_producer(op, axis, keepdims, rng):
    x = rg.input((5, 4, 6), "float64", name="x")
    y = rg.input((4, 6), "float64", name="y")
    e = rg.tanh(x * y) + y
    r = getattr(rg, op)(e, axis=axis, keepdims=keepdims)
    xv, yv = rng.standard_normal((5, 4, 6)), rng.standard_normal((4, 6))
    fused, plain = rg.function([x, y], [r, e], backend="cpu"), rg.function([x, y], [r, e], backend="reference")
    (group,) = fused.lower(xv, yv).plan.groups
    members = group.members
    assert op in [fused.lower(xv, yv).by_id()[m].op for m in members]
    for got, want in zip(fused(xv, yv), plain(xv, yv)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_bias_gradient_sum_to_is_fused_with_the_elementwise_gradient(rng):
    x = rg.input((32, 16), "float32", name="x")
    b = rg.variable(rng.standard_normal(16).astype(np.float32), name="b")
    loss = rg.mean(rg.tanh(x + b) ** 2)
    (gb,) = rg.grad(loss, [b])
    xv = rng.standard_normal((32, 16)).astype(np.float32)
    f = rg.function([x], gb, backend="cpu")
    ops = {f.lower(xv).by_id()[m].op for g in f.lower(xv).plan.groups for m in g.members}
    assert "sum_to" in ops
    np.testing.assert_allclose(f(xv), rg.function([x], gb, backend="reference")(xv), rtol=1e-4, atol=1e-6)


def test_groups_stay_convex_around_a_matmul(rng):
    # e feeds both the matmul and the final add: fusing e with the add would need the matmul inside the group.
    x = rg.input((8, 8), "float64", name="x")
    e = rg.exp(x * 0.1)
    out = rg.sigmoid(e @ x) + e
    xv = rng.standard_normal((8, 8))
    f = rg.function([x], out, backend="cpu")
    np.testing.assert_allclose(f(xv), rg.function([x], out, backend="reference")(xv), rtol=1e-12)


def test_one_generated_kernel_serves_every_batch_size(rng):
    x = rg.input(("B", 3, 5), "float32", name="x")
    b = rg.input((5,), "float32", name="b")
    f = rg.function([x, b], rg.gelu(x + b) * 2.0, backend="cpu")
    kernels = set()
    for n in (1, 7, 64):
        exe = f.compile(rng.standard_normal((n, 3, 5)).astype(np.float32), np.zeros(5, np.float32))
        kernels.update(exe.generated_kernels())
        xv = rng.standard_normal((n, 3, 5)).astype(np.float32)
        bv = rng.standard_normal(5).astype(np.float32)
        want = rg.function([x, b], rg.gelu(x + b) * 2.0, backend="reference")(xv, bv)
        np.testing.assert_allclose(f(xv, bv), want, rtol=1e-5, atol=1e-6)
    assert len(kernels) == 1


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 64), (64,), (32, 64), (3, 1, 5)])
def test_an_update_of_one_element_is_the_same_kernel_as_of_many(shape, rng):
    """``p - lr * g`` with a scalar ``lr``: a one-element loop reads the scalar once as a larger one
    does, and takes the same ``(lo, hi)``, so an optimizer's 1-element bias shares its weights' kernel."""
    lr = rg.input((), "float32", name="lr")
    p, g = rg.input(shape, "float32", name="p"), rg.input(shape, "float32", name="g")
    q, h = rg.input((4096,), "float32", name="q"), rg.input((4096,), "float32", name="h")
    f = rg.function([lr, p, g, q, h], [p - lr * g, q - lr * h], backend="cpu")
    args = [np.float32(0.1), *(rng.standard_normal(s).astype(np.float32) for s in (shape, shape, 4096, 4096))]
    args[1].reshape(-1)[0] = np.nan
    assert len(set(f.compile(*args).generated_kernels())) == 1
    want = rg.function([lr, p, g, q, h], [p - lr * g, q - lr * h], backend="reference")(*args)
    for got, ref in zip(f(*args), want):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)  # a fused multiply-add: within an ulp


def test_a_group_of_scalars_calls_libm_and_a_loop_the_vectorized_helpers():
    # Float32 helpers (exp32, expm1_32 ...) vectorize long loops; a 0-d group (an optimizer's bias
    # corrections) calls math's functions instead, and compiles no helper.
    t = rg.input((), "float32", name="t")
    v = rg.input((64,), "float32", name="v")
    scalar = rg.sqrt(-rg.expm1(t * -0.001)) / (1.0 + rg.exp(t * -0.1))
    f = rg.function([t, v], [scalar, rg.exp(v * 0.5) * 3.0], backend="cpu")
    exe = f.compile(np.float32(3.0), np.zeros(64, np.float32))
    bodies = [g.code.source.split("def kernel")[1] for g in exe._groups]
    (scalar_body,) = [b for b in bodies if "expm1" in b]
    (loop_body,) = [b for b in bodies if "expm1" not in b]
    assert "math.expm1(" in scalar_body and "math.exp(" in scalar_body and "exp32(" not in scalar_body
    assert "exp32(" in loop_body
    for tv in (np.float32(0.0), np.float32(3.0), np.float32(1e-3), np.float32(-2.0), np.float32(np.inf),
               np.float32(np.nan)):
        vv = np.linspace(-180, 180, 64, dtype=np.float32)
        got = f(tv, vv)
        with np.errstate(all="ignore"):
            t64 = np.float64(tv)
            want = np.sqrt(-np.expm1(t64 * -0.001)) / (1.0 + np.exp(t64 * -0.1))
            want_v = (np.exp(vv.astype(np.float64) * 0.5) * 3.0).astype(np.float32)  # inf past float32
        np.testing.assert_allclose(got[0], np.float32(want), rtol=2e-6)
        np.testing.assert_allclose(got[1], want_v, rtol=3e-6)


def test_generated_source_is_written_to_the_cache_dir():
    x = rg.input((4,), "float64", name="x")
    f = rg.function([x], rg.erf(x) * rg.silu(x), backend="cpu")
    f(np.linspace(-1, 1, 4))
    files = list(cache.kernel_dir().glob("fused_*.py"))
    assert files and all("from rustyasg.cpu.jit import" in p.read_text() for p in files)


def test_several_reductions_over_different_axes_share_one_loop(rng):
    # One reduction keeps the outer axis and runs along the middle one, another runs along the
    # outer axis: the kernel cannot be split by rows, and each output is still initialised once.
    x = rg.input((5, 4, 6), "float64", name="x")
    e = rg.sin(x) * x
    outs = [rg.sum(e, axis=1), rg.max(e, axis=0), rg.mean(e, axis=(0, 2), keepdims=True), rg.min(e, axis=2)]
    xv = rng.standard_normal((5, 4, 6))
    f = rg.function([x], outs, backend="cpu")
    (group,) = f.lower(xv).plan.groups
    members = group.members
    assert len(members) == 6
    for got, want in zip(f(xv), rg.function([x], outs, backend="reference")(xv)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("axis", [(0, 2), (1,)])
def test_a_mean_scales_its_sums_with_loops_not_an_array_expression(axis, rng):
    # numba compiles `r[:] = r[:] * s` through its array-expression machinery: ~2 s for a
    # batch-norm mean whose loops alone compile in 0.15 s. The scaling is an explicit loop.
    x = rg.input((5, 4, 6), "float32", name="x")
    m = rg.mean(rg.exp(x), axis=axis)
    xv = rng.standard_normal((5, 4, 6)).astype(np.float32)
    f = rg.function([x], m, backend="cpu")
    (kernel,) = f.compile(xv).generated_kernels()
    source = open(kernel.py_func.__code__.co_filename, encoding="utf-8").read()
    assert "[:] * " not in source and "* np.float32(1.0 / (" in source
    np.testing.assert_allclose(f(xv), np.exp(xv.astype(np.float64)).mean(axis=axis), rtol=1e-6)


class _Labels(Observer):
    """An observer keeping the label of every step an executable runs."""

    def __init__(self):
        self.seen = []

    def wrap_steps(self, exe, steps, infos):
        self.seen += [i.label.split("(")[0] for i in infos]
        return steps


@pytest.mark.parametrize("op,axis", [("sum", 1), ("mean", None), ("max", 0), ("min", -1), ("sum_to", None)])
@pytest.mark.parametrize("rows", [3, 64, 300])
def test_a_reduction_alone_takes_numpys_reduce_up_to_the_small_size_and_a_generated_loop_above(op, axis, rows, rng):
    """A cold start compiles no numba loop for a small reduction; every size gives the reference's answer."""
    from rustyasg.core.observe import observing

    shape = (rows, 40)
    x = rg.input(shape, "float32", name="x")
    r = rg.apply("sum_to", x, shape=(40,)) if op == "sum_to" else getattr(rg, op)(x, axis=axis)
    xv = rng.standard_normal(shape).astype(np.float32)
    xv[0, :4] = [np.inf, -np.inf, np.nan, -0.0]   # NaN and inf propagate as numpy's reduce does
    xv[1, 5:8] = [np.inf, np.inf, -np.inf]
    labels = _Labels()
    with observing(labels):
        got = rg.function([x], r, backend="cpu")(xv)
    small = rows < 100   # a classifier's row sums and bias gradient (2,560 elements) vs 12,000
    assert any(s.startswith("numpy." if small else "numba.") for s in labels.seen), (labels.seen, xv.size)
    x64 = xv.astype(np.float64)
    ref = {"sum": lambda a: a.sum(axis=axis), "mean": lambda a: a.mean(axis=axis), "max": lambda a: a.max(axis=axis),
           "min": lambda a: a.min(axis=axis), "sum_to": lambda a: a.sum(axis=0)}[op](x64)
    np.testing.assert_allclose(got, ref.astype(np.float32), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("rows", [3, 64, 300])
@pytest.mark.parametrize("cond_shape", ["full", "row", "scalar"])
def test_a_where_alone_is_numpys_copy_up_to_the_small_size_and_a_generated_loop_above(rows, cond_shape, rng):
    from rustyasg.core.observe import observing

    shape = (rows, 40)
    c_shape = {"full": shape, "row": (40,), "scalar": ()}[cond_shape]
    c, x = rg.input(c_shape, "bool", name="c"), rg.input(shape, "float32", name="x")
    y = rg.input((40,), "float32", name="y")
    cv, xv, yv = rng.random(c_shape) < 0.5, rng.standard_normal(shape).astype(np.float32), \
        rng.standard_normal(40).astype(np.float32)
    xv[0, :3], yv[:3] = [np.nan, np.inf, -0.0], [-np.inf, np.nan, 0.0]
    labels = _Labels()
    with observing(labels):
        got = rg.function([c, x, y], rg.where(c, x, y), backend="cpu")(cv, xv, yv)
    assert ("numpy.where" in labels.seen) == (rows < 100), labels.seen
    np.testing.assert_array_equal(got, np.where(cv, xv, yv))
    assert np.array_equal(np.signbit(got), np.signbit(np.where(cv, xv, yv)))


@pytest.mark.parametrize("rows", [4, 64, 300])
@pytest.mark.parametrize("op,axis", [("softmax", -1), ("log_softmax", -1), ("log_softmax", 0), ("softmax", 0)])
def test_a_small_softmax_alone_is_numpys_and_every_size_gives_the_reference(op, axis, rows, rng):
    """A classifier's log_softmax (64 x 10) compiles no numba loop; rows with NaN and infinities give NaN
    on both paths, like the float64 reference."""
    from rustyasg.core.observe import observing

    shape = (rows, 40)
    x = rg.input(shape, "float32", name="x")
    xv = (3 * rng.standard_normal(shape)).astype(np.float32)
    xv[0, 3], xv[1, :] = np.nan, -np.inf
    xv[2, 7] = np.inf
    labels = _Labels()
    with observing(labels):
        got = rg.function([x], getattr(rg, op)(x, axis=axis), backend="cpu")(xv)
    assert any(s.startswith("numpy." if rows < 100 else "numba.") for s in labels.seen), labels.seen
    ref = OPS[op].reference(xv.astype(np.float64), axis=axis)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("n", [5, 3000])
def test_small_gathers_and_scatter_adds_are_numpys_with_the_kernels_indices_and_errors(n, rng):
    from rustyasg.core.observe import observing

    x = rg.input((n, 10), "float32", name="x")
    i = rg.input((n, 2), "int64", name="i")
    s = rg.input((n, 2), "float32", name="s")
    xv = rng.standard_normal((n, 10)).astype(np.float32)
    iv = rng.integers(-10, 10, (n, 2))   # negative indices count from the end, as in numpy
    iv[0] = [3, 3]                       # repeated positions accumulate
    sv = rng.standard_normal((n, 2)).astype(np.float32)
    labels = _Labels()
    with observing(labels):
        fn = rg.function([x, i, s], [rg.gather(x, i, axis=1), rg.scatter_add(x, i, s, axis=1)], backend="cpu")
        got_g, got_s = fn(xv, iv, sv)
    small = n * 10 <= 8192
    assert ("numpy.take" in labels.seen and "numpy.add.at" in labels.seen) == small, labels.seen
    np.testing.assert_array_equal(got_g, np.take_along_axis(xv, iv, axis=1))
    ref = xv.astype(np.float64)
    np.add.at(ref, (np.arange(n)[:, None], iv % 10), sv.astype(np.float64))
    np.testing.assert_allclose(got_s, ref, rtol=1e-6, atol=1e-6)
    iv[-1, 1] = 10
    for k in range(2):
        with pytest.raises(IndexError, match=("gather", "scatter_add")[k] + ": index out of range"):
            fn(xv, iv, sv)
        fn = rg.function([x, i, s], rg.scatter_add(x, i, s, axis=1), backend="cpu")
