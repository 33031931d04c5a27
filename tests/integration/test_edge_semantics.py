"""Edge values every backend must treat as the reference does (found by comparing with numpy/PyTorch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import rustyasg.core as rg

BACKENDS = ["cpu", "wgpu"]


def _agree(inputs, outputs, feeds, backend, rtol=1e-5):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = rg.function(inputs, outputs, backend="reference")(*feeds)
    got = rg.function(inputs, outputs, backend=backend)(*feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=rtol, atol=1e-6)
    return got


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_propagates_through_relu_max_min_clamp_sign_and_reductions(backend):
    x = rg.input((2, 4), "float32", name="x")
    xv = np.array([[np.nan, 1.0, -1.0, 0.0], [2.0, -np.inf, np.inf, np.nan]], np.float32)
    y = x + 1.0  # fused with what follows
    outs = [rg.relu(y), rg.maximum(y, 0.5), rg.minimum(y, 0.5), rg.clamp(y, min=-1.0, max=1.0), rg.sign(y),
            rg.abs(y), rg.where(y > 0, y, -y), rg.max(y, axis=1), rg.min(y, axis=1), y > 0.0, y != y]
    got = _agree([x], outs, [xv], backend)
    assert np.isnan(got[0][0, 0]) and np.isnan(got[7]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_rsqrt_and_sqrt_gradient_at_zero_and_inf_are_infinite_as_in_torch(backend):
    x = rg.input((3,), "float32", name="x")
    xv = np.array([0.0, 4.0, np.inf], np.float32)
    (g,) = rg.grad(rg.sum(rg.sqrt(x)), [x])
    got = _agree([x], [rg.rsqrt(x), g], [xv], backend)
    xt = torch.tensor(xv, requires_grad=True)
    torch.sqrt(xt).sum().backward()
    np.testing.assert_array_equal(got[0], torch.rsqrt(torch.tensor(xv)).numpy())
    np.testing.assert_array_equal(got[1], xt.grad.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_tanh_far_out_is_exact_as_in_torch(backend):
    x = rg.input((4,), "float32", name="x")
    xv = np.array([-300.0, -30.0, 30.0, 300.0], np.float32)
    (g,) = rg.grad(rg.sum(rg.gelu_tanh(x)), [x])
    got = rg.function([x], [rg.gelu_tanh(x), g], backend=backend)(xv)
    xt = torch.tensor(xv, requires_grad=True)
    torch.nn.functional.gelu(xt, approximate="tanh").sum().backward()
    np.testing.assert_array_equal(got[0], [0.0, 0.0, 30.0, 300.0])
    np.testing.assert_array_equal(got[1], xt.grad.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_tanh_far_out_is_exactly_one_and_its_gradient_zero_as_in_torch(backend):
    x = rg.input((8,), "float32", name="x")
    xv = np.array([-300.0, -30.0, -9.5, -9.0109, 9.0109, 9.5, 30.0, np.inf], np.float32)
    (g,) = rg.grad(rg.sum(rg.tanh(x)), [x])
    got = rg.function([x], [rg.tanh(x), g], backend=backend)(xv)
    xt = torch.tensor(xv, requires_grad=True)
    torch.tanh(xt).sum().backward()
    far = np.abs(xv) >= 9.5
    np.testing.assert_array_equal(got[0][far], torch.tanh(torch.tensor(xv)).numpy()[far])   # exactly +-1
    np.testing.assert_array_equal(got[1][far], xt.grad.numpy()[far])                        # exactly 0
    np.testing.assert_allclose(got[0], np.tanh(xv.astype(np.float64)), rtol=0, atol=3e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_powers_of_negative_bases_and_zero(backend):
    a = rg.input((6,), "float32", name="a")
    av = np.array([-2.0, -0.5, 0.0, 3.0, np.nan, -np.inf], np.float32)
    _agree([a], [a ** 3, a ** 2, a ** -1.0, a ** 0.0, (a + 0.0) ** 3.0], [av], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_over_an_empty_axis_is_nan(backend):
    x = rg.input((0, 3), "float32", name="x")
    got = _agree([x], [rg.mean(x, axis=0), rg.mean(x), rg.sum(x, axis=0)], [np.zeros((0, 3), np.float32)], backend)
    assert np.isnan(got[0]).all() and np.isnan(got[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_graphs_that_once_failed_to_compile(backend):
    x, y = rg.input((), "float32", name="x"), rg.input((3,), "float32", name="y")
    u = y * 2.0
    s = x * 3.0
    xv, yv = np.float32(2.0), np.arange(3, dtype=np.float32)
    _agree([x, y], [s + rg.sum(u), u * s], [xv, yv], backend)  # once a non-convex fusion group
    v = rg.input((3,), "float32", name="v")
    _agree([v], [rg.sum(rg.broadcast_to(v, shape=(2, 3)))], [yv], backend)  # once a StopIteration
    f = rg.flip(x, axes=())
    _agree([x], [f, rg.grad(f * 3.0, [x])[0]], [xv], backend)  # once 1.0 instead of x


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_graphs_run(backend):
    h, w = rg.input((2, 3), "float16", name="h"), rg.input((3, 4), "float32", name="w")
    hv = np.linspace(-1, 1, 6, dtype=np.float16).reshape(2, 3)
    wv = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    outs = [h.astype("float32") @ w, rg.sum(h), h * 2.0 + 1.0, rg.matmul(h, w.astype("float16"))]
    got = _agree([h, w], outs, [hv, wv], backend, rtol=2e-3)
    assert [o.dtype for o in got] == [np.float32, np.float16, np.float16, np.float16]
