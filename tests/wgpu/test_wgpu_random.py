"""Random draws on wgpu keep what the ops promise: the uniform bits are identical to the reference's,
values agree to float32 rounding (wgpu computes float64 in float32), and the distributions are right.
``rustyasg check wgpu`` checks them unmodified, at the precision the backend declares."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core import cli
from rustyasg.core.testing import check_all_ops

SEED = np.int64(0x1234_5678_9ABC)


def draw(op, backend, n, dtype, **attrs):
    seed = rg.input((), "int64", name="seed")
    return rg.function([seed], rg.apply(op, seed, shape=(n,), salt=5, dtype=dtype, **attrs), backend=backend)(SEED)


def test_the_conformance_examples_pass_as_registered_at_the_declared_precision(capsys):
    assert rg.get_backend("wgpu").compute_dtype("float64") == np.float32
    assert rg.get_backend("cpu").compute_dtype("float64") == np.float64
    assert check_all_ops("wgpu", "float32", ops=["random_normal", "random_uniform"]) == {}
    assert cli.main(["check", "wgpu", "--op", "random_normal", "--op", "random_uniform"]) == 0
    assert "all 2 checked op(s) conform on wgpu (float32)" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unit_uniforms_are_bit_identical_to_the_reference(dtype):
    # low=0, high=1: the 24-bit uniform is exact in float32, so the bits themselves are compared.
    ours = draw("random_uniform", "wgpu", 4096, dtype)
    ref = draw("random_uniform", "reference", 4096, dtype)
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(ours, ref)
    assert np.array_equal(ours * 16777216.0, np.floor(ours * 16777216.0))  # 24 bits each


def test_scaled_and_normal_draws_agree_to_float32_rounding():
    for op, attrs, tol in (("random_uniform", {"low": -1.0, "high": 2.0}, 2.0 ** -22),
                           ("random_normal", {"mean": 0.5, "std": 2.0}, 2.0 ** -15)):
        ours = draw(op, "wgpu", 4096, "float64", **attrs)
        ref = draw(op, "reference", 4096, "float64", **attrs)
        scale = np.maximum(np.abs(ref), 1.0)
        assert np.max(np.abs(ours - ref) / scale) < tol, op


def ks_statistic(samples, cdf) -> float:
    x = np.sort(samples)
    n = x.size
    c = cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - c), np.max(c - np.arange(n) / n)))


def test_distributions_on_wgpu_pass_kolmogorov_smirnov():
    n = 200_000
    bound = 1.63 / math.sqrt(n)  # the 1% critical value
    u = draw("random_uniform", "wgpu", n, "float32", low=-3.0, high=5.0)
    assert u.min() >= -3.0 and u.max() < 5.0
    assert ks_statistic(u.astype(np.float64), lambda x: (x + 3.0) / 8.0) < bound
    z = draw("random_normal", "wgpu", n, "float32", mean=0.5, std=2.0).astype(np.float64)
    erf = np.vectorize(math.erf)
    assert ks_statistic(z, lambda x: 0.5 * (1.0 + erf((x - 0.5) / (2.0 * math.sqrt(2.0))))) < bound
    assert abs(z.mean() - 0.5) < 4 * 2.0 / math.sqrt(n) and abs(z.std() - 2.0) < 0.02
