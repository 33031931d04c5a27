"""svdvals, its gradient and the singular-value matrix norms against PyTorch, finite differences and
the edge conventions (NaN/inf matrices, zero and empty matrices), on every backend.

Values and gradients run in float64 on the reference backend and float32 on cpu and wgpu
(``torch_parity_table``); singular values of random matrices are distinct, so the gradient
``U diag(g) Vh`` is unique and comparable.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.core.testing import numerical_grad

BACKENDS = ["reference", "cpu", "wgpu"]
FLOAT = {"reference": np.float64, "cpu": np.float32, "wgpu": np.float32}


def _load_sibling(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


parity = _load_sibling("torch_parity_table")
Case = parity.Case
R = np.random.default_rng(20)
SHAPES = {"square": (4, 4), "tall": (6, 3), "wide": (2, 5), "row": (1, 7), "column": (5, 1),
          "batched": (2, 3, 4, 3), "empty batch": (0, 3, 4), "bigger": (2, 20, 13)}


def _cases():
    cases = [Case(f"svdvals {name}", [R.standard_normal(shape)], rg.svdvals, torch.linalg.svdvals)
             for name, shape in SHAPES.items()]
    cases.append(Case("rg.linalg.svdvals", [R.standard_normal((3, 2))], rg.linalg.svdvals, torch.linalg.svdvals))
    x = R.standard_normal((3, 4, 5))
    for ord_ in ("nuc", 2, -2):
        for dim, keep in (((-2, -1), False), ((0, 2), True), ((2, 0), False)):
            cases.append(Case(f"matrix_norm {ord_} {dim} {keep}", [x],
                              lambda t, o=ord_, d=dim, k=keep: rg.matrix_norm(t, o, d, k),
                              lambda t, o=ord_, d=dim, k=keep: torch.linalg.matrix_norm(t, o, d, k)))
        cases.append(Case(f"matrix_norm {ord_} empty batch", [R.standard_normal((0, 2, 3))],
                          lambda t, o=ord_: rg.matrix_norm(t, o), lambda t, o=ord_: torch.linalg.matrix_norm(t, o)))
    cases += [
        Case("matrix_norm 2 of 1xN", [R.standard_normal((2, 1, 6))], lambda t: rg.matrix_norm(t, 2),
             lambda t: torch.linalg.matrix_norm(t, 2)),
        Case("linalg.norm 2 two axes", [x], lambda t: rg.linalg.norm(t, 2, (1, 2)),
             lambda t: torch.linalg.norm(t, 2, (1, 2))),
        Case("linalg.norm 2-D nuc", [x[0]], lambda t: rg.linalg.norm(t, "nuc"), lambda t: torch.linalg.norm(t, "nuc")),
        Case("linalg.norm vector", [x], lambda t: rg.linalg.norm(t, 3, -1), lambda t: torch.linalg.norm(t, 3, -1)),
        Case("linalg.norm all", [x], rg.linalg.norm, torch.linalg.norm),
        Case("norm nuc", [x], lambda t: rg.norm(t, "nuc", (0, 1)), lambda t: torch.norm(t, "nuc", (0, 1))),
        Case("matrix_norm nuc of a matrix with no column", [np.zeros((2, 3, 0))], lambda t: rg.matrix_norm(t, "nuc"),
             lambda t: torch.linalg.matrix_norm(t, "nuc"), grad=False),
        Case("matrix_norm 2 of a matrix with no row", [np.zeros((0, 4))], lambda t: rg.matrix_norm(t, 2),
             lambda t: torch.linalg.matrix_norm(t, 2), grad=False),  # PyTorch's result has no gradient here
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_and_gradients_match_torch(backend):
    parity.check_cases(CASES, backend)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 2, 5)])
def test_gradient_matches_finite_differences(shape):
    a = R.standard_normal(shape)
    k = min(shape[-2:])
    cot = R.standard_normal(shape[:-2] + (k,))
    x = rg.input(shape, "float64", name="a")
    (gx,) = rg.grad(rg.sum(rg.svdvals(x) * rg.constant(cot)), [x])
    got = rg.function([x], gx, backend="reference")(a)
    want = numerical_grad(lambda m: np.linalg.svd(m, compute_uv=False), [a], 0, cot)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_matrix_with_nan_or_inf_gives_nan_and_leaves_the_others_alone(backend):
    dt = FLOAT[backend]
    a = R.standard_normal((4, 3, 3)).astype(dt)
    a[1, 0, 2], a[2, 1, 1], a[3, 2, 0] = np.nan, np.inf, -np.inf
    x = rg.input(a.shape, dt, name="a")
    s = rg.svdvals(x)
    (gx,) = rg.grad(rg.sum(s), [x])
    values, grad = rg.function([x], [s, gx], backend=backend)(a)
    assert np.isnan(values[1:]).all() and np.isnan(grad[1:]).all()
    # PyTorch's CPU refuses non-finite input; the finite matrix is compared with it.
    t = torch.tensor(a[:1].astype(np.float64), requires_grad=True)
    torch.linalg.svdvals(t).sum().backward()
    np.testing.assert_allclose(values[:1], torch.linalg.svdvals(t).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad[:1], t.grad.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_and_rank_deficient_matrices(backend):
    dt = FLOAT[backend]
    u = R.standard_normal((5, 2))
    a = np.stack([np.zeros((5, 4)), u @ R.standard_normal((2, 4))]).astype(dt)  # rank 0 and rank 2
    x = rg.input(a.shape, dt, name="a")
    s = rg.svdvals(x)
    (gx,) = rg.grad(rg.sum(rg.matrix_norm(x, 2)), [x])
    values, grad = rg.function([x], [s, gx], backend=backend)(a)
    want = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(values, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(grad[0], 0.0)  # an exactly zero singular value contributes 0
    t = torch.tensor(a[1].astype(np.float64), requires_grad=True)
    torch.linalg.matrix_norm(t, 2).backward()  # the largest singular value is simple: a unique gradient
    np.testing.assert_allclose(grad[1], t.grad.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_extreme_scales_keep_their_relative_accuracy(backend, scale):
    a = (R.standard_normal((2, 8, 6)) * scale).astype(np.float32)
    x = rg.input(a.shape, "float32", name="a")
    got = rg.function([x], rg.svdvals(x), backend=backend)(a)
    want = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_repeated_singular_values(backend):
    q, _ = np.linalg.qr(R.standard_normal((6, 6)))
    a = (3.0 * q).astype(np.float32)  # every singular value is 3
    x = rg.input(a.shape, "float32", name="a")
    got = rg.function([x], rg.svdvals(x), backend=backend)(a)
    np.testing.assert_allclose(got, np.full(6, 3.0), rtol=1e-5)


@pytest.mark.slow
def test_a_large_matrix_on_wgpu():
    a = R.standard_normal((96, 80)).astype(np.float32)
    x = rg.input(a.shape, "float32", name="a")
    s = rg.svdvals(x)
    (gx,) = rg.grad(rg.matrix_norm(x, "nuc"), [x])
    values, grad = rg.function([x], [s, gx], backend="wgpu")(a)
    t = torch.tensor(a.astype(np.float64), requires_grad=True)
    torch.linalg.matrix_norm(t, "nuc").backward()
    np.testing.assert_allclose(values, torch.linalg.svdvals(t).detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: rg.svdvals(rg.input((4,), name="v")), rg.ShapeError, r"\(\.\.\., m, n\) batch of matrices"),
    (lambda: rg.svdvals(rg.input((), name="s")), rg.ShapeError, "rank 0"),
    (lambda: rg.svdvals(rg.input((3, 3), "int32", name="i")), rg.DTypeError, "floating"),
    (lambda: rg.svdvals_grad(rg.input((3, 4), name="a"), rg.input((4,), name="g")), rg.ShapeError,
     r"has shape \(3,\), got \(4,\)"),
    (lambda: rg.matrix_norm(rg.input((3, 0), name="e"), -2), ValueError, "minimum of no singular value"),
    (lambda: rg.linalg.norm(rg.input((2, 3, 4), name="t"), 2), ValueError, "1-D or 2-D"),
    (lambda: rg.linalg.norm(rg.input((2, 3), name="t"), "nuc", 1), ValueError, "needs two axes"),
])
def test_mistakes_are_build_time_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_second_order_gradients_are_refused():
    x = rg.input((3, 3), "float64", name="a")
    (gx,) = rg.grad(rg.matrix_norm(x, 2), [x])
    with pytest.raises(rg.NotDifferentiableError, match="svdvals_grad"):
        rg.grad(rg.sum(gx * gx), [x])


def test_matrix_norm_2_is_the_largest_singular_value_over_any_axes():
    a = R.standard_normal((3, 2, 4))
    got = rg.matrix_norm(rg.constant(a), 2, dim=(2, 0)).numpy()
    want = np.linalg.norm(np.moveaxis(a, (2, 0), (-2, -1)), 2, axis=(-2, -1))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert math.isclose(float(rg.linalg.norm(rg.constant(a[0]), -2)), np.linalg.norm(a[0], -2), rel_tol=1e-12)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_long_vectors_take_several_launches_per_sweep_on_wgpu(backend):
    from rustyasg.wgpu.kernels.svd_ops import rounds_per_launch

    a = R.standard_normal((2500, 20)).astype(np.float32)
    assert rounds_per_launch(20, 2500) < 19  # a sweep's 19 rounds are cut into several launches
    x = rg.input(a.shape, "float32", name="a")
    s = rg.svdvals(x)
    (gx,) = rg.grad(rg.matrix_norm(x, 2), [x])
    values, grad = rg.function([x], [s, gx], backend=backend)(a)
    t = torch.tensor(a.astype(np.float64), requires_grad=True)
    torch.linalg.matrix_norm(t, 2).backward()
    np.testing.assert_allclose(values, torch.linalg.svdvals(t).detach().numpy(), rtol=1e-4)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-3, atol=1e-5)


def test_wgpu_refuses_a_matrix_whose_round_outgrows_a_thread():
    from rustyasg.wgpu.kernels.api import KernelError

    x = rg.input((2, 40000), "float32", name="a")
    with pytest.raises(KernelError, match=r"svdvals of 2x40000 matrices.*backend='cpu'"):
        rg.function([x], rg.svdvals(x), backend="wgpu")(np.ones((2, 40000), np.float32))
