"""Kernel behaviour beyond the conformance examples: edge cases, errors, accuracy, PyTorch parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rustyasg.core as rg
from rustyasg.core.registry import OPS
from rustyasg.cpu.kernels import fastmath


def _apply_elementwise(fn):
    from numba import njit

    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = fn(x[i])
        return out

    return apply


@pytest.mark.parametrize("fn,ref,lo,hi,tol", [
    (fastmath.exp32, np.exp, -87.0, 88.0, 3e-7),
    (fastmath.tanh32, np.tanh, -12.0, 12.0, 5e-7),
    (fastmath.erf32, np.vectorize(math.erf), -6.0, 6.0, 5e-7),
    (fastmath.sigmoid32, lambda x: 1 / (1 + np.exp(-x)), -30.0, 30.0, 5e-7),
    (fastmath.log32, np.log, 1e-6, 1e6, 2e-7),
    (fastmath.log1p32, np.log1p, -0.999, 50.0, 3e-7),
    (fastmath.expm1_32, np.expm1, -20.0, 80.0, 3e-7),
])
def test_fast_float32_functions_are_accurate(fn, ref, lo, hi, tol):
    x = np.concatenate([np.linspace(lo, hi, 20001), np.random.default_rng(0).uniform(lo, hi, 5000)]).astype(np.float32)
    got = _apply_elementwise(fn)(x).astype(np.float64)
    want = ref(x.astype(np.float64))
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-30)
    assert np.max(np.where(np.abs(want) > 1e-30, err, 0)) < tol


def _ulps(got, want64):
    """|got - want| in units of the float32 spacing at the correctly rounded result."""
    want32 = want64.astype(np.float32)
    return np.abs(got.astype(np.float64) - want64) / np.spacing(np.abs(want32)).astype(np.float64)


@pytest.mark.parametrize("fn,ref,sample,max_ulps", [
    # every magnitude float32 has, subnormals included; results down to subnormal and up to overflow
    (fastmath.log32, np.log, lambda r: 10.0 ** r.uniform(-45, 38.5, 200_000), 1.0),
    (fastmath.log1p32, np.log1p, lambda r: np.concatenate([10.0 ** r.uniform(-45, 38, 100_000),
                                                            -(10.0 ** r.uniform(-45, -1e-7, 100_000))]), 2.5),
    (fastmath.expm1_32, np.expm1, lambda r: np.concatenate([r.uniform(-110, 88.7, 100_000),
                                                             r.uniform(-1, 1, 100_000) * 10.0 ** r.uniform(-40, 0, 100_000)]), 2.5),
    (fastmath.exp32, np.exp, lambda r: np.concatenate([r.uniform(-110, 88.72, 100_000), np.linspace(88.5, 88.8, 30001),
                                                        np.linspace(-104.5, -86, 30001)]), 1.5),
])
def test_fast_float32_functions_over_their_whole_range_and_edges(fn, ref, sample, max_ulps):
    """What numpy's float32 gives at the edges: 0, -0, +-inf, NaN, subnormal operands and results,
    overflow at the same threshold; within a few ulp (subnormal results: of the smallest subnormal)."""
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, -1e-30, 1.0, 1e-45, 1.1754942e-38, 3.4028235e38, 0.70710677,
             88.72283, 88.72284, -87.33654, -103.97, -104.0]
    x = np.concatenate([sample(np.random.default_rng(7)), edges]).astype(np.float32)
    got = _apply_elementwise(fn)(x)
    with np.errstate(all="ignore"):
        want64 = ref(x.astype(np.float64))
        numpy32 = ref(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(numpy32))
    inf = np.isinf(numpy32)
    np.testing.assert_array_equal(got[inf], numpy32[inf])
    assert not np.isinf(got[~inf]).any()
    assert np.array_equal(got == 0, numpy32 == 0) or fn is fastmath.exp32  # exp: the last subnormal may round to 0
    fin = np.isfinite(numpy32)
    assert np.max(_ulps(got[fin], want64[fin])) <= max_ulps


def test_exp32_edge_values():
    vals = fastmath.exp32
    assert vals(np.float32(-np.inf)) == 0.0
    assert np.isnan(vals(np.float32(np.nan)))
    assert vals(np.float32(0.0)) == 1.0


@pytest.mark.parametrize("op", ["exp", "log", "tanh", "log1p", "expm1", "sigmoid", "erf"])
def test_large_float32_ops_alone_run_the_vectorized_helpers_with_numpys_edges(op, rng):
    """A lone op past numpy's small-size path runs the generated loop (its label says which ran)
    and gives numpy's NaN, infinities and zeros, and its values within float32 rounding."""
    x = rng.standard_normal(20_000).astype(np.float32) * 30
    x[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1e-45, -1e-30, 88.7, -104.0, 1e30, -1e30]
    inp = rg.input(x.shape, "float32", name="x")
    f = rg.function([inp], getattr(rg, op)(inp), backend="cpu")
    got = f(x)
    labels = f.compile(x).describe()
    assert "numba." + op in labels, labels
    with np.errstate(all="ignore"):
        want = OPS[op].reference(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-6, atol=1e-37)


