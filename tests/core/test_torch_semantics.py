"""Edge cases where RustyASG follows PyTorch, checked on every backend against torch itself.

0-d tensors (axis 0 / -1 name the tensor itself), gradients at points where the naive
chain rule gives 0 * inf (``x ** 0`` at 0, ``std`` at zero variance, ``prod`` with zeros),
negative pad widths (a crop), and ``gather`` with an index smaller than the input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg

BACKENDS = ["reference", "cpu", "wgpu"]


def _run(backend, inputs, outputs, *arrays):
    return [np.asarray(v) for v in rg.function(inputs, outputs, backend=backend)(*arrays)]


def _close(got, want, backend):
    tol = 1e-12 if backend == "reference" else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_d_unary_and_reductions_over_axis_0_and_minus_1(backend):
    dt = "float64" if backend == "reference" else "float32"
    z = rg.input((), dt, name="z")
    outs = [rg.erf(z), rg.gelu(z), rg.sum(z, axis=0), rg.mean(z, axis=-1), rg.max(z, axis=0),
            rg.prod(z, axis=(-1,)), rg.logsumexp(z, axis=0, keepdims=True), rg.softmax(z, axis=-1),
            rg.argmax(z, axis=0), rg.squeeze(z, 0), rg.var(z, axis=0, correction=0)]
    tz = torch.tensor(0.3, dtype=torch.float64)
    want = [torch.erf(tz), TF.gelu(tz), tz.sum(0), tz.mean(-1), tz.amax(0), tz.prod(-1), tz.logsumexp(0, keepdim=True),
            torch.softmax(tz, -1), tz.argmax(0), tz.squeeze(0), tz.var(0, correction=0)]
    for got, w in zip(_run(backend, [z], outs, np.asarray(0.3, dt)), want):
        assert got.shape == tuple(w.shape)
        _close(got, w.numpy(), backend)


def test_duplicate_reduction_axes_are_refused_while_building():
    x = rg.input((4,), name="x")
    with pytest.raises(rg.ShapeError, match="same axis more than once"):
        rg.sum(x, axis=(0, -1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_where_the_chain_rule_meets_zero_times_inf(backend):
    dt = "float64" if backend == "reference" else "float32"
    x = rg.input((5,), dt, name="x")
    c = rg.input((5,), dt, name="c")
    xv = np.array([0.0, 1.5, -2.0, 0.0, 3.0])
    cv = np.full(5, 0.7)
    pieces = [rg.sum(x ** 0.0), rg.std(c), rg.prod(x), rg.prod(rg.where(x == 0.0, 0.0, x) * rg.sum(c))]
    grads = [g for p in pieces for g in rg.grad(p, [x, c])]
    tx = torch.tensor(xv, requires_grad=True)
    tc = torch.tensor(cv, requires_grad=True)
    tpieces = [(tx ** 0.0).sum(), tc.std(), tx.prod(), (torch.where(tx == 0, 0.0, tx) * tc.sum()).prod()]
    want = [torch.zeros(5) if g is None else g
            for p in tpieces for g in torch.autograd.grad(p, [tx, tc], allow_unused=True)]
    for got, w in zip(_run(backend, [x, c], grads, xv.astype(dt), cv.astype(dt)), want):
        assert np.isfinite(got).all()
        _close(got, w.detach().numpy(), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_pad_widths_crop_like_torch_with_gradient(backend):
    dt = "float64" if backend == "reference" else "float32"
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((3, 4, 5))
    widths = (-1, 2, 0, -3, 2, -1)  # (before, after) per axis, numpy order
    x = rg.input((3, 4, 5), dt, name="x")
    y = rg.pad(x, pad_width=widths, value=0.25)
    w = rng.standard_normal(y.shape)
    (gx,) = rg.grad(rg.sum(y * y * rg.constant(w, dt)), [x])
    tx = torch.tensor(xv, requires_grad=True)
    ty = TF.pad(tx, (2, -1, 0, -3, -1, 2), value=0.25)  # torch lists the last axis first
    (tg,) = torch.autograd.grad((ty * ty * torch.tensor(w)).sum(), [tx])
    got_y, got_g = _run(backend, [x], [y, gx], xv.astype(dt))
    _close(got_y, ty.detach().numpy(), backend)
    _close(got_g, tg.numpy(), backend)


def test_pad_that_crops_below_zero_is_refused_while_building():
    x = rg.input((3, 4), name="x")
    with pytest.raises(rg.ShapeError, match=r"pad: .*crop axis 0 of size 3 below zero"):
        rg.pad(x, pad_width=(-2, -2, 0, 0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gather_with_a_smaller_index_and_scatter_add_gradient(backend):
    rng = np.random.default_rng(5)
    xv = rng.standard_normal((4, 5)).astype(np.float32)
    sv = rng.standard_normal((2, 3)).astype(np.float32)
    iv = np.array([[0, 4, 1], [2, 2, 3]])
    x, s = rg.input((4, 5), name="x"), rg.input((2, 3), name="s")
    i = rg.input((2, 3), "int64", name="i")
    g = rg.gather(x, i, axis=1)
    y = rg.scatter_add(x, i, s, axis=1)
    outs = [g, y, *rg.grad(rg.sum(g * g) + rg.sum(y * y * y), [x, s])]
    tx, ts = torch.tensor(xv, requires_grad=True), torch.tensor(sv, requires_grad=True)
    tg, ty = torch.gather(tx, 1, torch.tensor(iv)), torch.scatter_add(tx, 1, torch.tensor(iv), ts)
    want = [tg, ty, *torch.autograd.grad((tg * tg).sum() + (ty ** 3).sum(), [tx, ts])]
    for got, w in zip(_run(backend, [x, i, s], outs, xv, iv, sv), want):
        np.testing.assert_allclose(got, w.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_gather_index_larger_than_the_input_off_its_axis_is_refused():
    x = rg.input((2, 5), name="x")
    with pytest.raises(rg.ShapeError, match=r"gather: index shape \(3, 1\) exceeds input shape \(2, 5\)"):
        rg.gather(x, rg.input((3, 1), "int64", name="i"), axis=1)


def test_integer_true_division_by_a_large_python_int_is_a_float_division():
    x = rg.input((3,), "int32", name="x")
    xv = np.array([1, -7, 2 ** 30], np.int32)
    got = rg.function([x], [x / 2 ** 40, 2 ** 40 / (x + 2)], backend="reference")(xv)
    want = [torch.tensor(xv) / 2 ** 40, 2 ** 40 / (torch.tensor(xv) + 2)]
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-6)


def test_integer_sum_with_a_python_int_that_does_not_fit_is_refused_while_building():
    x = rg.input((3,), "int32", name="x")
    with pytest.raises(rg.DTypeError, match=r"add: .*out of bounds for int32.*cast that tensor first"):
        x + 2 ** 40
