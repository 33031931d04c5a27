"""bfloat16 GEMM through MKL: the kernel against float64, and the ``cpu_bf16_gemm`` pass in whole steps.

``RUSTYASG_CPU_BF16_GEMM=1`` forces the MKL path (MKL computes bfloat16 on any x86 processor,
in hardware where it has bfloat16 units), ``0`` the widened float32 GEMM, so both paths run here
whatever the processor.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.cpu.kernels import mkl
from rustyasg.nn import optim

BF16 = np.dtype(ml_dtypes.bfloat16)


def _ref(x, y):
    return np.matmul(x.astype(np.float64), y.astype(np.float64))


def _assert_gemm_close(got, want):
    """float32 accumulation of exact products: relative to the row's magnitude, a few ulps of float32."""
    assert got.dtype == np.float32 and got.shape == want.shape
    scale = np.abs(want).max() if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=0, atol=max(scale, 1e-30) * 4e-6)


def _operands(rng, shape_x, shape_y, trans_x, trans_y):
    def make(shape, trans):
        a = (rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 50.0])).astype(BF16)
        return np.swapaxes(a, -1, -2) if trans else a
    sx = shape_x[:-2] + shape_x[-2:][::-1] if trans_x else shape_x
    sy = shape_y[:-2] + shape_y[-2:][::-1] if trans_y else shape_y
    return make(sx, trans_x), make(sy, trans_y)


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", "1")


def test_random_shapes_layouts_and_batches_match_float64(forced, rng):
    for trial in range(60):
        m, k, n = (int(v) for v in rng.integers(1, 70, 3))
        batch = tuple(int(v) for v in rng.integers(1, 4, rng.integers(0, 3)))
        y_batch = batch[len(batch) - int(rng.integers(0, len(batch) + 1)):]  # broadcast: fewer axes on the right
        if y_batch and rng.random() < 0.3:
            y_batch = (1,) * len(y_batch)
        x, y = _operands(rng, batch + (m, k), y_batch + (k, n), rng.random() < 0.5, rng.random() < 0.5)
        out = np.empty(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]) + (m, n), np.float32)
        mkl.matmul_bf16(x, y, out)
        _assert_gemm_close(out, _ref(x, y))


def test_strided_operands_and_a_strided_result_are_handled(forced, rng):
    x = rng.standard_normal((6, 20)).astype(BF16)[:, ::2]          # no unit stride: copied first
    y = rng.standard_normal((3, 10, 8)).astype(BF16)[:, :, ::-1]   # negative stride: copied first
    out = np.zeros((3, 6, 16), np.float32)[:, :, ::2]
    mkl.matmul_bf16(x, y, out)
    _assert_gemm_close(out, _ref(x, y))


def test_empty_and_zero_depth_products(forced):
    for xs, ys in (((0, 4), (4, 3)), ((3, 0), (0, 4)), ((2, 3, 0), (0, 5)), ((3, 4), (4, 0))):
        x, y = np.ones(xs, BF16), np.ones(ys, BF16)
        out = np.full(np.broadcast_shapes(xs[:-2], ys[:-2]) + (xs[-2], ys[-1]), np.nan, np.float32)
        mkl.matmul_bf16(x, y, out)
        assert np.array_equal(out, np.zeros_like(out))


def test_nan_and_inf_propagate_as_in_float64(forced, rng):
    x = rng.standard_normal((5, 6)).astype(BF16)
    y = rng.standard_normal((6, 7)).astype(BF16)
    x[0, 2], x[1, :] = np.nan, 0.0
    y[3, 1], y[4, 2], y[5, 2], y[0, 4] = np.inf, np.inf, -np.inf, -np.inf
    out = np.empty((5, 7), np.float32)
    mkl.matmul_bf16(x, y, out)
    with np.errstate(invalid="ignore"):
        want = _ref(x, y)
    assert np.array_equal(np.isnan(out), np.isnan(want))
    finite = ~np.isnan(want)
    assert np.array_equal(out[finite] == np.inf, want[finite] == np.inf)
    assert np.array_equal(out[finite] == -np.inf, want[finite] == -np.inf)
    both = np.isfinite(want)
    np.testing.assert_allclose(out[both], want[both], rtol=1e-5, atol=1e-5)


def test_large_product_split_across_threads(forced, rng, monkeypatch):
    monkeypatch.setenv("RUSTYASG_CPU_THREADS", "2")
    x, y = _operands(rng, (2, 300, 96), (96, 130), False, True)
    out = np.empty((2, 300, 130), np.float32)
    mkl.matmul_bf16(x, y, out)
    _assert_gemm_close(out, _ref(x, y))


def _ops(fn, *arrays):
    return [i.op for i in fn.lower(*arrays).instrs]


def test_pass_uses_the_16_bit_words_and_agrees_with_the_widened_gemm(monkeypatch, rng):
    a = rg.input((3, 5, 8), "bfloat16", name="a")
    w = rg.input((6, 8), "bfloat16", name="w")
    y = rg.matmul(a, w.mT)
    loss = rg.sum(rg.tanh(y.astype("float32")))
    ga, gw = rg.grad(loss, [a, w])
    arrays = [rng.standard_normal((3, 5, 8)).astype(BF16), rng.standard_normal((6, 8)).astype(BF16)]
    results = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", mode)
        f = rg.function([a, w], [y, ga, gw], backend="cpu")
        ops = _ops(f, *arrays)
        assert ("cpu.matmul_bf16" in ops) == (mode == "1") and (("matmul" in ops) == (mode == "0"))
        results[mode] = f(*arrays)
    reference = rg.function([a, w], [y, ga, gw], backend="reference")(*arrays)
    for fast, widened, ref in zip(results["1"], results["0"], reference):
        assert fast.dtype == widened.dtype == BF16
        # both round one float32 result to bfloat16: at most one bfloat16 ulp apart
        np.testing.assert_allclose(fast.astype(np.float32), widened.astype(np.float32), rtol=2 ** -7, atol=1e-6)
        np.testing.assert_allclose(fast.astype(np.float32), ref.astype(np.float32), rtol=2 ** -7, atol=1e-6)


