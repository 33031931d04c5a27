"""Kernel behaviour beyond the conformance examples: edge cases, errors, accuracy, PyTorch parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rustyasg.core as rg
from rustyasg.cpu.kernels import fastmath


@pytest.mark.parametrize("fn,ref,lo,hi,tol", [
    (fastmath.exp32, np.exp, -87.0, 88.0, 3e-7),
    (fastmath.tanh32, np.tanh, -12.0, 12.0, 5e-7),
    (fastmath.erf32, np.vectorize(math.erf), -6.0, 6.0, 5e-7),
    (fastmath.sigmoid32, lambda x: 1 / (1 + np.exp(-x)), -30.0, 30.0, 5e-7),
])
def test_fast_float32_functions_are_accurate(fn, ref, lo, hi, tol):
    from numba import njit

    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = fn(x[i])
        return out

    x = np.concatenate([np.linspace(lo, hi, 20001), np.random.default_rng(0).uniform(lo, hi, 5000)]).astype(np.float32)
    got = apply(x).astype(np.float64)
    want = ref(x.astype(np.float64))
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-30)
    assert np.max(np.where(np.abs(want) > 1e-30, err, 0)) < tol


def test_exp32_edge_values():
    vals = fastmath.exp32
    assert vals(np.float32(-np.inf)) == 0.0
    assert np.isnan(vals(np.float32(np.nan)))
    assert vals(np.float32(0.0)) == 1.0


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
