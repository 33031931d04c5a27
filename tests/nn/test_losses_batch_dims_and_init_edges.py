"""Losses over two ``None`` batch dims (which the core treats as one size), and initialiser edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
from rustyasg.nn import init, losses


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_cross_entropy_and_mse_take_two_none_batch_dims(backend):
    x = rg.input((None, 4), "float32", name="logits")
    y = rg.input((None,), "int64", name="labels")
    t = rg.input((None, 4), "float32", name="target")
    f = rg.function([x, y, t], [losses.cross_entropy(x, y), losses.mse_loss(x, t)], backend=backend)
    rng = np.random.default_rng(0)
    xv, tv = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    yv = rng.integers(0, 4, 6)
    ce, mse = f(xv, yv, tv)
    np.testing.assert_allclose(ce, TF.cross_entropy(torch.tensor(xv), torch.tensor(yv)).item(), rtol=1e-5)
    np.testing.assert_allclose(mse, TF.mse_loss(torch.tensor(xv), torch.tensor(tv)).item(), rtol=1e-5)
    with pytest.raises(rg.GraphBuildError, match=r"cannot broadcast \(5,\) to \(6,\)"):  # checked per call
        f(xv, yv[:5], tv)


def test_differently_named_batch_dims_are_still_a_mistake():
    x, t = rg.input(("B", 4), name="x"), rg.input(("T", 4), name="t")
    with pytest.raises(rg.ShapeError, match="mse_loss: input and target must have the same shape"):
        losses.mse_loss(x, t)


@pytest.mark.parametrize("fn", [init.xavier_uniform, init.xavier_normal, init.kaiming_uniform, init.kaiming_normal])
@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (4, 0, 3, 3)])
def test_initialisers_of_zero_element_tensors_return_them_empty(fn, shape):
    out = fn(shape)
    assert out.shape == shape and out.dtype == np.float32


def test_one_hot_with_an_inferred_class_count_is_refused_with_advice():
    c = rg.input((3,), "int64", name="c")
    with pytest.raises(rg.ShapeError, match="num_classes must be >= 1, got -1.*pass the number of classes"):
        rg.one_hot(c, num_classes=-1)
