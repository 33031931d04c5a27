"""Shared fixtures of the nn tests: the backend under test, seeded generators and the PyTorch parity check.

``parity`` compares one of our modules with its PyTorch twin: the torch module's
weights are loaded into ours, both run on the same random inputs, and a random
cotangent is pulled back through each; outputs and gradients with respect to
every floating input and every parameter must agree (1e-5 relative in float32,
1e-10 in float64).
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np
import pytest
import torch

import rustyasg.core as rg

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


@pytest.fixture
def backend() -> str:
    """Backend name for compiled functions (``RUSTYASG_TEST_BACKEND``, default ``cpu``)."""
    return os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded numpy generator per test."""
    return np.random.default_rng(1234)


def assert_close(actual, expected, tol: float, what: str) -> None:
    """Elementwise ``rtol=tol`` with an absolute floor of ``tol`` times the largest reference magnitude."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * max(scale, 1e-3), err_msg=what)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


class Parity:
    """Runs the comparison; see the module docstring."""

    tolerance = TOLERANCE
    assert_close = staticmethod(assert_close)

    def __init__(self, backend: str):
        self.backend = backend

    def __call__(self, ours, theirs: torch.nn.Module, inputs: Sequence[np.ndarray], dtype: str = "float32",
                 call: Optional[Callable] = None, torch_call: Optional[Callable] = None, seed: int = 0,
                 load: bool = True, tol: Optional[float] = None, check_param_grads: bool = True):
        """``call(module, *symbolic_inputs)`` / ``torch_call(module, *tensors)`` default to ``module(*inputs)``.

        Returns the numpy outputs of our module, for extra assertions.
        """
        tol = TOLERANCE[dtype] if tol is None else tol
        call = call or (lambda m, *xs: m(*xs))
        torch_call = torch_call or call
        theirs = theirs.to(getattr(torch, dtype))
        ours.to(dtype)
        if load:
            ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        arrays = [np.asarray(a, dtype if np.asarray(a).dtype.kind == "f" else None) for a in inputs]

        # PyTorch side
        t_inputs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        t_out = _as_list(torch_call(theirs, *t_inputs))
        gen = np.random.default_rng(seed)
        cotangents = [gen.standard_normal(tuple(o.shape)).astype(dtype) for o in t_out]
        t_loss = sum((o * torch.tensor(c)).sum() for o, c in zip(t_out, cotangents))
        t_loss.backward()
        names = list(ours.named_parameters()) if check_param_grads else []
        t_params = dict(theirs.named_parameters())

        # our side
        sym = [rg.input(a.shape, a.dtype, name=f"in{i}") for i, a in enumerate(arrays)]
        cots = [rg.input(c.shape, c.dtype, name=f"cot{i}") for i, c in enumerate(cotangents)]
        out = _as_list(call(ours, *sym))
        assert len(out) == len(t_out), f"{len(out)} outputs vs torch's {len(t_out)}"
        loss = sum((o * c).sum() for o, c in zip(out, cots))
        float_inputs = [s for s, a in zip(sym, arrays) if a.dtype.kind == "f"]
        params = [ours.named_parameters()[n] for n in names]
        grads = rg.grad(loss, float_inputs + params)
        fn = rg.function(sym + cots, out + grads, backend=self.backend)
        values = fn(*arrays, *cotangents)
        ours_out, ours_grads = values[:len(out)], values[len(out):]

        for i, (a, b) in enumerate(zip(ours_out, t_out)):
            assert a.dtype == np.dtype(dtype), f"output {i} has dtype {a.dtype}, expected {dtype}"
            assert_close(a, b.detach().numpy(), tol, f"output {i}")
        expected = [t.grad for t, a in zip(t_inputs, arrays) if a.dtype.kind == "f"]
        expected += [t_params[n].grad for n in names]
        labels = [f"grad input {i}" for i, a in enumerate(arrays) if a.dtype.kind == "f"] + [f"grad {n}" for n in names]
        for g, e, label in zip(ours_grads, expected, labels):
            e = np.zeros(g.shape) if e is None else e.numpy()
            assert_close(g, e, tol, label)
        return ours_out


@pytest.fixture
def parity(backend) -> Parity:
    """The PyTorch parity check bound to the backend under test."""
    torch.manual_seed(0)
    return Parity(backend)
