"""Flash attention on tensor cores (``kernels/attention_tc_wgsl.py``).

Like ``test_tensor_cores.py``, two halves:

* every tensor-core attention kernel (five kinds, causal or not, with or without ``key_keep``,
  f16 or f32 results, several head sizes) is compiled by Dawn's WGSL compiler on Dawn's Null
  adapter, which checks the subgroup-uniformity rules of the fragment loads and barriers;
* f16 attention and its three gradients are checked against the float64 reference on the
  adapter the tests run on, on random shapes with masks and edge values, with the tensor-core
  kernels allowed (the default) and turned off (``RUSTYASG_WGPU_ATTENTION_TC=0``): lavapipe (CI) runs the scalar
  kernels either way, a GPU under ``RUSTYASG_WEBGPU=dawn`` the tensor-core ones when asked (the
  launch labels say which ran, and the test asserts it is the one it should be). On the H100 every test
  here passes with the tensor-core kernels (2026-12-07, after the fragment-alignment and the
  staging-stride fixes).
"""

from __future__ import annotations

import numpy as np
import pytest

from rustyasg.core.program import Instr
from rustyasg.core.registry import OPS
from rustyasg.wgpu import webgpu
from rustyasg.wgpu.buffers import upload
from rustyasg.wgpu.kernels import attention_wgsl
from rustyasg.wgpu.kernels.api import KernelBuilder, TensorView, storage_for
from rustyasg.wgpu.kernels.attention_tc_wgsl import tc_attention_wgsl, tc_shared_bytes, tc_subgroups
from rustyasg.wgpu.kernels.attention_wgsl import AttnSpec
from rustyasg.wgpu.kernels.matmul_tc import tensor_core_shape
from rustyasg.wgpu.kernels.matmul_tc_wgsl import FragmentShape, check_fragment_alignment, workgroup_bytes
from rustyasg.wgpu.pipelines import PipelineCache

H100_FRAGMENT = FragmentShape(16, 16, 16, 32)
KINDS = ("forward", "lse", "q", "k", "v")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("E,EV", [(16, 16), (64, 32), (64, 64), (128, 128)])
def test_every_tensor_core_attention_kernel_compiles_in_dawn(dawn_null, kind, E, EV):
    for causal in (False, True):
        for keep in (False, True):
            for out in ("f16", "f32"):
                spec = AttnSpec(kind, E, EV, causal, keep, "f16", "f32" if kind == "lse" else out)
                sg = tc_subgroups(spec, H100_FRAGMENT, 49152)
                assert sg in (2, 4)
                src = tc_attention_wgsl(spec, sg, H100_FRAGMENT.subgroup_size)
                assert src.count("subgroupMatrixMultiplyAccumulate") >= 2
                dawn_null.create_shader_module(code=webgpu.adapt_wgsl(src, "dawn"), label=f"{spec}")


def test_which_specs_the_tensor_core_kernels_take():
    frag = H100_FRAGMENT
    assert tc_subgroups(AttnSpec("forward", 64, 64, elem="f16"), frag, 49152) == 4
    assert tc_subgroups(AttnSpec("forward", 128, 128, elem="f16"), frag, 49152) == 2  # fewer rows fit
    assert tc_subgroups(AttnSpec("forward", 64, 64, elem="f32"), frag, 49152) is None  # f16 operands only
    assert tc_subgroups(AttnSpec("forward", 64, 40, elem="f16"), frag, 49152) is None  # heads of 16s
    assert tc_subgroups(AttnSpec("forward", 64, 64, elem="f16"), frag, 16384) is None  # workgroup memory
    assert tc_subgroups(AttnSpec("forward", 64, 64, elem="f16"), FragmentShape(16, 8, 16, 32), 49152) is None
    assert tc_subgroups(AttnSpec("forward", 64, 64, elem="f16"), None, 49152) is None
    for kind in KINDS:  # memory grows with the head size and the subgroups
        spec = AttnSpec(kind, 64, 64, elem="f16")
        assert tc_shared_bytes(spec, 2) < tc_shared_bytes(spec, 4) < tc_shared_bytes(AttnSpec(kind, 128, 128), 4)