def test_bf16_training_step_matches_the_widened_path(monkeypatch):
    def train(mode):
        monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", mode)
        model = nn.Sequential(nn.Linear(12, 32), nn.GELU(), nn.Linear(32, 5))
        model.load_state_dict({k: np.random.default_rng(len(k)).standard_normal(v.shape).astype(np.float32) * 0.3
                               for k, v in model.state_dict().items()})
        x, t = rg.input(("B", 12), name="x"), rg.input(("B",), "int64", name="t")
        loss = nn.cross_entropy(model(x), t)
        step = rg.function([x, t], loss, updates=optim.AdamW(model.parameters(), lr=1e-2).updates(loss),
                           backend="cpu", precision="bf16")
        rng = np.random.default_rng(5)
        data = [(rng.standard_normal((16, 12)).astype(np.float32), rng.integers(0, 5, 16))] * 8  # fit one batch
        assert ("cpu.matmul_bf16" in _ops(step, *data[0])) == (mode == "1")
        return np.array([float(step(*d)) for d in data])

    fast, widened = train("1"), train("0")
    assert fast[-1] < fast[0]
    np.testing.assert_allclose(fast, widened, rtol=2e-2)


def test_setting_is_validated_and_a_missing_library_is_named(monkeypatch):
    monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", "sometimes")
    with pytest.raises(ValueError, match="auto, 1 or 0"):
        mkl.use_bf16_gemm()
    monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", "0")
    assert mkl.use_bf16_gemm() is False
    monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", "1")
    monkeypatch.setattr(mkl, "_library_path", lambda: "/nonexistent/libmkl_rt.so.3")
    mkl.library.cache_clear()
    try:
        with pytest.raises(mkl.MklMissing, match=r"pip install 'rustyasg-cpu\[mkl\]'"):
            mkl.use_bf16_gemm()
    finally:
        mkl.library.cache_clear()


CONVS = [dict(padding=1), dict(stride=2, padding=1), dict(padding=0, dilation=2), dict(padding=1, groups=2),
         dict(kernel=1), dict(kernel=1, stride=2)]


@pytest.mark.parametrize("chunk", [False, True])
@pytest.mark.parametrize("conv", CONVS)
def test_bf16_convolutions_run_on_bf16_columns_and_match_float64(monkeypatch, conv, chunk):
    """Forward, input and weight gradients of bfloat16 convolutions through MKL (shared or chunked
    columns) against torch in float64 on the same bfloat16 values, and against the widened path."""
    import torch

    from rustyasg.cpu import rewrites
    from rustyasg.cpu.kernels import conv as conv_kernels

    if chunk:
        monkeypatch.setattr(rewrites, "CHUNKED_IMAGE_BYTES", 1)
        monkeypatch.setattr(conv_kernels, "CHUNK_BYTES", 1)
    conv = dict(conv)
    k = conv.pop("kernel", 3)
    groups = conv.get("groups", 1)
    rng = np.random.default_rng(len(str(conv)) + chunk)
    xv = rng.standard_normal((3, 4, 9, 9)).astype(BF16)
    wv = (rng.standard_normal((6, 4 // groups, k, k)) * 0.3).astype(BF16)
    gv = rng.standard_normal(1).astype(np.float32)  # scales the loss: gradients not all of one sign
    x, w = rg.input(xv.shape, "bfloat16", name="x"), rg.input(wv.shape, "bfloat16", name="w")
    y = rg.conv2d(x, w, **conv)
    loss = rg.sum(rg.sin(y.astype("float32")) * float(gv[0]))
    gx, gw = rg.grad(loss, [x, w])
    results = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("RUSTYASG_CPU_BF16_GEMM", mode)
        f = rg.function([x, w], [y, gx, gw], backend="cpu")
        program = f.lower(xv, wv)
        convs = [i for i in program.instrs if i.op.startswith(("conv2d", "cpu.conv2d", "cpu.im2col"))]
        by_id = program.by_id()
        assert convs and all(all(by_id[a].dtype == BF16 for a in i.inputs) == (mode == "1") for i in convs)
        results[mode] = [np.asarray(r, np.float64) for r in f(xv, wv)]
    # float64 on the same bfloat16 values; the gradient of y (16-bit) is rounded as the step rounds it
    xt, wt = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (xv, wv))
    yt = torch.nn.functional.conv2d(xt, wt, **conv)
    gy = (torch.cos(torch.from_numpy(results["1"][0])) * float(gv[0])).numpy().astype(BF16).astype(np.float64)
    yt.backward(torch.from_numpy(gy))
    for got, widened, want in zip(results["1"], results["0"], (yt.detach().numpy(), xt.grad.numpy(),
                                                               wt.grad.numpy())):
        tol = 2 ** -7 * max(np.abs(want).max(), 1e-6)
        np.testing.assert_allclose(got, want, rtol=2 ** -7, atol=tol)
        np.testing.assert_allclose(got, widened, rtol=2 ** -7, atol=tol)
