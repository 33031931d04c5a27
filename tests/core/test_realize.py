"""Tensors with no unfed inputs realize on demand, compiled once on the default backend; tensors
with inputs say which inputs lack values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.core import realize as realize_mod
from rustyasg.core.errors import RustyASGError, UnfedInputError


def test_conversions_give_the_value_and_one_compile_serves_every_read(monkeypatch):
    monkeypatch.setenv("RUSTYASG_BACKEND", "cpu")
    gen = np.random.default_rng(0)
    a = gen.standard_normal((3, 4)).astype(np.float32)
    w = rg.variable(a, name="w")
    y = rg.tanh(w @ w.T + 1.0)
    expected = np.tanh(a.astype(np.float64) @ a.T.astype(np.float64) + 1.0)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.asarray(y, dtype=np.float64).dtype == np.float64 and y.tolist()[0][0] == pytest.approx(expected[0, 0], rel=1e-5)
    s = y.sum()
    assert float(s) == pytest.approx(expected.sum(), rel=1e-5) and s.item() == pytest.approx(expected.sum(), rel=1e-5)
    assert int(rg.constant(np.array(7.9, np.float32)) * 1.0) == 7 and bool(s > -100.0) and not bool(s > 100.0)
    assert f"{s:.3f}" == f"{expected.sum():.3f}"
    assert repr(y).startswith("Tensor([[") and repr(y).endswith("dtype=float32)") and str(y) == repr(y)

    fn = realize_mod._compiled[(y.id, "cpu")]
    assert fn.backend.name == "cpu" and fn.stats["compiles"] == 1
    b = gen.standard_normal((3, 4)).astype(np.float32)
    w.assign(b)  # the current value of the variable, through the same compiled function
    np.testing.assert_allclose(np.asarray(y), np.tanh(b.astype(np.float64) @ b.T + 1.0), rtol=1e-5, atol=1e-6)
    assert fn.stats["compiles"] == 1


def test_the_default_backend_is_used(monkeypatch):
    monkeypatch.setenv("RUSTYASG_BACKEND", "reference")
    t = rg.constant(np.arange(4.0)) * 2.0
    assert t.numpy().tolist() == [0.0, 2.0, 4.0, 6.0]
    assert (t.id, "reference") in realize_mod._compiled


def test_a_tensor_with_unfed_inputs_names_them():
    x = rg.input((None, 3), name="features")
    w = rg.variable(np.ones((3, 2), np.float32), name="w")
    y = x @ w
    for read in (np.asarray, float, lambda t: t.item(), lambda t: t.numpy()):
        with pytest.raises(UnfedInputError, match=r"depends on input\(s\) features float32\(features.0, 3\) \(created at "
                                                  r".*test_realize.py:\d+\).*rg.function\(\[features, \.\.\.\]"):
            read(y)
    assert issubclass(UnfedInputError, RustyASGError)
    with pytest.raises(TypeError, match="no truth value.*features"):
        bool(y.sum() > 0)
    assert repr(y) == "<Tensor matmul float32(features.0, 2)>"
    with pytest.raises(TypeError, match="needs a tensor with one element"):
        float(w)
    with pytest.raises(TypeError, match="symbolic dimensions"):
        y.numel()
    assert w.numel() == 6 and (w @ w.T).numel() == 9


def test_a_model_called_on_numpy_works_like_pytorch():
    nn.init.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.Linear(8, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    out = model(x)
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-6)
    assert int(out.argmax(axis=1)[0]) == int(expected.argmax(axis=1)[0])
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in theirs.parameters())