def test_every_workgroup_variable_keeps_fragments_16_byte_aligned():
    """On an H100 a 4-byte counter ahead of the operand arrays shifted every fragment by two
    halves; the generators refuse such a layout, and every kernel they make is aligned."""
    with pytest.raises(ValueError, match="nonfinite"):
        check_fragment_alignment("var<workgroup> nonfinite: atomic<u32>;\nvar<workgroup> Rs: array<f16, 64>;", "k")
    for kind in KINDS:
        for E, EV in ((16, 16), (64, 32), (128, 128)):
            spec = AttnSpec(kind, E, EV, True, True, "f16", "f32")
            sizes = workgroup_bytes(tc_attention_wgsl(spec, tc_subgroups(spec, H100_FRAGMENT, 49152), 32))
            assert sizes and all(b % 16 == 0 for b in sizes.values()), (spec, sizes)


def _views(kb, pool, arrays):
    out = []
    for a in arrays:
        st = storage_for(a.dtype, kb.has_f16)
        out.append(TensorView(upload(kb.ctx, st.to_device(a), pool), tuple(a.shape), a.dtype, st))
    return out


def _run(kb, pool, readback, op, arrays, attrs, shape):
    """Launch ``op``'s kernel on ``arrays``; (result as float64, the launches' labels)."""
    st = storage_for(np.float32, kb.has_f16)
    size = int(np.prod(shape))
    out = TensorView(pool.acquire(max(size * 4, 4)), shape, np.dtype(np.float32), st)
    kb.ctx.queue.write_buffer(out.buffer, 0, np.full(max(size, 1), 7.0, np.float32).tobytes())
    launches = attention_wgsl.KERNELS[op](kb, Instr(0, op, (), attrs, shape, np.dtype(np.float32)),
                                          _views(kb, pool, arrays), out)
    enc = kb.ctx.device.create_command_encoder()
    cpass = enc.begin_compute_pass()
    for launch in launches:
        launch.encode(cpass)
    cpass.end()
    got = st.to_host(readback.read(out.buffer, size * 4, enc), shape, np.float32).astype(np.float64)
    return got, [launch.label for launch in launches]


def _close(got, ref, what, tol):
    """f16 operands, f16 probabilities, f32 sums: error relative to the result's own scale."""
    assert got.shape == ref.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: NaN positions")
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)], err_msg=f"{what}: infinities")
    scale = max(1.0, float(np.max(np.abs(ref[fin]), initial=0.0)))
    np.testing.assert_allclose(got[fin], ref[fin], rtol=tol, atol=tol * scale, err_msg=what)


# batch, L, S, E, EV: whole tiles, partial tiles and fragments, L != S, one row, short keys
SHAPES = [((2, 2), 128, 128, 64, 64), ((3,), 70, 45, 32, 16), ((), 1, 33, 16, 48), ((2,), 97, 130, 64, 32),
          ((1, 3), 40, 7, 16, 16)]