def test_take_wraps_negative_indices_and_rejects_out_of_range(rng):
    w = rg.input((5, 3), "float32", name="w")
    i = rg.input((4,), "int64", name="i")
    f = rg.function([w, i], rg.take(w, i, axis=0), backend="cpu")
    wv = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(f(wv, np.array([0, -1, 4, -5])), wv[[0, -1, 4, -5]])
    with pytest.raises(IndexError):
        f(wv, np.array([0, 5, 1, 2]))


def test_embedding_gradient_accumulates_repeated_rows(rng):
    w = rg.variable(rng.standard_normal((6, 4)), name="w")
    idx = rg.input((3, 5), "int64", name="idx")
    loss = (rg.take(w, idx, axis=0) ** 2).sum()
    (gw,) = rg.grad(loss, [w])
    iv = rng.integers(0, 6, (3, 5))
    got = rg.function([idx], gw, backend="cpu")(iv)
    want = np.zeros((6, 4))
    np.add.at(want, iv.ravel(), 2 * w.value()[iv.ravel()])
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 1, 1, 3),
                                                            (1, 0, 1, 6)])
def test_conv2d_and_gradients_match_pytorch(stride, padding, dilation, groups, rng):
    xv = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    wv = rng.standard_normal((6, 6 // groups, 3, 3)).astype(np.float32)
    x, w = rg.input(xv.shape, name="x"), rg.input(wv.shape, name="w")
    y = rg.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    cot = rg.input(y.shape, name="cot")
    gx, gw = rg.grad((y * cot).sum(), [x, w])
    cv = rng.standard_normal(y.shape).astype(np.float32)
    out, gxv, gwv = rg.function([x, w, cot], [y, gx, gw], backend="cpu")(xv, wv, cv)
    xt, wt = torch.tensor(xv, requires_grad=True), torch.tensor(wv, requires_grad=True)
    yt = F.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (yt * torch.tensor(cv)).sum().backward()
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gxv, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gwv, wt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_pointwise_conv_runs_without_columns(rng):
    xv = rng.standard_normal((3, 4, 5, 5))
    wv = rng.standard_normal((2, 4, 1, 1))
    x, w = rg.input(xv.shape, "float64", name="x"), rg.input(wv.shape, "float64", name="w")
    f = rg.function([x, w], rg.conv2d(x, w), backend="cpu")
    assert "im2col" not in f.compile(xv, wv).describe()
    np.testing.assert_allclose(f(xv, wv), F.conv2d(torch.tensor(xv), torch.tensor(wv)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3, 4, 8, 6), (2, 3, 11, 9), (1, 2, 2, 3)])
def test_2x2_max_pool_values_and_gradient_with_nans_infinities_and_ties_match_pytorch(rng, shape, dtype):
    """The 2x2 stride-2 pooling's forward writes values only; its backward finds the maxima again.
    NaN wins its window (the last NaN), -inf and +inf are ordinary values, the first of tied maxima
    takes the gradient; an odd last row or column gets none."""
    xv = rng.standard_normal(shape).astype(dtype)
    flat = xv.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
    flat[picks[0::4]], flat[picks[1::4]], flat[picks[2::4]] = np.nan, np.inf, -np.inf
    xv[0, 0, :2, :2] = 0.75  # a window of four equal maxima
    x = rg.input(shape, dtype, name="x")
    y = rg.max_pool2d(x, 2, stride=2)
    (gx,) = rg.grad((y * rg.constant(np.arange(1, int(np.prod(y.shape)) + 1, dtype=dtype).reshape(y.shape))).sum(),
                    [x])
    f = rg.function([x], [y, gx], backend="cpu")
    out, gv = f(xv)
    xt = torch.tensor(xv, requires_grad=True)
    yt = F.max_pool2d(xt, 2, stride=2)
    (yt * torch.arange(1, yt.numel() + 1, dtype=yt.dtype).reshape(yt.shape)).sum().backward()
    np.testing.assert_array_equal(out, yt.detach().numpy())
    np.testing.assert_array_equal(gv, xt.grad.numpy())


@pytest.mark.parametrize("kernel,stride,padding,ceil", [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False)])
def test_max_pool_values_indices_and_gradient_match_pytorch(kernel, stride, padding, ceil, rng):
    xv = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    xv[0, 0, :2, :2] = 1.5  # ties: the first maximum wins
    x = rg.input(xv.shape, name="x")
    y = rg.max_pool2d(x, kernel, stride=stride, padding=padding, ceil_mode=ceil)
    idx = rg.max_pool2d_indices(x, kernel, stride=stride, padding=padding, ceil_mode=ceil)
    (gx,) = rg.grad((y * y).sum(), [x])
    out, iv, gv = rg.function([x], [y, idx, gx], backend="cpu")(xv)
    xt = torch.tensor(xv, requires_grad=True)
    yt, it = F.max_pool2d(xt, kernel, stride=stride, padding=padding, ceil_mode=ceil, return_indices=True)
    (yt * yt).sum().backward()
    np.testing.assert_array_equal(out, yt.detach().numpy())
    np.testing.assert_array_equal(iv, it.numpy())
    np.testing.assert_allclose(gv, xt.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("disabled", [(), ("cpu_conv_im2col",)])
@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((64, 1, 28, 28), (6, 1, 5, 5), {"padding": 2}),              # LeNet's first layer: 150 results
    ((40, 3, 17, 15), (5, 3, 3, 2), {"stride": (2, 1), "dilation": (1, 2)}),  # an odd number of channels
    ((32, 1, 28, 28), (16, 1, 5, 5), {"stride": 2, "padding": 2}),  # the README demo's first layer
])
def test_small_weight_gradient_is_computed_by_dot_products_like_pytorch(rng, x_shape, w_shape, attrs, disabled):
    """A weight gradient with few results over many positions: dot products of the gradient's rows
    with the columns' rows (with the columns shared with the forward pass, and built by the op itself)."""
    from rustyasg.cpu.kernels import conv

    cv_shape = tuple(F.conv2d(torch.zeros(x_shape), torch.zeros(w_shape), **attrs).shape)
    assert conv._weight_by_dots(cv_shape, w_shape, 1)
    assert not conv._weight_by_dots((64, 16, 10, 10), (16, 6, 5, 5), 1)  # 2,400 results: one GEMM
    xv = rng.standard_normal(x_shape).astype(np.float32)
    wv = rng.standard_normal(w_shape).astype(np.float32)
    cv = rng.standard_normal(cv_shape).astype(np.float32)
    x, w, cot = rg.input(xv.shape, name="x"), rg.input(wv.shape, name="w"), rg.input(cv.shape, name="cot")
    (gw,) = rg.grad((rg.conv2d(x, w, **attrs) * cot).sum(), [w])
    f = rg.function([x, w, cot], gw, backend="cpu", disabled_passes=disabled)
    assert "dots(conv dW)" in f.compile(xv, wv, cv).describe() if not disabled else \
        "im2col+gemm(dW)" in f.compile(xv, wv, cv).describe()
    xt, wt = torch.tensor(xv, dtype=torch.float64), torch.tensor(wv, dtype=torch.float64, requires_grad=True)
    (F.conv2d(xt, wt, **attrs) * torch.tensor(cv, dtype=torch.float64)).sum().backward()
    for _ in range(2):  # the second call reuses the buffers the first one filled
        got = f(xv, wv, cv)
        np.testing.assert_allclose(got, wt.grad.numpy(), rtol=0, atol=2e-5 * np.abs(wt.grad.numpy()).max())


