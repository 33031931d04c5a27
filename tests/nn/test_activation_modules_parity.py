"""The activation layers and functions of torch.nn / torch.nn.functional against PyTorch's, with their defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn
import rustyasg.nn.functional as F

# layer name, constructor arguments (the same for both), input shape
LAYERS = [
    ("CELU", {"alpha": 0.5}, (2, 5)), ("SELU", {}, (2, 5)), ("Hardsigmoid", {}, (2, 5)), ("Hardswish", {}, (2, 5)),
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}, (2, 5)), ("ReLU6", {}, (2, 5)), ("LogSigmoid", {}, (2, 5)),
    ("Mish", {}, (2, 5)), ("Softsign", {}, (2, 5)), ("Tanhshrink", {}, (2, 5)), ("Softmin", {"dim": 0}, (3, 4)),
    ("GLU", {"dim": 1}, (3, 4)),
]


@pytest.mark.parametrize("name, kwargs, shape", LAYERS, ids=[row[0] for row in LAYERS])
def test_layer_matches_torch_nn(name, kwargs, shape):
    x = np.random.default_rng(0).uniform(-5, 5, shape).astype(np.float32)
    ours = getattr(nn, name)(**kwargs)
    theirs = getattr(torch.nn, name)(**kwargs)
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    assert repr(ours).startswith(name)


@pytest.mark.parametrize("num_parameters", [1, 3])
def test_prelu_layer_learns_its_weight_like_torch(num_parameters):
    x = np.random.default_rng(1).uniform(-2, 2, (4, 3, 5)).astype(np.float32)
    ours, theirs = nn.PReLU(num_parameters, init=0.2), torch.nn.PReLU(num_parameters, init=0.2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    xin = rg.input(x.shape, name="x")
    loss = rg.sum(ours(xin) ** 2)
    (gw,) = rg.grad(loss, [ours.weight])
    got_loss, got_gw = rg.function([xin], [loss, gw], backend="cpu")(x)
    want = (theirs(torch.tensor(x)) ** 2).sum()
    want.backward()
    np.testing.assert_allclose(got_loss, want.item(), rtol=1e-5)
    np.testing.assert_allclose(got_gw, theirs.weight.grad.numpy(), rtol=1e-4)


def test_functional_forms_are_there_with_torch_defaults():
    x = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    t = torch.tensor(x)
    import torch.nn.functional as TF

    pairs = [(F.normalize(x), TF.normalize(t)), (F.glu(x), TF.glu(t)), (F.softmin(x), TF.softmin(t, -1)),
             (F.hardtanh(x), TF.hardtanh(t)), (F.prelu(x, np.float32([0.1])), TF.prelu(t, torch.tensor([0.1]))),
             (F.celu(x), TF.celu(t)), (F.selu(x), TF.selu(t)), (F.mish(x), TF.mish(t))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert nn.get_activation("hardswish") is F.hardswish