@pytest.mark.parametrize("opt_in", ["0", "1"])
@pytest.mark.parametrize("batch,L,S,E,EV", SHAPES)
def test_float16_attention_and_gradients_equal_the_float64_reference(ctx, pool, readback, rng, monkeypatch,
                                                                     batch, L, S, E, EV, opt_in):
    monkeypatch.setenv(attention_wgsl.TENSOR_CORE_ATTENTION_ENV, opt_in)
    kb = KernelBuilder(ctx, PipelineCache(ctx), scratch_alloc=lambda n, label: pool.acquire(n))
    tensor_cores = tensor_core_shape(ctx) is not None and kb.has_f16 and opt_in == "1"
    for causal, use_keep in ((False, False), (True, False), (False, True), (True, True)):
        q, k, v = (rng.standard_normal(batch + shp).astype(np.float16) for shp in ((L, E), (S, E), (S, EV)))
        keep = rng.random(batch + (S,)) < 0.75 if use_keep else None
        if keep is not None:
            keep[..., 0] = False  # query 0 has no allowed key under causal: NaN / -inf
        dout = rng.standard_normal(batch + (L, EV)).astype(np.float16)
        scale = float(rng.uniform(0.1, 0.4))
        kk = () if keep is None else (keep,)
        f64 = [a.astype(np.float64) for a in (q, k, v)]
        out = OPS["attention"].reference(*f64, *kk, scale=scale, causal=causal)
        lse = OPS["attention_lse"].reference(*f64[:2], *kk, scale=scale, causal=causal).astype(np.float32)
        delta = np.nansum(dout.astype(np.float64) * np.nan_to_num(out), axis=-1).astype(np.float32)
        attrs = {"scale": scale, "causal": causal}
        cases = [("attention", [q, k, v, *kk], {}, out), ("attention_lse", [q, k, *kk], {}, lse)]
        for w, shape in zip("qkv", (q.shape, k.shape, v.shape)):
            ref = OPS["attention_backward"].reference(*f64, dout.astype(np.float64), lse.astype(np.float64),
                                                      delta.astype(np.float64), *kk, wrt=w, **attrs)
            cases.append(("attention_backward", [q, k, v, dout, lse, delta, *kk], {"wrt": w}, ref))
        for op, arrays, extra, ref in cases:
            got, labels = _run(kb, pool, readback, op, arrays, {**attrs, **extra}, ref.shape)
            what = f"{op} {extra} causal={causal} keep={use_keep}"
            if ref.size:
                assert all(("tc " in label) == tensor_cores for label in labels), (what, labels)
            _close(got, ref, what, 1.5e-2 if op == "attention_backward" else 4e-3)


def test_masked_nan_and_inf_never_reach_a_tensor_core_sum(ctx, pool, readback, rng, monkeypatch):
    """A NaN value behind the causal diagonal, an infinite key dropped by key_keep and an infinite
    query: the reference skips masked pairs, so a zero probability must not multiply them."""
    monkeypatch.setenv(attention_wgsl.TENSOR_CORE_ATTENTION_ENV, "1")
    kb = KernelBuilder(ctx, PipelineCache(ctx), scratch_alloc=lambda n, label: pool.acquire(n))
    L = S = 80
    q, k, v = (rng.standard_normal((2, n, 32)).astype(np.float16) for n in (L, S, S))
    dout = rng.standard_normal((2, L, 32)).astype(np.float16)
    keep = np.ones((2, S), bool)
    keep[1, 5] = False
    v[0, 40, 3] = np.nan       # allowed only for queries >= 40 under causal
    k[1, 5, :] = np.inf        # dropped key: no effect anywhere
    v[1, 5, :] = -np.inf
    q[0, 70, 1] = np.inf       # this query's row is NaN (an allowed +inf or NaN score)
    dout[1, 60, 2] = np.nan    # its query's dq row and every key it attends get NaN
    attrs = {"scale": 0.25, "causal": True}
    f64 = [a.astype(np.float64) for a in (q, k, v)]
    out = OPS["attention"].reference(*f64, keep, **attrs)
    lse = OPS["attention_lse"].reference(*f64[:2], keep, **attrs).astype(np.float32)
    got, _ = _run(kb, pool, readback, "attention", [q, k, v, keep], attrs, out.shape)
    assert np.isnan(got[0, 40:, 3]).all() and not np.isnan(got[0, :40]).any()
    _close(got, out, "attention with edge values", 4e-3)
    delta = np.nansum(dout.astype(np.float64) * np.nan_to_num(out), axis=-1).astype(np.float32)
    for w in "qkv":
        ref = OPS["attention_backward"].reference(*f64, dout.astype(np.float64), lse.astype(np.float64),
                                                  delta.astype(np.float64), keep, wrt=w, **attrs)
        got, _ = _run(kb, pool, readback, "attention_backward", [q, k, v, dout, lse, delta, keep],
                      {**attrs, "wrt": w}, ref.shape)
        assert np.isnan(ref).any() and not np.isnan(ref).all()
        _close(got, ref, f"d{w} with edge values", 1.5e-2)