def test_dot_product_weight_gradient_keeps_torchs_infinities_and_nans(rng):
    """An infinity in the input reaches only the taps that read it (inf or NaN there, as in torch); a
    zero gradient row times an infinity is NaN, as in BLAS and torch."""
    x_shape, w_shape = (40, 1, 13, 13), (3, 1, 3, 3)
    xv = rng.standard_normal(x_shape).astype(np.float32)
    xv[0, 0, 0, 0], xv[5, 0, 12, 12], xv[7, 0, 12, 3] = np.inf, np.nan, -np.inf  # corners and an edge
    wv = rng.standard_normal(w_shape).astype(np.float32)
    cv = rng.standard_normal((40, 3, 11, 11)).astype(np.float32)
    cv[:, 1] = 0.0  # one output channel with no gradient at all
    x, w, cot = rg.input(x_shape, name="x"), rg.input(w_shape, name="w"), rg.input(cv.shape, name="cot")
    (gw,) = rg.grad((rg.conv2d(x, w) * cot).sum(), [w])
    f = rg.function([x, w, cot], gw, backend="cpu")
    assert "dots(conv dW)" in f.compile(xv, wv, cv).describe()
    xt, wt = torch.tensor(xv, dtype=torch.float64), torch.tensor(wv, dtype=torch.float64, requires_grad=True)
    (F.conv2d(xt, wt) * torch.tensor(cv, dtype=torch.float64)).sum().backward()
    want = wt.grad.numpy()
    got = f(xv, wv, cv)
    assert np.isnan(want).any() and np.isinf(want).any() and np.isfinite(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=2e-5 * np.abs(want[finite]).max())


