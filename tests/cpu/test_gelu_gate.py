"""A tanh-GELU's gate computed once per training step (``cpu_gelu_gate``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.nn.activations import gelu

PASS = "cpu_gelu_gate"
EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, 9.5, -9.5, 30.0, -30.0, 1e-30, -1e-4, 88.0, -104.5]


def _ops(f, *args):
    return [ins.op for ins in f.lower(*args).instrs]


def _step(shape, dtype, bias, disabled=()):
    """GELU of ``x + b`` (a layer's pre-activation) weighted by ``w``: the value, and the gradients
    of the weighted sum with respect to ``x`` and ``b``."""
    x = rg.input(shape, dtype, name="x")
    w = rg.input(shape, dtype, name="w")
    b = rg.input(shape[-1:], dtype, name="b")
    y = gelu(x + b if bias else x, approximate="tanh")
    grads = rg.grad((y * w).sum(), [x, b])
    return rg.function([x, w, b], [y, *grads], backend="cpu", disabled_passes=disabled)


@pytest.mark.parametrize("seed", range(10))
def test_random_steps_are_the_same_to_the_bit_and_match_torch(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 40, int(rng.integers(1, 4))))
    dtype = "float64" if seed % 3 == 0 else "float32"
    xv = (rng.standard_normal(shape) * rng.uniform(0.5, 6)).astype(dtype)
    flat = xv.reshape(-1)
    flat[: min(len(EDGES), flat.size)] = EDGES[: flat.size]
    wv = rng.standard_normal(shape).astype(dtype)
    bv = (rng.standard_normal(shape[-1:]) * 0.1).astype(dtype)
    bias = bool(seed % 2)

    shared = _step(shape, dtype, bias)
    ops = _ops(shared, xv, wv, bv)
    assert ops.count("cpu.gelu_tanh_gate") == 1 and "gelu_tanh_grad" not in ops and "gelu_tanh" not in ops, ops
    got = shared(xv, wv, bv)
    alone = _step(shape, dtype, bias, disabled=(PASS,))
    assert "cpu.gelu_tanh_gate" not in _ops(alone, xv, wv, bv)
    for a, b in zip(got, alone(xv, wv, bv)):
        np.testing.assert_array_equal(a, b)  # the core's formulas, the gate computed once: the same bits

    xt = torch.tensor(xv, requires_grad=True)
    bt = torch.tensor(bv, requires_grad=True)
    yt = torch.nn.functional.gelu(xt + bt if bias else xt, approximate="tanh")
    (yt * torch.tensor(wv)).sum().backward()
    # float32: the tail of the gradient, far below zero, is a few 1e-6 apart in either formula
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[0], yt.detach().numpy(), equal_nan=True, **tol)
    np.testing.assert_allclose(got[1], xt.grad.numpy(), equal_nan=True, **tol)
    if bias:
        finite = np.isfinite(bt.grad.numpy())  # a column with an infinity sums inf and -inf both ways
        np.testing.assert_allclose(got[2][finite], bt.grad.numpy()[finite], rtol=1e-4, atol=1e-4)


def test_gradient_alone_or_forward_alone_keep_their_single_op():
    """Nothing to share: a forward pass, or a gradient of a GELU that the program does not compute."""
    x = rg.input((4, 5), name="x")
    g = rg.input((4, 5), name="g")
    xv = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    forward = rg.function([x], gelu(x, approximate="tanh"), backend="cpu")
    assert "gelu_tanh" in _ops(forward, xv)
    backward = rg.function([x, g], rg.gelu_tanh_grad(g, x), backend="cpu")
    assert _ops(backward, xv, xv).count("gelu_tanh_grad") == 1


def test_bfloat16_keeps_its_single_ops():
    """A bfloat16 gate would be rounded to 8 bits where the single op keeps it in float32."""
    from rustyasg.core.backend_api import bfloat16

    x = rg.input((3, 8), bfloat16, name="x")
    y = gelu(x, approximate="tanh")
    (gx,) = rg.grad(y.astype("float32").sum(), [x])
    f = rg.function([x], [y, gx], backend="cpu")
    assert "cpu.gelu_tanh_gate" not in _ops(f, np.ones((3, 8), bfloat16))
