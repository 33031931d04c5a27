"""Random compositions of core ops against PyTorch: value, gradient and Hessian-vector product.

Each case is a seeded random graph (elementwise, reductions, broadcasting, movement,
indexing, matmul, softmax...; see ``random_graphs.py``) run on a backend and in PyTorch
(float64). The reference backend must agree to float64 rounding; cpu and wgpu run in
float32 and must agree within float32 tolerances scaled by the result's magnitude. Each
case runs a second time with one input element set to NaN: the NaNs of the output must sit
where PyTorch's do (numpy's NaN semantics in every kernel, fused or not).

The seeds are fixed so CI is reproducible; ``RUSTYASG_RANDOM_SEED=<n>`` shifts them to
explore other graphs locally (a failure prints the seed and the composition).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
import warnings

import numpy as np
import pytest


def _load_sibling(name: str):
    """Import ``name``.py beside this file whatever pytest's import mode (rootdir, namespace packages)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]


random_graphs = _load_sibling("random_graphs")

BASE_SEED = int(os.environ.get("RUSTYASG_RANDOM_SEED", "0"))
TOLERANCES = {"float64": (1e-6, 1e-8), "float32": (2e-3, 2e-3)}  # rtol, atol (atol scales with |result|)


def check_case(seed: int, backend: str, dtype: str, n_steps: int = 6) -> None:
    case = random_graphs.draw_case(seed, n_steps)
    want = random_graphs.torch_results(case)
    nan_inputs = random_graphs.with_nan(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float64 reference on values torch also accepts
        fn = random_graphs.rg_function(case, backend, dtype)
        got = fn(*[x.astype(dtype) for x in case.inputs])
        got_nan = np.asarray(fn(*[x.astype(dtype) for x in nan_inputs])[0], np.float64)
    # NaN propagates exactly where it does in PyTorch (and numpy): same NaN positions, same other values.
    want_nan = random_graphs.torch_value(case, nan_inputs)
    np.testing.assert_array_equal(np.isnan(got_nan), np.isnan(want_nan),
                                  err_msg=f"{backend}: NaN positions differ from torch\n{case.describe()}")
    n = len(case.inputs)
    labels = ["value"] + [f"gradient of input {i}" for i in range(n)] + [f"Hessian-vector product, input {i}"
                                                                           for i in range(n)]
    rtol, atol = TOLERANCES[dtype]
    for label, g, w in zip(labels, got, want):
        g = np.asarray(g, np.float64)
        scale = 1.0 + (float(np.max(np.abs(w))) if w.size else 0.0)
        assert g.shape == w.shape, f"{label}: shape {g.shape} != torch's {w.shape}\n{case.describe()}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale,
                                   err_msg=f"{backend} {label} differs from torch\n{case.describe()}")


def _seeds(count: int, offset: int):
    return [BASE_SEED + offset + i for i in range(count)]


@pytest.mark.parametrize("seed", _seeds(300, 0))
def test_reference_float64_matches_torch(seed):
    check_case(seed, "reference", "float64")


def test_generator_covers_every_op_family():
    """The draws reach every op of the table (a generator stuck on a few ops would test little)."""
    seen = {s.op.name for seed in _seeds(300, 0) for s in random_graphs.draw_case(seed, 6).steps if s.op}
    assert seen == {op.name for op in random_graphs.ALL_OPS}


def test_a_wrong_gradient_is_caught():
    """The comparison can fail: a case whose torch side is perturbed must not pass."""
    case = random_graphs.draw_case(BASE_SEED + 1, 4)
    want = random_graphs.torch_results(case)
    got = random_graphs.rg_function(case, "reference", "float64")(*case.inputs)
    grad = np.asarray(got[1]) + 1e-3 * (1.0 + np.abs(np.asarray(got[1])))
    assert not np.allclose(grad, want[1], rtol=1e-6, atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds(60, 1000))
def test_cpu_float32_matches_torch(seed):
    check_case(seed, "cpu", "float32")


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds(60, 2000))
def test_wgpu_float32_matches_torch(seed):
    check_case(seed, "wgpu", "float32")
