"""nn-primitive kernels (convolution, pooling, normalization) against the core's float64 references.

Kernels are called through the backend's kernel interface (KernelBuilder, TensorView,
program Instr) and their launches replayed in one compute pass, as the executor does.
Shapes and hyper-parameters are drawn at random (valid ones: the core's shape rule
decides), plus every conformance example of every op, PyTorch parity, and the paths
that only large or odd inputs take (image chunking, group/image loop orders, rows past
65535 workgroups, ties, both reduction strategies).
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rustyasg.core import dtypes
from rustyasg.core.plugins import load_kernels
from rustyasg.core.program import Instr
from rustyasg.core.registry import OPS, TensorType
from rustyasg.core.testing import check_op
from rustyasg.wgpu.buffers import upload
from rustyasg.wgpu.kernels import nn_conv, nn_conv_direct, nn_norm, nn_pool
from rustyasg.wgpu.kernels.api import KernelBuilder, KernelError, TensorView, storage_for
from rustyasg.wgpu.kernels.matmul import MatmulPlanner
from rustyasg.wgpu.pipelines import PipelineCache

from conftest import rel_err

KERNELS = {**nn_conv.KERNELS, **nn_pool.KERNELS, **nn_norm.KERNELS}
TOL = 2e-6  # relative (Frobenius) error of float32 sums of a few hundred products


@pytest.fixture()
def kb(ctx, pipelines, pool):
    return KernelBuilder(ctx, pipelines, matmul=MatmulPlanner(ctx, pipelines, autotune=False),
                         scratch_alloc=lambda nbytes, label: pool.acquire(nbytes))


# path -> (largest Og that takes the direct kernels, RUSTYASG_WGPU_CONV)
CONV_PATHS = {"gemm": (0, "im2col"), "implicit": (0, "implicit"), "direct": (1 << 30, "im2col")}


@pytest.fixture(params=sorted(CONV_PATHS))
def conv_path(request, monkeypatch):
    """Run a conv test through im2col + GEMM, the implicit GEMM and the direct kernels."""
    direct_max, lowering = CONV_PATHS[request.param]
    monkeypatch.setattr(nn_conv_direct, "DIRECT_MAX_OUT_PER_GROUP", direct_max)
    monkeypatch.setenv(nn_conv.CONV_ENV, lowering)
    return request.param


@pytest.fixture()
def gemm_path(monkeypatch):
    """im2col + GEMM: no direct kernel, no gathered columns."""
    monkeypatch.setattr(nn_conv_direct, "DIRECT_MAX_OUT_PER_GROUP", 0)
    monkeypatch.setenv(nn_conv.CONV_ENV, "im2col")


def _view(kb, pool, array):
    st = storage_for(array.dtype, kb.has_f16)
    return TensorView(upload(kb.ctx, st.to_device(array), pool), tuple(array.shape), array.dtype, st)


def run_op(kb, pool, readback, op, arrays, attrs, dtype=np.float32, labels=None):
    """(GPU result, float64 reference) of ``op`` on ``arrays`` with complete ``attrs`` (the
    launches' labels are appended to ``labels`` when it is a list)."""
    attrs = OPS[op].check_attrs(attrs)
    # The reference sees the same (rounded) inputs as the GPU: only the kernel's error is measured.
    arrays = [np.asarray(a, dtype).astype(np.float64) for a in arrays]
    ref = OPS[op].reference(*arrays, **attrs)
    out_dtype = np.dtype(dtype) if ref.dtype.kind == "f" else ref.dtype
    st = storage_for(out_dtype, kb.has_f16)
    nbytes = max(ref.size * st.itemsize, 4)
    out = TensorView(pool.acquire(nbytes), ref.shape, out_dtype, st)
    # Poison the output: an element the kernel forgets shows up as NaN (or a huge index).
    kb.ctx.queue.write_buffer(out.buffer, 0, np.full(nbytes // 4, np.nan, np.float32).tobytes())
    instr = Instr(0, op, (), attrs, ref.shape, out_dtype, source="test_nn_kernels.py")
    launches = KERNELS[op](kb, instr, [_view(kb, pool, a.astype(dtype)) for a in arrays], out)
    if labels is not None:
        labels.extend(launch.label for launch in launches)
    enc = kb.ctx.device.create_command_encoder()
    cpass = enc.begin_compute_pass()
    for launch in launches:
        launch.encode(cpass)
    cpass.end()
    got = st.to_host(readback.read(out.buffer, ref.size * st.itemsize, enc), ref.shape, out_dtype)
    return got, ref


def check(kb, pool, readback, op, arrays, attrs, tol=TOL, atol=0.0):
    """Assert the GPU result is within ``tol`` (relative, Frobenius) or ``atol`` (max abs) of the reference."""
    got, ref = run_op(kb, pool, readback, op, arrays, attrs)
    if ref.dtype.kind == "i":
        np.testing.assert_array_equal(got, ref)
    else:
        assert np.all(np.isfinite(got)), f"{op}: unwritten or non-finite outputs"
        err, worst = rel_err(got, ref), float(np.max(np.abs(got - ref)))
        assert err < tol or worst <= atol, (op, attrs, err, worst)
    return got


def _out_shape(op, in_shape, attrs):
    return tuple(OPS[op].infer([TensorType(tuple(in_shape), dtypes.float64)], **OPS[op].check_attrs(attrs)).shape)


# --- every conformance example of every op -----------------------------------------------------
@pytest.mark.parametrize("op", sorted(KERNELS))
def test_conformance_examples(kb, pool, readback, rng, conv_path, op):
    for example in OPS[op].examples:
        arrays = [rng.standard_normal(spec.shape) for spec in example.inputs]
        check(kb, pool, readback, op, arrays, dict(example.attrs))


@pytest.mark.parametrize("op", sorted(KERNELS))
def test_conformance_kit_through_the_wgpu_backend(rng, op):
    # Forward against the reference and the gradient rule (compiled on wgpu) against finite differences.
    check_op(op, backend="wgpu", dtype="float32", seed=int(rng.integers(2**31)))


def test_the_plugin_registers_every_nn_kernel():
    table = load_kernels("wgpu")
    assert all(table[op] is KERNELS[op] for op in KERNELS), sorted(set(KERNELS) - set(table))


def test_dispatches_split_over_x_y_z(ctx, pool, readback, rng, conv_path):
    # With at most 8 workgroups per dimension every launch spreads over x, y and z (as past 65535 on
    # a real device): each kernel must rebuild its linear index and skip the rounding excess.
    small = dataclasses.replace(ctx, limits={**ctx.limits, "max-compute-workgroups-per-dimension": 8})
    pipes = PipelineCache(small)
    kb = KernelBuilder(small, pipes, matmul=MatmulPlanner(small, pipes, autotune=False),
                       scratch_alloc=lambda nbytes, label: pool.acquire(nbytes))
    cases = [("conv2d", [(3, 4, 9, 9), (6, 2, 3, 3)], {"groups": 2, "padding": (1, 1)}),
             ("conv2d_backward_input", [(2, 4, 5, 5), (4, 3, 3, 3)], {"input_size": (7, 7)}),
             ("conv2d_backward_weight", [(2, 4, 5, 5), (2, 3, 7, 7)], {"kernel_size": (3, 3)}),
             ("max_pool2d_backward", [(3, 5, 4, 4), (3, 5, 9, 9)], {"kernel_size": (3, 3), "stride": (2, 2)}),
             ("avg_pool2d", [(3, 5, 9, 9)], {"kernel_size": (2, 2), "stride": (1, 1)}),
             ("adaptive_max_pool2d_indices", [(3, 5, 9, 9)], {"output_size": (5, 4)}),
             ("layer_norm", [(300, 5), (5,), (5,)], {"normalized_ndim": 1}),
             ("batch_norm_backward", [(9, 301), (9, 301), (301,)], {"axis": 1})]
    for op, shapes, attrs in cases:
        check(kb, pool, readback, op, [rng.standard_normal(s) for s in shapes], attrs)
    x = _view(kb, pool, rng.standard_normal((300, 5)).astype(np.float32))
    instr = Instr(0, "layer_norm", (), {"normalized_ndim": 1, "eps": 1e-5}, (300, 5), np.dtype(np.float32))
    gamma = _view(kb, pool, np.ones(5, np.float32))
    y = _view(kb, pool, np.zeros((300, 5), np.float32))
    (launch,) = nn_norm.KERNELS["layer_norm"](kb, instr, [x, gamma, gamma], y)
    assert max(launch.workgroups) <= 8 and launch.workgroups[2] > 1  # 300 rows: really split over z


# --- convolution ----------------------------------------------------------------------------------
def _random_conv(rng):
    """A valid random conv2d configuration: (x shape, w shape, attrs)."""
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        attrs = {"stride": tuple(int(v) for v in rng.integers(1, 3, 2)),
                 "padding": tuple(int(v) for v in rng.integers(0, 3, 2)),
                 "dilation": tuple(int(v) for v in rng.integers(1, 3, 2)), "groups": groups}
        x_shape = (int(rng.integers(1, 4)), cg * groups) + tuple(int(v) for v in rng.integers(3, 10, 2))
        w_shape = (og * groups, cg) + k
        try:
            OPS["conv2d"].infer([TensorType(x_shape, dtypes.float64), TensorType(w_shape, dtypes.float64)],
                                **OPS["conv2d"].check_attrs(attrs))
            return x_shape, w_shape, attrs
        except ValueError:
            continue


def _conv_trio(kb, pool, readback, rng, x_shape, w_shape, attrs, crop=(0, 0)):
    """conv2d and both backward ops; the gradient is ``crop`` positions shorter than the output."""
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y = check(kb, pool, readback, "conv2d", [x, w], attrs)
    gh, gw = max(y.shape[2] - crop[0], 1), max(y.shape[3] - crop[1], 1)
    g = rng.standard_normal(y.shape[:2] + (gh, gw))
    check(kb, pool, readback, "conv2d_backward_input", [g, w], {"input_size": x_shape[2:], **attrs})
    check(kb, pool, readback, "conv2d_backward_weight", [g, x], {"kernel_size": w_shape[2:], **attrs})


@pytest.mark.parametrize("case", range(6))
def test_conv_random_configurations(kb, pool, readback, rng, conv_path, case):
    x_shape, w_shape, attrs = _random_conv(rng)
    _conv_trio(kb, pool, readback, rng, x_shape, w_shape, attrs, crop=(case % 2, case % 3 // 2))


@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((2, 6, 5, 4), (4, 6, 1, 1), {}),                                # 1x1: the input is its own im2col
    ((3, 6, 5, 4), (9, 2, 1, 1), {"groups": 3}),                      # grouped 1x1
    ((2, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": (1, 1)}),  # depthwise
    ((1, 3, 9, 7), (5, 3, 3, 2), {"stride": (2, 3), "dilation": (2, 1), "padding": (2, 1)}),
], ids=["pointwise", "grouped-pointwise", "depthwise", "strided-dilated"])
def test_conv_special_layouts(kb, pool, readback, rng, conv_path, x_shape, w_shape, attrs):
    _conv_trio(kb, pool, readback, rng, x_shape, w_shape, attrs)


def test_conv_pointwise_with_short_gradient_builds_columns(kb, pool, readback, rng, gemm_path):
    # A 1x1 conv normally skips im2col/col2im; a cropped gradient must not.
    _conv_trio(kb, pool, readback, rng, (2, 4, 5, 5), (3, 4, 1, 1), {}, crop=(1, 2))


@pytest.mark.parametrize("groups,images", [(2, 5), (4, 2)], ids=["per-group-launches", "per-image-launches"])
def test_conv_chunks_images_under_a_column_budget(kb, pool, readback, rng, monkeypatch, gemm_path, groups, images):
    # A budget of ~2 images per chunk: several chunks, partial weight sums accumulated across them.
    x_shape, w_shape = (images, 2 * groups, 6, 5), (3 * groups, 2, 3, 3)
    per_image = 4 * x_shape[1] * 9 * 4 * 3
    monkeypatch.setattr(nn_conv, "COLUMN_BUDGET", 2 * per_image + 100)
    _conv_trio(kb, pool, readback, rng, x_shape, w_shape, {"groups": groups, "stride": (1, 1)})


@pytest.mark.parametrize("x_shape,w_shape,attrs,budget_splits", [
    ((6, 4, 3, 3), (12, 4, 2, 2), {}, None),                      # 2 splits of 3 images, one chunk
    ((4, 4, 3, 3), (16, 2, 2, 2), {"groups": 2}, None),           # grouped, 2 splits of 2
    ((3, 2, 2, 2), (20, 2, 2, 2), {"padding": (1, 1)}, None),     # one split holds every image
    ((8, 3, 4, 4), (12, 3, 2, 2), {"stride": (1, 2)}, 1),         # one split per chunk: sums across chunks
], ids=["two-splits", "grouped", "single-split", "chunked"])
@pytest.mark.parametrize("lowering", ["im2col", "implicit"])
def test_conv_weight_gradient_folds_images_into_the_reduction(kb, pool, readback, rng, monkeypatch, gemm_path, x_shape,
                                                              w_shape, attrs, budget_splits, lowering):
    monkeypatch.setenv(nn_conv.CONV_ENV, lowering)
    attrs = {"kernel_size": w_shape[2:], **attrs}
    full = OPS["conv2d_backward_weight"].check_attrs(attrs)
    x = rng.standard_normal(x_shape)
    y_shape = _out_shape_conv(x_shape, w_shape, full)
    geo = nn_conv.ConvGeometry(x_shape[0], x_shape[1], *x_shape[2:], w_shape[0], full["groups"], *w_shape[2:],
                               *y_shape[2:], full["stride"], full["padding"], full["dilation"])
    split = nn_conv.images_per_split(geo, x_shape[0])
    assert split > 1
    if budget_splits:  # room for one split per chunk
        per_split = 4 * split * (x_shape[1] * geo.KH * geo.KW + w_shape[0]) * geo.P + 4 * w_shape[0] * geo.K
        monkeypatch.setattr(nn_conv, "COLUMN_BUDGET", per_split + 4 * w_shape[0] * geo.K + 64)
    check(kb, pool, readback, "conv2d_backward_weight", [rng.standard_normal(y_shape), x], attrs)


def _out_shape_conv(x_shape, w_shape, attrs):
    kw = {k: v for k, v in attrs.items() if k != "kernel_size"}
    return tuple(OPS["conv2d"].infer([TensorType(x_shape, dtypes.float64), TensorType(w_shape, dtypes.float64)],
                                     **kw).shape)


def test_conv_path_choice(kb, pool, rng, monkeypatch):
    # Depthwise (one output per group) runs direct, one launch; a wide conv runs im2col + GEMM when asked.
    def labels(x_shape, w_shape, attrs):
        attrs = OPS["conv2d"].check_attrs(attrs)
        x = _view(kb, pool, rng.standard_normal(x_shape).astype(np.float32))
        w = _view(kb, pool, rng.standard_normal(w_shape).astype(np.float32))
        y_shape = _out_shape_conv(x_shape, w_shape, attrs)
        y = TensorView(pool.acquire(4 * int(np.prod(y_shape))), y_shape, np.dtype(np.float32), x.storage)
        return [launch.label for launch in nn_conv.conv2d(kb, Instr(0, "conv2d", (), attrs, y_shape, y.dtype),
                                                          [x, w], y)]
    assert labels((2, 8, 6, 6), (8, 1, 3, 3), {"groups": 8}) == ["conv2d"]
    monkeypatch.setenv(nn_conv.CONV_ENV, "im2col")
    assert labels((2, 8, 6, 6), (16, 8, 3, 3), {})[0] == "conv2d im2col"
    monkeypatch.setenv(nn_conv.CONV_ENV, "implicit")  # one GEMM launch gathering its columns
    implicit = labels((2, 8, 6, 6), (16, 4, 3, 3), {"groups": 2, "padding": (1, 1)})
    assert len(implicit) == 1 and implicit[0].endswith("(implicit conv)")
    x = _view(kb, pool, rng.standard_normal((4, 4, 6, 6)).astype(np.float32))
    g = _view(kb, pool, rng.standard_normal((4, 8, 6, 6)).astype(np.float32))
    attrs = OPS["conv2d_backward_weight"].check_attrs({"kernel_size": (3, 3), "padding": (1, 1)})
    dw = TensorView(pool.acquire(4 * 8 * 4 * 9), (8, 4, 3, 3), np.dtype(np.float32), x.storage)
    dw_labels = [launch.label for launch in nn_conv.conv2d_backward_weight(
        kb, Instr(0, "conv2d_backward_weight", (), attrs, dw.shape, dw.dtype), [g, x], dw)]
    assert "(implicit conv)" in " ".join(dw_labels) and not any("im2col" in label for label in dw_labels)
    monkeypatch.delenv(nn_conv.CONV_ENV)  # auto: implicit but for a strided convolution's gradients
    assert labels((2, 8, 6, 6), (16, 8, 3, 3), {"stride": (2, 2)})[0].endswith("(implicit conv)")
    gs = _view(kb, pool, rng.standard_normal((2, 16, 3, 3)).astype(np.float32))
    ws = _view(kb, pool, rng.standard_normal((16, 8, 3, 3)).astype(np.float32))
    for stride, gathered in (((2, 2), False), ((1, 1), True)):
        g_shape = (2, 16, 3, 3) if stride == (2, 2) else (2, 16, 4, 4)
        gv = gs if stride == (2, 2) else _view(kb, pool, rng.standard_normal(g_shape).astype(np.float32))
        attrs = OPS["conv2d_backward_input"].check_attrs({"input_size": (6, 6), "stride": stride})
        dx = TensorView(pool.acquire(4 * 2 * 8 * 36), (2, 8, 6, 6), np.dtype(np.float32), x.storage)
        dx_labels = [launch.label for launch in nn_conv.conv2d_backward_input(
            kb, Instr(0, "conv2d_backward_input", (), attrs, dx.shape, dx.dtype), [gv, ws], dx)]
        assert any("(implicit conv)" in label for label in dx_labels) == gathered, (stride, dx_labels)
    monkeypatch.setenv(nn_conv.CONV_ENV, "winograd")
    with pytest.raises(ValueError, match="RUSTYASG_WGPU_CONV='winograd'.*im2col"):
        labels((2, 8, 6, 6), (16, 8, 3, 3), {})


def test_conv_grouped_gemm_launch_counts(kb, pool, rng):
    # groups <= images: a launch per group; images < groups: a launch per image; linear batches: one.
    buf = pool.acquire(4096)
    a, b, c = (nn_conv.Operand(buf, 0, 0, 4), nn_conv.Operand(buf, 0, 40, 8), nn_conv.Operand(buf, 0, 30, 6))
    assert len(nn_conv.grouped_gemm(kb, a, b, c, images=5, groups=2, M=1, N=2, K=2)) == 2
    assert len(nn_conv.grouped_gemm(kb, a, b, c, images=2, groups=5, M=1, N=2, K=2)) == 2
    linear = nn_conv.Operand(buf, 0, 20, 4)
    assert len(nn_conv.grouped_gemm(kb, linear, nn_conv.Operand(buf, 0, 40, 8), nn_conv.Operand(buf, 0, 30, 6),
                                    images=3, groups=5, M=1, N=2, K=2)) == 1


def test_conv_image_over_the_binding_limit_is_a_clear_error(kb, pool, rng, monkeypatch, gemm_path):
    monkeypatch.setattr(nn_conv, "max_binding", lambda kb: 1000)
    x, w = rng.standard_normal((1, 3, 8, 8)).astype(np.float32), rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    instr = Instr(0, "conv2d", (), OPS["conv2d"].check_attrs({}), (1, 2, 6, 6), np.dtype(np.float32),
                  source="model.py:12")
    out = TensorView(pool.acquire(4 * 72), (1, 2, 6, 6), np.dtype(np.float32), storage_for(np.float32, False))
    with pytest.raises(KernelError, match=r"conv2d \(wgpu\).*column matrix.*binding limit(.|\n)*model.py:12"):
        nn_conv.conv2d(kb, instr, [_view(kb, pool, x), _view(kb, pool, w)], out)


# --- pooling ----------------------------------------------------------------------------------------
def _random_window(rng, op):
    """Valid random window attributes for ``op`` on a random input shape."""
    while True:
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        attrs = {"kernel_size": k, "stride": tuple(int(v) for v in rng.integers(1, 4, 2)),
                 "padding": tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k),
                 "ceil_mode": bool(rng.integers(0, 2))}
        if op == "max_pool2d":
            attrs["dilation"] = tuple(int(v) for v in rng.integers(1, 3, 2))
        else:
            attrs["count_include_pad"] = bool(rng.integers(0, 2))
            attrs["divisor_override"] = int(rng.integers(1, 7)) if rng.random() < 0.25 else None
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + tuple(int(v) for v in rng.integers(2, 12, 2))
        try:
            _out_shape(op, shape, attrs)
            return shape, attrs
        except ValueError:
            continue


def _pool_family(kb, pool, readback, rng, op, shape, attrs, x=None):
    x = rng.standard_normal(shape) if x is None else x
    y = check(kb, pool, readback, op, [x], attrs)
    g = rng.standard_normal(y.shape)
    if "max" in op:
        check(kb, pool, readback, f"{op}_indices", [x], attrs)
        check(kb, pool, readback, f"{op}_backward", [g, x], attrs)
    else:
        check(kb, pool, readback, f"{op}_backward", [g], {"input_size": shape[2:], **attrs})


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_random_windows(kb, pool, readback, rng, op):
    for _ in range(6):
        shape, attrs = _random_window(rng, op)
        _pool_family(kb, pool, readback, rng, op, shape, attrs)


@pytest.mark.parametrize("op", ["adaptive_max_pool2d", "adaptive_avg_pool2d"])
def test_adaptive_pool_random_sizes_including_upsampling(kb, pool, readback, rng, op):
    for _ in range(4):
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + tuple(int(v) for v in rng.integers(1, 11, 2))
        out = tuple(int(v) for v in rng.integers(1, 13, 2))  # larger than the input too: overlapping windows
        _pool_family(kb, pool, readback, rng, op, shape, {"output_size": out})


@pytest.mark.parametrize("op,attrs", [
    ("max_pool2d", {"kernel_size": (3, 3), "stride": (1, 1), "padding": (1, 1), "ceil_mode": False}),
    ("adaptive_max_pool2d", {"output_size": (4, 3)}),
])
def test_max_pool_ties_pick_the_first_maximum(kb, pool, readback, rng, op, attrs):
    x = rng.integers(0, 3, (2, 3, 7, 6)).astype(np.float64)  # many equal values per window
    _pool_family(kb, pool, readback, rng, op, x.shape, attrs, x=x)


def test_pool_and_conv_match_pytorch(kb, pool, readback, rng, conv_path):
    x = rng.standard_normal((2, 4, 11, 9))
    w = rng.standard_normal((6, 2, 3, 2))
    got, _ = run_op(kb, pool, readback, "conv2d", [x, w],
                    {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1), "groups": 2})
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=(2, 1), padding=(1, 2), dilation=(2, 1),
                    groups=2).numpy()
    assert rel_err(got, want) < TOL
    t = torch.from_numpy(x)
    want, want_idx = F.max_pool2d(t, 3, 2, 1, dilation=(1, 2), ceil_mode=True, return_indices=True)
    attrs = {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1), "dilation": (1, 2), "ceil_mode": True}
    got, _ = run_op(kb, pool, readback, "max_pool2d", [x], attrs)
    idx, _ = run_op(kb, pool, readback, "max_pool2d_indices", [x], attrs)
    assert rel_err(got, want.numpy()) < TOL
    np.testing.assert_array_equal(idx, want_idx.numpy())
    want = F.avg_pool2d(t, (3, 2), (2, 2), (1, 1), ceil_mode=True, count_include_pad=True).numpy()
    got, _ = run_op(kb, pool, readback, "avg_pool2d", [x], {"kernel_size": (3, 2), "stride": (2, 2),
                                                            "padding": (1, 1), "ceil_mode": True})
    assert rel_err(got, want) < TOL


# --- normalization ----------------------------------------------------------------------------------
def _norm_pair(kb, pool, readback, rng, name, shape, pshape, attrs, tol=5e-6):
    x = rng.standard_normal(shape) * 3 + 1.5
    gamma, beta, g = rng.standard_normal(pshape), rng.standard_normal(pshape), rng.standard_normal(shape)
    check(kb, pool, readback, name, [x, gamma, beta], attrs, tol)
    # dx = r * (a - mean(a) - xh * mean(a*xh)) subtracts nearly equal terms; rounding them (fused or not
    # into an FMA, as drivers please) leaves ~1 ulp of |a| times r = 1/sqrt(var + eps) -- all there is
    # of a row of length 1, whose exact gradient is 0.
    if name == "layer_norm":
        axes = tuple(range(x.ndim - attrs["normalized_ndim"], x.ndim))
    else:
        axes = tuple(i for i in range(x.ndim) if i != attrs["axis"] % x.ndim)
    r_max = 1 / np.sqrt(x.astype(np.float32).astype(np.float64).var(axis=axes).min() + attrs["eps"])
    ulps = 4 * np.finfo(np.float32).eps * np.abs(g).max() * np.abs(gamma).max() * r_max
    check(kb, pool, readback, f"{name}_backward", [g, x, gamma], attrs, tol * 2, atol=ulps)


@pytest.mark.parametrize("segment", [nn_norm.SEGMENT, 37, 2], ids=["rows-fused", "rows-split", "many-segments"])
@pytest.mark.parametrize("subgroups", [True, False], ids=["subgroup-reduction", "shared-memory-tree"])
def test_norms_random_shapes(kb, pool, readback, rng, monkeypatch, subgroups, segment):
    # Rows shorter than, around and longer than a workgroup; fused, split into segments, and split
    # into more segments than a workgroup has threads (merged in a strided loop).
    if subgroups and not kb.has_subgroups:
        subgroups = False  # the adapter decides; the tree path is then what runs anyway
    monkeypatch.setattr(KernelBuilder, "has_subgroups", property(lambda self: subgroups))
    monkeypatch.setattr(nn_norm, "SEGMENT", segment)
    for length in (1, 7, 300, 1500):
        rows = int(rng.integers(1, 6))
        _norm_pair(kb, pool, readback, rng, "layer_norm", (rows, length), (length,),
                   {"normalized_ndim": 1, "eps": 1e-5})
    _norm_pair(kb, pool, readback, rng, "layer_norm", (2, 3, 5, 7), (5, 7), {"normalized_ndim": 2, "eps": 1e-3})
    for shape, axis in (((8, 5), 1), ((4, 3, 6, 5), 1), ((3, 4, 70), -1), ((600, 3), 1)):
        _norm_pair(kb, pool, readback, rng, "batch_norm", shape, (shape[axis],), {"axis": axis, "eps": 1e-5})


def test_long_rows_are_split_into_segments():
    lay = nn_norm.row_layout("batch", (32, 64, 56, 56), {"axis": 1})
    assert lay["S"] > 1 and lay["S"] * lay["SEG"] >= lay["L"] > (lay["S"] - 1) * lay["SEG"]
    assert nn_norm.row_layout("layer", (4, 768), {"normalized_ndim": 1})["S"] == 1
    for L in range(1, 200):  # every segment non-empty, whatever the length
        lay = nn_norm.row_layout("layer", (1, L), {"normalized_ndim": 1}, segment=7)
        assert lay["SEG"] <= 7 and (lay["S"] - 1) * lay["SEG"] < L <= lay["S"] * lay["SEG"]


def test_norm_wgsl_variants_differ_only_where_they_should():
    base = nn_norm.NormSpec("layer")
    assert "subgroupAdd" in nn_norm.norm_wgsl(nn_norm.NormSpec("layer", subgroups=True))
    assert "subgroupAdd" not in nn_norm.norm_wgsl(base)
    assert "j / p.B" in nn_norm.norm_wgsl(nn_norm.NormSpec("batch")) and "j / p.B" not in nn_norm.norm_wgsl(base)
    assert "merged_stats(row)" in nn_norm.norm_wgsl(nn_norm.NormSpec("layer", "apply_forward"))
    assert "merged_stats(row)" not in nn_norm.norm_wgsl(base)
    assert nn_norm.threads_for(1) == 64 and nn_norm.threads_for(10**6) == 256


def test_non_float_operands_are_refused_with_the_op_name(kb, pool, rng):
    x = _view(kb, pool, rng.integers(0, 5, (2, 3)).astype(np.int32))
    instr = Instr(0, "layer_norm", (), {"normalized_ndim": 1, "eps": 1e-5}, (2, 3), np.dtype(np.int32))
    with pytest.raises(TypeError, match="wgpu layer_norm kernels need float operands"):
        nn_norm.KERNELS["layer_norm"](kb, instr, [x, x, x], x)


def test_float16_tensors_on_either_storage(kb, pool, readback, rng, conv_path):
    # f16 storage where the adapter grants shader-f16, else f32 storage; results are float16 either way.
    assert storage_for(np.float16, kb.has_f16).name == ("f16" if kb.has_f16 else "f32")
    x, w = rng.standard_normal((2, 4, 7, 7)), rng.standard_normal((4, 4, 3, 3))
    cases = [("conv2d", [x, w], {"padding": (1, 1)}),
             ("layer_norm", [x, rng.standard_normal(7), rng.standard_normal(7)], {"normalized_ndim": 1}),
             ("max_pool2d_backward", [rng.standard_normal((2, 4, 3, 3)), x], {"kernel_size": (2, 2), "stride": (2, 2)})]
    for op, arrays, attrs in cases:
        got, ref = run_op(kb, pool, readback, op, arrays, attrs, dtype=np.float16)
        assert got.dtype == np.float16 and rel_err(got, ref) < 3e-3, (op, rel_err(got, ref))


IMPLICIT_F16_CASES = [  # op, x shape, w shape, attrs: groups, padding, dilation, strides, ragged tiles
    ("conv2d", (3, 6, 9, 11), (10, 3, 3, 3), {"groups": 2, "padding": (1, 2), "dilation": (1, 2)}),
    ("conv2d", (2, 5, 12, 10), (7, 5, 3, 2), {"stride": (2, 1), "padding": (1, 0)}),
    ("conv2d_backward_input", (3, 6, 9, 11), (10, 3, 3, 3), {"groups": 2, "padding": (1, 1)}),
    ("conv2d_backward_input", (2, 5, 12, 10), (7, 5, 3, 3), {"stride": (2, 2), "padding": (1, 1)}),
    ("conv2d_backward_weight", (3, 6, 9, 11), (10, 3, 3, 3), {"groups": 2, "padding": (1, 2), "dilation": (1, 2)}),
    ("conv2d_backward_weight", (5, 5, 12, 10), (7, 5, 3, 2), {"stride": (2, 1), "padding": (1, 0)}),
]


@pytest.mark.parametrize("op,x_shape,w_shape,attrs", IMPLICIT_F16_CASES)
def test_float16_implicit_gemm_convolutions_gather_on_the_tensor_cores_where_there_are_some(
        kb, pool, readback, rng, monkeypatch, op, x_shape, w_shape, attrs):
    monkeypatch.setenv(nn_conv.CONV_ENV, "implicit")
    monkeypatch.setattr(nn_conv_direct, "DIRECT_MAX_OUT_PER_GROUP", 0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    grad = rng.standard_normal(_out_shape_conv(x_shape, w_shape, OPS["conv2d"].check_attrs(attrs)))
    arrays, full = {"conv2d": ([x, w], attrs),
                    "conv2d_backward_input": ([grad, w], {**attrs, "input_size": x_shape[2:]}),
                    "conv2d_backward_weight": ([grad, x], {**attrs, "kernel_size": w_shape[2:]})}[op]
    labels = []
    got, ref = run_op(kb, pool, readback, op, arrays, full, dtype=np.float16, labels=labels)
    assert got.dtype == np.float16 and rel_err(got, ref) < 3e-3, (op, rel_err(got, ref), labels)
    gathered = [label for label in labels if label.endswith("(implicit conv)")]
    assert len(gathered) == 1, labels
    on_tensor_cores = kb.has_f16 and kb.matmul.tensor_cores is not None
    assert gathered[0].startswith("matmul tc") == on_tensor_cores, (gathered, on_tensor_cores)


def test_auto_gathers_the_forward_pass_and_unit_stride_gradients_with_or_without_tensor_cores(monkeypatch):
    unit = nn_conv.ConvGeometry(8, 64, 28, 28, 64, 1, 3, 3, 28, 28, (1, 1), (1, 1), (1, 1))
    strided = nn_conv.ConvGeometry(8, 64, 28, 28, 128, 1, 3, 3, 14, 14, (2, 2), (1, 1), (1, 1))
    with_tc = types.SimpleNamespace(conv_lowering=None, matmul=types.SimpleNamespace(tensor_cores=object()))
    without_tc = types.SimpleNamespace(conv_lowering=None, matmul=types.SimpleNamespace(tensor_cores=None))
    passes = ("forward", "input", "weight")
    for kb in (with_tc, without_tc):
        assert [nn_conv.gathers_columns(kb, unit, p) for p in passes] == [True] * 3
        assert [nn_conv.gathers_columns(kb, strided, p) for p in passes] == [True, False, False]
    monkeypatch.setenv(nn_conv.CONV_ENV, "im2col")
    assert [nn_conv.gathers_columns(with_tc, unit, p) for p in passes] == [False] * 3
    monkeypatch.setenv(nn_conv.CONV_ENV, "implicit")
    assert [nn_conv.gathers_columns(with_tc, strided, p) for p in passes] == [True] * 3


def test_implicit_gemm_convolutions_train_like_torch(rng, monkeypatch):
    """Two strided/padded/grouped convolutions, their input and weight gradients, compiled on wgpu
    with the columns gathered inside the GEMMs, against torch in float64."""
    import rustyasg.core as rg

    monkeypatch.setenv(nn_conv.CONV_ENV, "implicit")
    OG = nn_conv_direct.DIRECT_MAX_OUT_PER_GROUP + 1  # outputs per group: past the direct kernels' range
    xv = rng.standard_normal((3, 4, 11, 9)).astype(np.float32)
    w1v = rng.standard_normal((2 * OG, 2, 3, 3)).astype(np.float32) * 0.3
    w2v = rng.standard_normal((OG, 2 * OG, 2, 3)).astype(np.float32) * 0.1
    x, w1, w2 = rg.input(xv.shape, name="x"), rg.input(w1v.shape, name="w1"), rg.input(w2v.shape, name="w2")
    h = rg.relu(rg.conv2d(x, w1, stride=(2, 1), padding=(1, 2), groups=2))
    y = rg.conv2d(h, w2, dilation=(1, 2))
    loss = (y * y).sum()
    grads = rg.grad(loss, [x, w1, w2])
    f = rg.function([x, w1, w2], [y, *grads], backend="wgpu")
    labels = [getattr(launch, "label", "") for launch in f.compile(xv, w1v, w2v).launches]
    assert sum(label.endswith("(implicit conv)") for label in labels) == 6  # 2 forward, 2 dW, 2 dX
    assert not any("im2col" in label or "col2im" in label for label in labels)
    got = f(xv, w1v, w2v)
    xt, w1t, w2t = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (xv, w1v, w2v))
    yt = F.conv2d(F.relu(F.conv2d(xt, w1t, stride=(2, 1), padding=(1, 2), groups=2)), w2t, dilation=(1, 2))
    (yt * yt).sum().backward()
    for mine, want in zip(got, [yt.detach(), xt.grad, w1t.grad, w2t.grad]):
        assert rel_err(np.asarray(mine, np.float64), want.numpy()) < 1e-5
