"""Convolutions of 16-bit inputs build their float32 columns a few images at a time (cpu).

Such a convolution and its weight gradient read the 16-bit input itself: no float32 column
matrix is kept from the forward pass to the weight gradient, so a bfloat16 step plans far less
memory than the float32 one. The numbers stay those of float32 arithmetic on the 16-bit values.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.compile.memory import planned_peak_bytes
from rustyasg.cpu import rewrites
from rustyasg.cpu.kernels import conv as conv_kernels


def _conv_step(dtype, shape, out_ch, seed, **conv):
    rng = np.random.default_rng(seed)
    groups = conv.get("groups", 1)
    x = rg.input(shape, dtype, name="x")
    w = rg.variable((rng.standard_normal((out_ch, shape[1] // groups, 3, 3)) * 0.2).astype(np.float32), name="w")
    y = rg.conv2d(x, w.astype(dtype), **conv)
    (gw,) = rg.grad((y.astype("float32") ** 2).sum(), [w])
    f = rg.function([x], [y, gw], backend="cpu")
    xv = rng.standard_normal(shape).astype(dtype)
    return f, xv, w.value()


def _conv64(x, w, stride, padding, dilation, groups):
    """float64 reference convolution (NCHW, OIHW)."""
    import torch

    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=padding,
                                      dilation=dilation, groups=groups).numpy()


def _chunked_ops(f, xv):
    return [i for i in f.lower(xv).instrs if i.attrs.get("columns") == "chunked"]


def test_chunk_images_divides_the_batch():
    assert conv_kernels.chunk_images(16, 1 << 20) == 4
    assert conv_kernels.chunk_images(16, 64 << 20) == 1      # one image larger than a chunk
    assert conv_kernels.chunk_images(7, 1 << 20) == 1        # a prime batch: the only divisor that fits
    assert conv_kernels.chunk_images(12, 1) == 12


@pytest.mark.parametrize("conv", [dict(padding=1), dict(stride=2, padding=1), dict(padding=0, dilation=2),
                                  dict(padding=1, groups=2)])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_chunked_columns_give_float32_arithmetic_on_the_16_bit_values(monkeypatch, dtype, conv):
    monkeypatch.setattr(rewrites, "CHUNKED_IMAGE_BYTES", 1)   # every 3x3 convolution chunks
    monkeypatch.setattr(conv_kernels, "CHUNK_BYTES", 1)       # one image per chunk
    f, xv, wv = _conv_step(dtype, (3, 4, 9, 9), 6, seed=3, **conv)
    ops = _chunked_ops(f, xv)
    assert sorted(i.op for i in ops) == ["conv2d", "conv2d_backward_weight"]
    assert all(str(f.lower(xv).by_id()[i.inputs[0 if i.op == "conv2d" else 1]].dtype) == dtype for i in ops)
    y, gw = f(xv)
    low = np.dtype(rg.bfloat16 if dtype == "bfloat16" else np.float16)
    x64 = xv.astype(np.float64)
    w64 = wv.astype(low).astype(np.float64)
    hyper = (conv.get("stride", 1), conv.get("padding", 0), conv.get("dilation", 1), conv.get("groups", 1))
    y64 = _conv64(x64, w64, *hyper)
    eps = 2.0 ** -7 if dtype == "bfloat16" else 2.0 ** -10
    np.testing.assert_allclose(np.asarray(y, np.float64), y64, rtol=eps, atol=eps * np.abs(y64).max())
    # dW of loss = sum(y^2): the gradient 2*y (16-bit) correlated with the input, per group
    import torch

    g = torch.from_numpy(2.0 * np.asarray(y, np.float64))
    gw64 = torch.nn.grad.conv2d_weight(torch.from_numpy(x64), w64.shape, g, stride=hyper[0], padding=hyper[1],
                                       dilation=hyper[2], groups=hyper[3]).numpy()
    np.testing.assert_allclose(gw, gw64, rtol=2 * eps, atol=2 * eps * np.abs(gw64).max())


def test_one_chunk_gives_the_shared_columns_numbers_bit_for_bit(monkeypatch, rng):
    # the same im2col and the same single GEMMs as the shared-columns path (cpu_conv_im2col)
    shape = (2, 8, 12, 12)
    f_shared, xv, _ = _conv_step("bfloat16", shape, 8, seed=5, padding=1)
    assert not _chunked_ops(f_shared, xv)
    want = f_shared(xv)
    monkeypatch.setattr(rewrites, "CHUNKED_IMAGE_BYTES", 1)
    f_chunked, xv2, _ = _conv_step("bfloat16", shape, 8, seed=5, padding=1)
    assert len(_chunked_ops(f_chunked, xv2)) == 2
    for a, b in zip(f_chunked(xv2), want):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_many_chunks_match_one_chunk(monkeypatch):
    # the forward pass computes the same dot products per chunk; the weight gradient adds the
    # chunks' products in image order: float32 sums in another association (a bfloat16 ulp at most)
    monkeypatch.setattr(rewrites, "CHUNKED_IMAGE_BYTES", 1)
    f_one, xv, _ = _conv_step("bfloat16", (4, 8, 16, 16), 8, seed=7, padding=1)
    y1, g1 = f_one(xv)
    monkeypatch.setattr(conv_kernels, "CHUNK_BYTES", 1)
    f_many, xv2, _ = _conv_step("bfloat16", (4, 8, 16, 16), 8, seed=7, padding=1)
    y4, g4 = f_many(xv2)
    np.testing.assert_allclose(np.asarray(y4, np.float32), np.asarray(y1, np.float32), rtol=2 ** -7)
    np.testing.assert_allclose(g4, g1, rtol=2 ** -7, atol=2 ** -7 * np.abs(g1).max())


def _training_step(precision):
    rng = np.random.default_rng(11)
    x = rg.input((4, 32, 32, 32), "float32", name="x")
    ws = [rg.variable((rng.standard_normal((32, 32, 3, 3)) * 0.05).astype(np.float32), name=f"w{k}")
          for k in range(3)]
    h = x
    for w in ws:
        h = rg.relu(rg.conv2d(h, w, padding=1))
    loss = (h * h).mean()
    grads = rg.grad(loss, ws)
    step = rg.function([x], loss, updates={w: w - 0.01 * g for w, g in zip(ws, grads)}, backend="cpu",
                       precision=precision)
    xv = rng.standard_normal((4, 32, 32, 32)).astype(np.float32)
    return step, xv


def test_a_bfloat16_conv_step_plans_less_than_half_the_float32_peak():
    fp32, xv = _training_step(None)
    bf16, _ = _training_step("bf16")
    peak32 = planned_peak_bytes(fp32.compile(xv))
    peak16 = planned_peak_bytes(bf16.compile(xv))
    assert peak16 < 0.5 * peak32, (peak16, peak32)
    # and it trains like the float32 step
    np.testing.assert_allclose(float(bf16(xv)), float(fp32(xv)), rtol=3e-2)
