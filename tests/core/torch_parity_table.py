"""Table-driven PyTorch parity: many cases checked in one compiled function per backend.

A :class:`Case` pairs a RustyASG expression with its PyTorch twin over the same numpy
operands. :func:`check_cases` builds every case's output and the gradient of
``sum(out_i * cotangent_i)`` with respect to every float operand into ONE function,
runs it on a backend, and compares values and gradients with PyTorch in float64.
Float operands run in float64 on the reference backend and float32 elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

import rustyasg.core as rg

TOLERANCES = {"reference": (1e-9, 1e-10), "cpu": (2e-4, 2e-5), "wgpu": (2e-4, 2e-5), "onnxruntime": (2e-4, 2e-5)}


@dataclass
class Case:
    """One expression: ``ours(*tensors)`` against ``theirs(*torch_tensors)`` on ``inputs``."""

    name: str
    inputs: Sequence[np.ndarray]
    ours: Callable
    theirs: Callable
    grad: bool = True
    tol_scale: float = 1.0
    extra: dict = field(default_factory=dict)


def _float(a) -> bool:
    return np.asarray(a).dtype.kind == "f"


def check_cases(cases: Sequence[Case], backend: str, seed: int = 0) -> None:
    dt = np.float64 if backend == "reference" else np.float32
    rng = np.random.default_rng(seed)
    feeds, inputs, outs, diff, expected, expected_grads = [], [], [], [], [], []
    for c in cases:
        arrays = [np.asarray(a).astype(dt) if _float(a) else np.asarray(a) for a in c.inputs]
        ins = [rg.input(a.shape, a.dtype, name=f"{c.name}_{i}") for i, a in enumerate(arrays)]
        out = c.ours(*ins)
        touts = [torch.tensor(np.asarray(a, np.float64) if _float(a) else a, requires_grad=c.grad and _float(a))
                 for a in arrays]
        want = c.theirs(*touts)
        assert tuple(out.shape) == tuple(want.shape), f"{c.name}: shape {out.shape} != torch {tuple(want.shape)}"
        feeds += arrays
        inputs += ins
        outs.append(out)
        expected.append(want.detach().numpy())
        if c.grad and want.dtype.is_floating_point and any(_float(a) for a in arrays):
            cot = rng.standard_normal(tuple(want.shape))
            want.backward(torch.tensor(cot))
            for i, t in zip(ins, touts):
                if t.requires_grad:
                    diff.append((c.name, i, rg.constant(cot.astype(dt)), out))
                    expected_grads.append(t.grad.numpy() if t.grad is not None else np.zeros(t.shape))
    pieces = {}
    for name, _, cot, out in diff:
        pieces.setdefault(name, rg.sum(out * cot))
    loss = None
    for p in pieces.values():
        loss = p if loss is None else loss + p
    grads = rg.grad(loss, [i for _, i, _, _ in diff]) if diff else []
    results = rg.function(inputs, outs + list(grads), backend=backend)(*feeds)
    results = results if isinstance(results, (list, tuple)) else [results]
    rtol, atol = TOLERANCES[backend]
    for c, got, want in zip(cases, results[:len(outs)], expected):
        _compare(f"{c.name} forward on {backend}", got, want, rtol * c.tol_scale, atol * c.tol_scale)
    scale = {c.name: c.tol_scale for c in cases}
    for (name, i, _, _), got, want in zip(diff, results[len(outs):], expected_grads):
        _compare(f"{name} gradient of {i.name} on {backend}", got, want, 10 * rtol * scale[name],
                 10 * atol * scale[name] * max(1.0, float(np.nanmax(np.abs(np.where(np.isinf(want), 0, want)),
                                                                  initial=0.0))))


def _compare(what, got, want, rtol, atol):
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=what)
