"""The tanh-GELU's gradient is one op (``gelu_tanh_grad``), as PyTorch's gelu_backward: in bfloat16 it
is rounded once, so it is the float64 derivative to one bfloat16 unit, and agrees with PyTorch's
bfloat16 backward (which loses the far tail to ``1 - tanh**2`` cancellation, where ours does not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_bfloat16_gelu_backward_rounds_once_like_pytorch(backend):
    rng = np.random.default_rng(3)
    xv = (rng.standard_normal(4096) * 3).astype(rg.bfloat16)
    gv = rng.standard_normal(4096).astype(rg.bfloat16)
    xv[:6] = np.array([0.0, -0.0, 9.0, -9.0, np.inf, np.nan], np.float32).astype(rg.bfloat16)
    x = rg.input((4096,), "bfloat16", name="x")
    g = rg.input((4096,), "bfloat16", name="g")
    y = rg.gelu_tanh(x)
    (gx,) = rg.grad((y * g).sum(), [x])
    assert [i.op for i in rg.function([x, g], gx, backend="reference").lower(xv, gv).instrs].count("gelu_tanh_grad") == 1
    got = np.asarray(rg.function([x, g], gx, backend=backend)(xv, gv), np.float32)

    tx = torch.tensor(xv.astype(np.float32), dtype=torch.bfloat16, requires_grad=True)
    torch.nn.functional.gelu(tx, approximate="tanh").backward(torch.tensor(gv.astype(np.float32), dtype=torch.bfloat16))
    want = tx.grad.float().numpy()
    x64, g64 = xv.astype(np.float64), gv.astype(np.float64)
    with np.errstate(all="ignore"):
        th = np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3))
        exact = g64 * (0.5 * (1 + th) + 0.5 * x64 * (1 - th ** 2) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x64 ** 2))
    finite = np.isfinite(x64)
    assert np.isnan(got[~finite]).all() and np.isnan(want[~finite]).all()  # inf * 0 and NaN, as PyTorch
    np.testing.assert_allclose(got[finite], exact[finite], rtol=2 ** -7, atol=1e-12)
    np.testing.assert_allclose(got[finite], want[finite], rtol=2 ** -7, atol=1e-5)
