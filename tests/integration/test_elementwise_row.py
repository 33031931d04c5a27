"""Adding an elementwise op is one table row plus its gradient rule: it runs on reference, cpu and wgpu."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.ops.elementwise_table import ROWS, define_elementwise
from rustyasg.core.testing import check_op

_names = itertools.count()


@pytest.fixture(scope="module")
def softsign():
    """softsign(x) = x / (1 + |x|), declared once for this module, after the backends loaded their kernels."""
    from rustyasg.core.plugins import load_kernels

    load_kernels("cpu"), load_kernels("wgpu")  # the backends' tables exist before the row does
    name = f"softsign_row_{next(_names)}"
    build = define_elementwise(
        name, lambda x: x / (1.0 + np.abs(x)), lambda g, y, x: (g / ((1.0 + rg.abs(x)) * (1.0 + rg.abs(x))),),
        "x / (1 + |x|)", numba="{0} / ({T}(1) + abs({0}))", wgsl="({0} / ({T}(1.0) + abs({0})))", cast_inputs=True,
        plugin="tests-elementwise-row")  # a plugin's op, not the core's: suites over core ops stay exact
    yield name, build
    del ROWS[name]
    rg.OPS.pop(name, None)


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_one_row_runs_and_differentiates_on_every_backend(softsign, backend):
    name, build = softsign
    check_op(name, backend=backend, dtype="float32")  # forward vs float64 reference, gradient vs finite differences
    x = rg.input((2, 5), "float32", name="x")
    y = build(rg.exp(x) - 1.0) * 2.0  # fused with its neighbours
    xv = np.array([[np.nan, -np.inf, -1.0, 0.0, 1.0], [2.0, np.inf, -3.0, 0.5, -0.5]], np.float32)
    got = rg.function([x], y, backend=backend)(xv)
    with np.errstate(invalid="ignore"):
        e = np.expm1(xv.astype(np.float64))
        want = 2.0 * e / (1.0 + np.abs(e))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_row_is_what_the_backends_render(softsign):
    from rustyasg.core.plugins import load_kernels
    from rustyasg.wgpu.kernels.elementwise import OPS as WGSL

    name, _ = softsign
    assert load_kernels("cpu")[name].template == ROWS[name].numba
    assert WGSL[name] == (1, ROWS[name].wgsl) and name in load_kernels("wgpu")