def test_softmax_handles_masked_rows(rng):
    x = rg.input((4, 6), "float32", name="x")
    mask = np.triu(np.full((4, 6), -np.inf, np.float32), k=1)
    f = rg.function([x], [rg.softmax(x + mask, axis=-1), rg.log_softmax(x + mask, axis=-1)], backend="cpu")
    xv = rng.standard_normal((4, 6)).astype(np.float32)
    sm, lsm = f(xv)
    want = torch.softmax(torch.tensor(xv + mask), -1).numpy()
    np.testing.assert_allclose(sm, want, rtol=1e-6, atol=1e-7)
    assert np.all(sm[:, 5][:3] == 0) and np.all(np.isneginf(lsm[0, 1:]))


def test_layer_norm_and_batch_norm_match_pytorch(rng):
    xv = rng.standard_normal((4, 5, 8)).astype(np.float32) * 3 + 1
    g, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    x = rg.input(xv.shape, name="x")
    ln = rg.layer_norm(x, rg.constant(g), rg.constant(b))
    bn = rg.batch_norm(x, rg.constant(rng.standard_normal(5).astype(np.float32)), None, axis=1)
    (gx,) = rg.grad((ln * ln).sum() + bn.sum(), [x])
    lnv, gxv = rg.function([x], [ln, gx], backend="cpu")(xv)
    xt = torch.tensor(xv, requires_grad=True)
    lt = F.layer_norm(xt, (8,), torch.tensor(g), torch.tensor(b))
    (lt * lt).sum().backward()
    np.testing.assert_allclose(lnv, lt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gxv, xt.grad.numpy(), rtol=1e-3, atol=1e-4)  # bn.sum() has zero gradient


