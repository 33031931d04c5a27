"""svdvals and its gradient exported to ONNX (unrolled one-sided Jacobi) and run by onnxruntime, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.onnx import ops_svd
from rustyasg.onnx.backend import OnnxRuntimeBackend
from rustyasg.onnx.translate import OnnxExportError

R = np.random.default_rng(5)


@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (2, 5), (1, 6), (2, 3, 7, 5), (0, 3, 3)])
def test_values_and_gradient_match_torch(shape):
    a = R.standard_normal(shape).astype(np.float32)
    x = rg.input(shape, "float32", name="a")
    s = rg.svdvals(x)
    (gx,) = rg.grad(rg.sum(rg.matrix_norm(x, "nuc")) + rg.sum(rg.matrix_norm(x, 2)), [x])
    values, grad = rg.function([x], [s, gx], backend=OnnxRuntimeBackend())(a)
    t = torch.tensor(a.astype(np.float64), requires_grad=True)
    (torch.linalg.matrix_norm(t, "nuc").sum() + torch.linalg.matrix_norm(t, 2).sum()).backward()
    np.testing.assert_allclose(values, torch.linalg.svdvals(t).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_a_matrix_with_nan_or_inf_gives_nan():
    a = R.standard_normal((3, 3, 2)).astype(np.float32)
    a[1, 0, 0], a[2, 2, 1] = np.nan, -np.inf
    x = rg.input(a.shape, "float32", name="a")
    s = rg.svdvals(x)
    (gx,) = rg.grad(rg.sum(s), [x])
    values, grad = rg.function([x], [s, gx], backend=OnnxRuntimeBackend())(a)
    assert np.isnan(values[1:]).all() and np.isnan(grad[1:]).all()
    np.testing.assert_allclose(values[0], np.linalg.svd(a[0].astype(np.float64), compute_uv=False), rtol=1e-5)


def test_wide_matrices_beyond_the_unrolled_size_are_refused():
    k = ops_svd.MAX_K + 1
    x = rg.input((k, k + 3), "float32", name="a")
    with pytest.raises(OnnxExportError, match=rf"svdvals of {k}x{k + 3} matrices.*at most {ops_svd.MAX_K}"):
        rg.function([x], rg.svdvals(x), backend=OnnxRuntimeBackend())(np.ones((k, k + 3), np.float32))
