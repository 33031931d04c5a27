"""Gradient clipping transforms against torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.nn import clip_grad_norm, clip_grad_value

SHAPES = [(3, 4), (5,), (2, 2, 3)]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm, dtype, rng, backend):
    arrays = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [rg.input(s, dtype, name=f"g{i}") for i, s in enumerate(SHAPES)]
    clipped, norm = clip_grad_norm([grads[0], None, grads[1], grads[2]], max_norm, norm_type)
    assert clipped[1] is None
    be = backend if dtype == "float32" else "reference"
    out = rg.function(grads, [norm] + [c for c in clipped if c is not None], backend=be)(*arrays)
    ts = [torch.zeros(s, dtype=getattr(torch, dtype), requires_grad=True) for s in SHAPES]
    for t, a in zip(ts, arrays):
        t.grad = torch.tensor(a)
    expected_norm = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type=norm_type)
    tol = 1e-10 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(out[0], expected_norm.numpy(), rtol=tol)
    for ours, t in zip(out[1:], ts):
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=tol, atol=tol * 1e-2)
    if max_norm < 1:
        assert not np.allclose(out[1], arrays[0])  # clipping did happen


def test_clip_grad_value_matches_pytorch(rng):
    arrays = [rng.normal(size=s) for s in SHAPES]
    grads = [rg.input(s, "float64", name=f"g{i}") for i, s in enumerate(SHAPES)]
    out = rg.function(grads, clip_grad_value(grads, 0.3), backend="reference")(*arrays)
    ts = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for t, a in zip(ts, arrays):
        t.grad = torch.tensor(a)
    torch.nn.utils.clip_grad_value_(ts, 0.3)
    for ours, t in zip(out, ts):
        np.testing.assert_array_equal(ours, t.grad.numpy())


def test_limits_as_variables_change_without_recompiling(rng):
    g = rg.input((4,), "float64", name="g")
    limit = rg.variable(np.array(1.0), name="max_norm", trainable=False)
    vlimit = rg.variable(np.array(0.5), name="clip_value", trainable=False)
    (by_norm,), _ = clip_grad_norm([g], limit)
    (by_value,) = clip_grad_value([g], vlimit)
    fn = rg.function([g], [by_norm, by_value], backend="reference")
    x = np.array([3.0, -4.0, 0.0, 0.2])
    for m, v in ((1.0, 0.5), (2.0, 0.1), (100.0, 10.0)):
        limit.assign(np.array(m))
        vlimit.assign(np.array(v))
        a, b = fn(x)
        n = np.linalg.norm(x)
        np.testing.assert_allclose(a, x * min(1.0, m / (n + 1e-6)), rtol=1e-12)
        np.testing.assert_array_equal(b, np.clip(x, -v, v))
    assert fn.stats["compiles"] == 1


def test_bad_arguments():
    g = rg.input((3,), name="g")
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm([g], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="no gradients"):
        clip_grad_norm([None], 1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value([g], -1.0)


@pytest.mark.parametrize("name", ['rustyasg.nn.clip'])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
