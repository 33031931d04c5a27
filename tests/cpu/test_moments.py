"""A mean and a variance of one value over the same axes run as one kernel (``cpu_moments``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.cpu.kernels.protocol import SMALL_ALONE

EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e-30], np.float32)


def _labels(f, *args):
    return [line.split("(")[0] for line in f.compile(*args).describe().splitlines()]


def _case(rng, shape, axes, correction, dtype, edges, backend="cpu"):
    x = rg.input(shape, dtype, name="x")
    f = rg.function([x], [x.mean(axis=axes), x.var(axis=axes, correction=correction)], backend=backend)
    xv = (rng.standard_normal(shape) * 3 + 1000).astype(dtype)  # an offset: a one-pass variance would fail
    if edges and xv.size:
        flat = xv.reshape(-1)
        k = min(len(EDGES), flat.size // 3)
        flat[rng.choice(flat.size, k, replace=False)] = EDGES[:k]
    return f, xv


def _check(f, xv, axes, correction):
    got_mean, got_var = f(xv)
    x64 = xv.astype(np.float64)
    with np.errstate(all="ignore"):
        want_mean = x64.mean(axis=axes)
        n = x64.size // max(want_mean.size, 1) if x64.size else 0
        want_var = ((x64 - x64.mean(axis=axes, keepdims=True)) ** 2).sum(axis=axes) / max(n - correction, 0)
    tol = 1e-6 if xv.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got_mean, want_mean.astype(xv.dtype), rtol=tol, atol=0)
    np.testing.assert_allclose(got_var, want_var.astype(xv.dtype), rtol=10 * tol, atol=0)


@pytest.mark.parametrize("seed", range(16))
def test_random_channel_statistics_come_from_one_kernel_and_match_float64(seed):
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(2, 5))
    shape = [int(v) for v in rng.integers(1, 9, nd)]
    shape[0] = max(shape[0], SMALL_ALONE // math.prod(shape[1:]) + 1)  # past numpy's size
    shape = tuple(shape)
    lo = int(rng.integers(0, nd))
    hi = int(rng.integers(lo, nd))
    axes = tuple(d for d in range(nd) if not lo <= d <= hi) or (0,)  # keeps the adjacent block lo..hi
    correction = int(rng.integers(0, 3))
    dtype = "float32" if seed % 4 else "float64"
    f, xv = _case(rng, shape, axes, correction, dtype, edges=seed % 3 == 0)
    labels = _labels(f, xv)
    if len(axes) < nd:
        assert labels == ["numba.channel_moments"], labels
    _check(f, xv, axes, correction)
    reference, _ = _case(rng, shape, axes, correction, dtype, edges=False, backend="reference")
    for got, want in zip(f(xv), reference(xv)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)


def test_a_batch_norms_statistics_and_their_edges():
    rng = np.random.default_rng(7)
    shape, axes = (16, 4, 12, 12), (0, 2, 3)
    f, xv = _case(rng, shape, axes, 1, "float32", edges=False)
    xv[:, 1] = np.inf  # one channel infinite: mean inf, variance NaN (inf - inf)
    xv[2, 2, 0, 0] = np.nan  # one NaN: its channel's mean and variance NaN
    assert _labels(f, xv) == ["numba.channel_moments"]
    mean, var = f(xv)
    assert np.isinf(mean[1]) and np.isnan(var[1]) and np.isnan(mean[2]) and np.isnan(var[2])
    _check(f, xv, axes, 1)


@pytest.mark.parametrize("shape,correction,kernel", [((1, 9000, 1), 1, True), ((2, 9000, 1), 5, True),
                                                     ((0, 3, 2), 1, False), ((2, 3, 1), 5, False)])
def test_a_correction_at_or_past_the_count_and_empty_channels_give_numpys_inf_and_nan(shape, correction, kernel):
    x = rg.input(shape, "float32", name="x")
    f = rg.function([x], [x.mean(axis=(0, 2)), x.var(axis=(0, 2), correction=correction)], backend="cpu")
    xv = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) * 0.5 + 1
    assert ("numba.channel_moments" in _labels(f, xv)) == kernel  # small ones stay numpy's
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = (xv.mean(axis=(0, 2)), xv.var(axis=(0, 2), ddof=correction))
    for got, w in zip(f(xv), want):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(w))
        np.testing.assert_allclose(got[~np.isnan(w)], w[~np.isnan(w)], rtol=1e-6)


def test_a_variance_without_its_mean_small_values_and_axes_that_are_not_a_block_stay_as_they_were():
    x = rg.input((40, 30, 50), "float32", name="x")
    xv = np.random.default_rng(1).standard_normal((40, 30, 50)).astype(np.float32)
    alone = rg.function([x], x.var(axis=(0, 2)), backend="cpu")
    assert "numba.channel_moments" not in _labels(alone, xv)
    split = rg.function([x], [x.mean(axis=1), x.var(axis=1)], backend="cpu")  # kept axes 0 and 2
    assert "numba.channel_moments" not in _labels(split, xv)
    np.testing.assert_allclose(split(xv)[1], xv.astype(np.float64).var(axis=1, ddof=1), rtol=1e-5)  # torch's default
    s = rg.input((4, 3, 5), "float32", name="s")  # 60 values: numpy's mean and var, nothing to compile
    sv = xv[:4, :3, :5].copy()
    small = rg.function([s], [s.mean(axis=(0, 2)), s.var(axis=(0, 2))], backend="cpu")
    assert "numba.channel_moments" not in _labels(small, sv)
    np.testing.assert_allclose(small(sv)[1], sv.astype(np.float64).var(axis=(0, 2), ddof=1), rtol=1e-5)


def test_a_whole_array_mean_and_variance_are_one_channel():
    x = rg.input((100, 120), "float32", name="x")
    xv = (np.random.default_rng(4).standard_normal((100, 120)) * 0.01 + 1000).astype(np.float32)
    f = rg.function([x], [x.mean(), x.var()], backend="cpu")
    assert _labels(f, xv) == ["numba.channel_moments"]
    _check(f, xv, (0, 1), 1)


def test_a_batch_norm_and_its_running_statistics_read_one_statistics_kernel():
    import rustyasg.nn as nn

    nn.init.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    x = rg.input((32, 4, 10, 10), "float32", name="x")
    y = bn(x)
    updates = bn.state_updates()
    f = rg.function([x], y, updates=updates, backend="cpu")
    xv = (np.random.default_rng(2).standard_normal((32, 4, 10, 10)) * 2 + 3).astype(np.float32)
    labels = _labels(f, xv)
    assert labels.count("numba.channel_stats") == 1 and "numpy.moments_from_stats" in labels
    assert "numba.channel_moments" not in labels
    f(xv)
    x64 = xv.astype(np.float64)
    np.testing.assert_allclose(bn.running_mean.value(), 0.1 * x64.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.value(), 0.9 + 0.1 * x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-6)