def test_row_kernels_match_float64_across_row_blocks_splits_and_edge_rows(rng):
    """softmax/log_softmax rows (maxima of a block of rows first) and layer norm rows (float32
    element loops around a float64 mean split in two) on random shapes, random ``lo..hi`` chunks,
    rows far from zero, and rows holding NaN, inf and -inf."""
    from rustyasg.cpu.kernels import norm, rowwise

    for trial in range(12):
        rows, cols = int(rng.integers(1, 200)), int(rng.integers(1, 300))
        x = (rng.standard_normal((rows, cols)) * rng.choice([0.01, 1.0, 30.0])
             + rng.choice([0.0, -5.0, 1000.0])).astype(np.float32)
        x[rng.random(rows) < 0.2] = -np.inf  # fully masked rows
        x[rng.random((rows, cols)) < 0.01] = rng.choice([np.nan, np.inf, -np.inf])
        lo, hi = sorted(int(v) for v in rng.integers(0, rows + 1, 2))
        x64 = x.astype(np.float64)
        with np.errstate(all="ignore"):
            want_sm, want_lsm = (rg.OPS[op].reference(x64, axis=-1) for op in ("softmax", "log_softmax"))
        magnitude = max(1.0, float(np.abs(x[np.isfinite(x)]).max(initial=0.0)))  # log_softmax's x - shift
        for name, want, atol in (("softmax_rows", want_sm, 1e-6), ("log_softmax_rows", want_lsm, 1e-6 * magnitude)):
            out = np.full_like(x, 7.0)
            with np.errstate(all="ignore"):
                rowwise.kernel(name, np.float32)(x, out, lo, hi)
            np.testing.assert_allclose(out[lo:hi], want[lo:hi], rtol=2e-5, atol=atol, err_msg=f"{name} {trial}")
            assert np.all(out[:lo] == 7.0) and np.all(out[hi:] == 7.0)  # only its own rows
        finite = np.isfinite(x).all(axis=1)
        xf, gf = x[finite], rng.standard_normal(x[finite].shape).astype(np.float32)
        gamma, beta = rng.standard_normal(cols).astype(np.float32), rng.standard_normal(cols).astype(np.float32)
        eps = 1e-5
        xf64 = xf.astype(np.float64)
        r = 1.0 / np.sqrt(xf64.var(axis=1, keepdims=True) + eps)
        xh = (xf64 - xf64.mean(axis=1, keepdims=True)) * r
        ad = gf * gamma.astype(np.float64)
        want_dx = r * (ad - ad.mean(axis=1, keepdims=True) - xh * (ad * xh).mean(axis=1, keepdims=True))
        out = np.empty_like(xf)
        norm.layer_norm_rows(xf, gamma, beta, np.float32(eps), out, 0, len(xf))
        np.testing.assert_allclose(out, xh * gamma + beta, rtol=1e-5, atol=2e-5 * max(1.0, np.abs(xh).max()))
        norm.layer_norm_rows_backward(gf, xf, gamma, np.float32(eps), out, 0, len(xf))
        scale = np.abs(want_dx).max() if want_dx.size else 1.0
        np.testing.assert_allclose(out, want_dx, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
def test_matrix_products_take_numpy_dot_when_small_and_matmul_when_large(layout):
    from rustyasg.cpu.kernels import linalg

    rng = np.random.default_rng(abs(hash(layout)) % 2**32)
    for m, k, n in [(3, 5, 2), (32, 32, 64), (64, 128, 64), (65, 128, 64), (128, 784, 10), (1, 0, 4)]:
        a = rng.standard_normal((k, m) if layout[0] == "t" else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if layout[1] == "t" else (k, n)).astype(np.float32)
        a[..., :1] = np.inf if a.size else 0  # non-finite values go through BLAS as they are
        x, y = (a.T if layout[0] == "t" else a), (b.T if layout[1] == "t" else b)
        out = np.full((m, n), np.nan, np.float32)
        call = linalg._product(x, y, out)
        assert call.func is (np.dot if m * k * n <= linalg.DOT_MAX_MACS else np.matmul), (m, k, n)
        call()
        ref = x.astype(np.float64) @ y.astype(np.float64)
        np.testing.assert_allclose(out, ref, rtol=2e-5, atol=1e-4 * max(k, 1))
