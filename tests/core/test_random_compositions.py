"""Random compositions of core ops against PyTorch: value, gradient and Hessian-vector product.

Each case is a seeded random graph (elementwise, reductions, broadcasting, movement,
indexing, matmul, softmax...; see ``random_graphs.py``) run on a backend and in PyTorch
(float64). The reference backend must agree to float64 rounding; cpu and wgpu run in
float32 and must agree within float32 tolerances scaled by the result's magnitude. Each
case runs again with one input element set to NaN, and with one set to +inf and another to
-inf: the NaNs and infinities of the output must sit where PyTorch's do, with the same signs
(numpy's IEEE semantics in every kernel, fused or not). Some cases are also built on inputs of
symbolic shape and specialised at the call, as a model built for any batch size is.

The seeds are fixed so CI is reproducible; ``RUSTYASG_RANDOM_SEED=<n>`` shifts them to
explore other graphs locally (a failure prints the seed and the composition).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import sys
import warnings

import numpy as np
import pytest

from rustyasg.core.errors import RustyASGError


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


SYMBOLIC_NAME = re.compile(r"\bn\d\b")


def build(case, backend: str, dtype: str, symbolic: bool):
    """The case's compiled function; None where a symbolic shape is refused with a RustyASG error
    that names the symbolic dimension (reshaping to a fixed size, an integer index along it...)."""
    try:
        return random_graphs.rg_function(case, backend, dtype, symbolic)
    except RustyASGError as exc:
        if symbolic and SYMBOLIC_NAME.search(str(exc)):
            return None
        raise


def assert_same_specials(got, want, what: str, case) -> None:
    """NaN and +-inf at the same positions as PyTorch's; the finite values close."""
    got = np.asarray(got, np.float64)
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        np.testing.assert_array_equal(test(got), test(want),
                                      err_msg=f"{what}: {name} positions differ from torch\n{case.describe()}")
    finite = np.isfinite(want)
    scale = 1.0 + (float(np.max(np.abs(want[finite]))) if finite.any() else 0.0)
    np.testing.assert_allclose(got[finite], want[finite], rtol=2e-3, atol=2e-3 * scale,
                               err_msg=f"{what}: finite values differ from torch\n{case.describe()}")


def check_case(seed: int, backend: str, dtype: str, n_steps: int = 6, symbolic: bool = False) -> bool:
    """Compare one case with PyTorch; False if its symbolic build was refused (see :func:`build`)."""
    case = random_graphs.draw_case(seed, n_steps)
    want = random_graphs.torch_results(case)
    special = {"NaN": random_graphs.with_nan(case), "+-inf": random_graphs.with_inf(case)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float64 reference on values torch also accepts
        fn = build(case, backend, dtype, symbolic)
        if fn is None:
            return False
        got = fn(*[x.astype(dtype) for x in case.inputs])
        got_special = {k: fn(*[x.astype(dtype) for x in xs])[0] for k, xs in special.items()}
    # NaN and inf propagate exactly as in PyTorch (and numpy), fused or not.
    for k, xs in special.items():
        assert_same_specials(got_special[k], random_graphs.torch_value(case, xs), f"{backend} with {k} inputs", case)
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
    return True


def _seeds(count: int, offset: int):
    return [BASE_SEED + offset + i for i in range(count)]


@pytest.mark.parametrize("seed", _seeds(300, 0))
def test_reference_float64_matches_torch(seed):
    check_case(seed, "reference", "float64")


@pytest.mark.parametrize("block", range(4))
def test_reference_symbolic_shapes_match_torch(block):
    """Built once on symbolic shapes, specialised at the call: the same results as torch. Most
    cases must build (a refusal names the symbolic dimension it cannot handle)."""
    built = sum(check_case(seed, "reference", "float64", symbolic=True) for seed in _seeds(25, 3000 + 25 * block))
    assert built >= 10, f"only {built} of 25 cases built on symbolic shapes"


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


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_symbolic_shapes_float32_match_torch(backend):
    built = sum(check_case(seed, backend, "float32", symbolic=True) for seed in _seeds(20, 4000))
    assert built >= 8, f"only {built} of 20 cases built on symbolic shapes"
