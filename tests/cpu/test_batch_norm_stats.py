"""A batch norm's statistics computed once per training step (``cpu_batch_norm_stats``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn

PASS = "cpu_batch_norm_stats"


def _labels(f, *args):
    return [line.split("(")[0] for line in f.compile(*args).describe().splitlines()]


def _training_step(shape, dtype, seed, disabled=()):
    """Loss, input gradient, scale and shift gradients and running statistics of one batch norm."""
    nn.init.manual_seed(seed)
    bn = {3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[len(shape)](shape[1], dtype=dtype)
    x = rg.input(shape, dtype, name="x")
    w = rg.input(shape, dtype, name="w")
    loss = (bn(x) * w).sum()
    grads = rg.grad(loss, [x, bn.weight, bn.bias])
    f = rg.function([x, w], [loss, *grads], updates=bn.state_updates(), backend="cpu", disabled_passes=disabled)
    return f, bn


@pytest.mark.parametrize("seed", range(12))
def test_random_batch_norm_steps_are_the_same_to_the_bit_and_match_torch(seed):
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(3, 6))
    shape = (int(rng.integers(2, 9)), int(rng.integers(1, 7))) + tuple(int(v) for v in rng.integers(1, 9, nd - 2))
    dtype = "float32" if seed % 3 else "float64"
    xv = (rng.standard_normal(shape) * rng.uniform(0.1, 5) + rng.uniform(-50, 50)).astype(dtype)
    wv = rng.standard_normal(shape).astype(dtype)
    if seed % 4 == 0:  # a NaN, an infinity and a zero in their channels
        flat = xv.reshape(shape[0], shape[1], -1)
        flat[0, 0, 0], flat[-1, -1, -1] = np.nan, np.inf
        flat[0, -1, 0] = 0.0

    shared, bn = _training_step(shape, dtype, seed)
    labels = _labels(shared, xv, wv)
    assert labels.count("numba.channel_stats") == 1, labels  # forward, backward, autograd's repeat, running stats
    got = [np.asarray(v) for v in shared(xv, wv)]
    running = [bn.running_mean.value().copy(), bn.running_var.value().copy()]
    alone, bn_alone = _training_step(shape, dtype, seed, disabled=(PASS,))
    assert "numba.channel_stats" not in _labels(alone, xv, wv)
    want = [np.asarray(v) for v in alone(xv, wv)]
    for a, b in zip(got + running, want + [bn_alone.running_mean.value(), bn_alone.running_var.value()]):
        np.testing.assert_array_equal(a, b)  # the same float64 statistics: the same bits

    xt = torch.tensor(xv, requires_grad=True)
    gamma = torch.ones(shape[1], dtype=xt.dtype, requires_grad=True)
    beta = torch.zeros(shape[1], dtype=xt.dtype, requires_grad=True)
    rm, rv = torch.zeros(shape[1], dtype=xt.dtype), torch.ones(shape[1], dtype=xt.dtype)
    y = torch.nn.functional.batch_norm(xt, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    (y * torch.tensor(wv)).sum().backward()
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == "float32" else dict(rtol=1e-9, atol=1e-9)
    for a, b in zip(got[1:] + running, [xt.grad, gamma.grad, beta.grad, rm, rv]):
        np.testing.assert_allclose(a, b.detach().numpy(), equal_nan=True, **tol)


def test_a_batch_norm_alone_keeps_its_own_statistics():
    """Forward only, with batch statistics: one reader, nothing to share, one kernel step."""
    rng = np.random.default_rng(0)
    x = rg.input((16, 3, 5, 5), "float32", name="x")
    f = rg.function([x], nn.functional.batch_norm(x, None, None, training=True), backend="cpu")
    xv = (rng.standard_normal((16, 3, 5, 5)) * 3 + 7).astype(np.float32)
    assert _labels(f, xv) == ["numba.batch_norm"]
    want = torch.nn.functional.batch_norm(torch.tensor(xv), None, None, training=True).numpy()
    np.testing.assert_allclose(f(xv), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("count, correction, want", [
    (1, 1, [np.nan, np.inf]), (2, 2, [np.nan, np.inf]), (3, 5, [np.nan, np.inf]), (4, 1, [0.0, 0.25 * 4 / 3])])
def test_running_variance_is_the_shared_one_rescaled_and_numpys_inf_or_nan_past_its_count(count, correction, want):
    """The shared (biased) variance rescaled to the running statistics' correction; at or past the
    count nan for a zero sum of squares and inf otherwise, as numpy's ``var(ddof=correction)``."""
    from rustyasg.cpu.kernels.norm import _moments_from_stats

    class Ins:
        attrs = {"count": count, "correction": correction}

    stats = np.array([[1.5, -2.0], [0.0, 0.25]])
    out = np.empty((2, 2), np.float32)
    with np.errstate(all="ignore"):  # as the executor runs its steps
        _moments_from_stats(Ins, None).bind(stats, out)()
    np.testing.assert_array_equal(out, np.float32([[1.5, -2.0], want]))


@pytest.mark.parametrize("shape", [(4, 0, 3), (2, 5, 1), (2, 1, 1, 1), (3, 2, 2)])
def test_edge_shapes_give_the_references_values(shape):
    """No channels, the fewest values per channel training allows (two; one is an error while the
    graph is built, as in torch), a single channel: what the reference backend gives."""
    x = rg.input(shape, "float32", name="x")
    g, b = rg.input((shape[1],), "float32", name="g"), rg.input((shape[1],), "float32", name="b")
    axes = (0,) + tuple(range(2, len(shape)))
    y = rg.batch_norm(x, g, b, axis=1, eps=1e-5)
    (gx,) = rg.grad((y * y).sum(), [x])
    outs = [y, gx, rg.stop_gradient(x).mean(axis=axes), rg.stop_gradient(x).var(axis=axes, correction=1)]
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(shape).astype(np.float32), rng.uniform(0.5, 2, shape[1]).astype(np.float32),
            rng.standard_normal(shape[1]).astype(np.float32)]
    f = rg.function([x, g, b], outs, backend="cpu")
    if shape[0] * shape[1]:
        assert "numba.channel_stats" in _labels(f, *args)
    with np.errstate(all="ignore"):
        want = rg.function([x, g, b], outs, backend="reference")(*args)
    for got, ref in zip(f(*args), want):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
