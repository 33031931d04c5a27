"""The cpu's 16-bit float word conversions (numba has neither float16 nor bfloat16): exact against numpy/ml_dtypes."""

from __future__ import annotations

import ml_dtypes
import numba
import numpy as np
import pytest

from rustyasg.cpu.kernels.bfloat16 import bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16

DTYPES = {"float16": (np.dtype(np.float16), f16_to_f32, f32_to_f16),
          "bfloat16": (np.dtype(ml_dtypes.bfloat16), bf16_to_f32, f32_to_bf16)}


def _kernels(load, store):
    @numba.njit
    def widen(words, out):
        for i in range(words.size):
            out[i] = load(words[i])

    @numba.njit
    def narrow(values, out):
        for i in range(values.size):
            out[i] = store(values[i])

    return widen, narrow


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_every_word_widens_exactly(name):
    dtype, load, store = DTYPES[name]
    widen, _ = _kernels(load, store)
    words = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = np.empty(words.size, np.float32)
    widen(words, got)
    want = words.view(dtype).astype(np.float32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), words[~same][:8]


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_narrowing_rounds_to_nearest_even_like_numpy(name):
    dtype, load, store = DTYPES[name]
    _, narrow = _kernels(load, store)
    rng = np.random.default_rng(0)
    exact = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype).astype(np.float32)
    exact = np.sort(exact[np.isfinite(exact)])
    values = np.concatenate(
        [rng.standard_normal(50_000).astype(np.float32) * s for s in (1e-40, 1e-8, 1e-5, 1e-2, 1.0, 1e3, 6e4, 1e30)]
        + [exact, (exact[:-1] + exact[1:]) / 2,                      # ties between neighbours
           np.array([0.0, -0.0, np.inf, -np.inf, 65504.0, 65520.0, 3.4e38, -3.4e38], np.float32)])
    values = values.astype(np.float32)
    got = np.empty(values.size, np.uint16)
    narrow(values, got)
    with np.errstate(all="ignore"):
        want = values.astype(dtype).view(np.uint16)
    assert np.array_equal(got, want), values[got != want][:8]
    nan = np.array([np.nan, -np.nan], np.float32)
    out = np.empty(2, np.uint16)
    narrow(nan, out)
    assert np.isnan(out.view(dtype).astype(np.float32)).all()


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_rounding_in_registers_equals_narrowing_then_widening(name):
    # fused kernels carry rounded values as float32 (round_bf16 stays in 32-bit lanes): it must be
    # the exact composition of the store and the load, on every upper half and the critical lower halves
    from rustyasg.cpu.kernels.bfloat16 import round_bf16, round_f16

    dtype, load, store = DTYPES[name]
    rnd = {"bfloat16": round_bf16, "float16": round_f16}[name]

    @numba.njit
    def both(values, rounded, composed):
        for i in range(values.size):
            rounded[i] = rnd(values[i])
            composed[i] = load(store(values[i]))

    upper = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    low = np.array([0, 1, 0x1000, 0x7FFF, 0x8000, 0x8001, 0xFFFF], np.uint32)
    values = (upper[:, None] | low[None, :]).ravel().view(np.float32)
    rounded, composed = np.empty_like(values), np.empty_like(values)
    both(values, rounded, composed)
    nan = np.isnan(composed)
    assert np.array_equal(np.isnan(rounded), nan)
    assert np.array_equal(rounded[~nan].view(np.uint32), composed[~nan].view(np.uint32))
    with np.errstate(all="ignore"):
        want = values.astype(dtype).astype(np.float32)
    assert np.array_equal(rounded[~nan].view(np.uint32), want[~nan].view(np.uint32))
