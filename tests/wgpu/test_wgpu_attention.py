"""Flash-attention kernels on wgpu against the core's float64 references and PyTorch.

Random shapes (L != S, E != Ev, batch ranks 0..2, single rows, S == 0, sizes that are
not tile multiples), causal and key_keep masks with fully masked rows, and edge values
(+-inf and NaN in q, k, v; NaN in masked values) through compiled graphs on the wgpu
backend; gradients through ``rg.grad`` against ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rustyasg.core as rg
from rustyasg.core.plugins import load_kernels
from rustyasg.core.program import Instr
from rustyasg.core.registry import OPS
from rustyasg.core.testing import check_op
from rustyasg.wgpu.buffers import upload
from rustyasg.wgpu.kernels import attention_wgsl
from rustyasg.wgpu.kernels.api import KernelBuilder, KernelError, TensorView, storage_for
from rustyasg.wgpu.pipelines import PipelineCache

RTOL, ATOL = 2e-5, 1e-5  # float32 sums of at most a few hundred products, values of order 1


def _case(rng, batch, L, S, E, EV, keep):
    q, k = rng.standard_normal(batch + (L, E)), rng.standard_normal(batch + (S, E))
    v = rng.standard_normal(batch + (S, EV))
    kk = rng.random(batch + (S,)) < 0.7 if keep else None
    return [a.astype(np.float32).astype(np.float64) for a in (q, k, v)], kk


def _run(arrays, keep, scale, causal):
    """(out, lse) on wgpu for float32 ``arrays`` = q, k, v (and the bool ``keep``)."""
    ins = [rg.input(a.shape, name=n) for a, n in zip(arrays, "qkv")]
    kin = rg.input(keep.shape, "bool", name="keep") if keep is not None else None
    kk = () if kin is None else (kin,)
    out = rg.attention(*ins, key_keep=kin, scale=scale, causal=causal)
    lse = rg.attention_lse(ins[0], ins[1], *kk, scale=scale, causal=causal)
    fn = rg.function(ins + list(kk), [out, lse], backend="wgpu")
    return fn(*[a.astype(np.float32) for a in arrays], *(() if keep is None else (keep,)))


def _refs(arrays, keep, scale, causal):
    kk = () if keep is None else (keep,)
    out = OPS["attention"].reference(*arrays, *kk, scale=scale, causal=causal)
    lse = OPS["attention_lse"].reference(arrays[0], arrays[1], *kk, scale=scale, causal=causal)
    return out, lse


def _close(got, ref, what, rtol=RTOL, atol=ATOL):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: NaN positions")
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


# --- forward and lse on random shapes -------------------------------------------------------------
SHAPES = [((), 1, 1, 1, 1), ((3,), 5, 9, 4, 7), ((2, 3), 70, 37, 8, 5), ((2,), 1, 70, 16, 16),
          ((1, 2), 33, 1, 3, 2), ((2,), 4, 0, 4, 3), ((), 100, 65, 64, 64), ((2,), 0, 5, 4, 4)]


@pytest.mark.parametrize("batch,L,S,E,EV", SHAPES)
def test_forward_and_lse_equal_the_float64_reference(rng, batch, L, S, E, EV):
    for causal, keep in ((False, False), (True, True)):
        arrays, kk = _case(rng, batch, L, S, E, EV, keep)
        if kk is not None and S:
            kk[..., 0] = False  # row 0 has no allowed key under causal: NaN / -inf
        scale = float(rng.uniform(0.1, 1.0))
        out, lse = _run(arrays, kk, scale, causal)
        ref_out, ref_lse = _refs(arrays, kk, scale, causal)
        _close(out, ref_out, f"attention causal={causal}")
        _close(lse, ref_lse, f"attention_lse causal={causal}")


def test_fully_masked_rows_are_nan_and_no_keys_give_zeros():
    arrays = [np.ones((2, 3, 4)), np.ones((2, 5, 4)), np.ones((2, 5, 2))]
    keep = np.zeros((2, 5), bool)
    keep[1, 3] = True
    out, lse = _run(arrays, keep, 0.5, causal=True)
    assert np.isnan(out[0]).all() and np.isneginf(lse[0]).all()
    assert np.isnan(out[1, :3]).all() and np.isneginf(lse[1, :3]).all()  # queries 0..2 precede key 3
    empty = [np.ones((3, 4)), np.ones((0, 4)), np.ones((0, 2))]
    out, lse = _run(empty, None, 0.5, causal=False)
    np.testing.assert_array_equal(out, np.zeros((3, 2)))
    assert np.isneginf(lse).all()


# --- edge values ------------------------------------------------------------------------------------
def test_inf_and_nan_in_q_k_v_follow_the_reference(rng):
    arrays, keep = _case(rng, (3,), 6, 7, 4, 3, keep=True)
    q, k, v = arrays
    keep[0, 2] = False
    v[0, 2] = np.nan        # masked: must not reach row outputs of batch 0
    v[1, 4] = np.inf        # allowed inf value
    q[1, 3, 0] = np.nan     # one NaN query row
    k[2, 1, 2] = np.inf     # +-inf scores in batch 2
    q[2, 5, :] = -np.inf    # mixed-sign inf products: NaN scores
    keep[2, :] = True
    k[0, 5] = -1e30         # -inf scores for batch 0 where q's sign makes them so (overflowed in float32)
    arrays = [a.astype(np.float32).astype(np.float64) for a in (q, k, v)]
    for causal in (False, True):
        out, lse = _run(arrays, keep, 0.7, causal)
        ref_out, ref_lse = _refs(arrays, keep, 0.7, causal)
        assert not np.isnan(out[0]).all()
        _close(out, ref_out, f"edge attention causal={causal}")
        _close(lse, ref_lse, f"edge lse causal={causal}")


def test_allowed_keys_with_minus_inf_scores_still_multiply_their_values():
    # Key 1's score is -inf for every query: its weight is 0, and 0 * inf is NaN (numpy's rule).
    q = np.ones((2, 2))
    k = np.array([[1.0, 1.0], [-np.inf, 0.0], [0.5, 0.5]])
    v = np.array([[1.0], [np.inf], [2.0]])
    out, lse = _run([q, k, v], None, 1.0, causal=False)
    ref_out, ref_lse = _refs([q, k, v], None, 1.0, causal=False)
    assert np.isnan(ref_out).all()
    _close(out, ref_out, "0 * inf")
    _close(lse, ref_lse, "lse with a -inf score")
    keep = np.array([True, False, True])  # masked instead: no NaN
    out, _ = _run([q, k, v], keep, 1.0, causal=False)
    _close(out, _refs([q, k, v], keep, 1.0, causal=False)[0], "masked -inf key")
    assert np.isfinite(out).all()


# --- backward -----------------------------------------------------------------------------------
def _backward_refs(arrays, dout, keep, scale, causal):
    kk = () if keep is None else (keep,)
    out, lse = _refs(arrays, keep, scale, causal)
    delta = np.nansum(dout * np.nan_to_num(out), axis=-1)
    return [OPS["attention_backward"].reference(*arrays, dout, lse, delta, *kk, scale=scale, causal=causal, wrt=w)
            for w in "qkv"], lse, delta


@pytest.mark.parametrize("batch,L,S,E,EV", [((2,), 5, 9, 4, 7), ((), 70, 37, 8, 5), ((2, 1), 1, 40, 16, 8),
                                            ((3,), 33, 1, 3, 2), ((), 3, 0, 4, 4)])
def test_backward_kernels_equal_the_float64_reference(rng, batch, L, S, E, EV):
    for causal, use_keep in ((False, False), (True, True)):
        arrays, keep = _case(rng, batch, L, S, E, EV, use_keep)
        if keep is not None and S:
            keep[..., 0] = False
        dout = rng.standard_normal(batch + (L, EV)).astype(np.float32).astype(np.float64)
        scale = float(rng.uniform(0.1, 1.0))
        refs, lse, delta = _backward_refs(arrays, dout, keep, scale, causal)
        names = ["q", "k", "v", "dout", "lse", "delta"]
        vals = arrays + [dout, lse, delta]
        ins = [rg.input(a.shape, name=n) for a, n in zip(vals, names)]
        kk = () if keep is None else (rg.input(keep.shape, "bool", name="keep"),)
        outs = [rg.attention_backward(*ins, *kk, scale=scale, causal=causal, wrt=w) for w in "qkv"]
        fn = rg.function(ins + list(kk), outs, backend="wgpu")
        got = fn(*[a.astype(np.float32) for a in vals], *(() if keep is None else (keep,)))
        for w, g, r in zip("qkv", got, refs):
            _close(g, r, f"d{w} causal={causal}", atol=1e-5)


def _torch_sdpa(arrays, keep, scale, causal, cot):
    t = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    L, S = arrays[0].shape[-2], arrays[1].shape[-2]
    mask = torch.ones(arrays[0].shape[:-2] + (L, S), dtype=torch.bool)
    if causal:
        mask &= torch.ones(L, S, dtype=torch.bool).tril()
    if keep is not None:
        mask &= torch.tensor(keep)[..., None, :]
    out = F.scaled_dot_product_attention(*t, attn_mask=mask, scale=scale)
    out.backward(torch.tensor(cot))
    return [out.detach().numpy()] + [x.grad.numpy() for x in t]


@pytest.mark.parametrize("batch,L,S,E,EV,causal", [((2, 3), 37, 37, 16, 16, True), ((2,), 6, 70, 8, 5, False),
                                                   ((), 40, 9, 5, 12, False)])
def test_forward_and_gradients_match_pytorch(rng, batch, L, S, E, EV, causal):
    arrays, keep = _case(rng, batch, L, S, E, EV, keep=True)
    keep[..., 0] = True  # every query keeps a key (PyTorch's gradient of an all-masked row is NaN)
    cot = rng.standard_normal(batch + (L, EV)).astype(np.float32).astype(np.float64)
    scale = float(rng.uniform(0.1, 1.0))

    ins = [rg.input(a.shape, name=n) for a, n in zip(arrays, "qkv")]
    kin = rg.input(keep.shape, "bool", name="keep")
    out = rg.attention(*ins, key_keep=kin, scale=scale, causal=causal)
    c = rg.input(cot.shape, name="cot")
    fn = rg.function(ins + [kin, c], [out] + list(rg.grad(rg.sum(out * c), ins)), backend="wgpu")
    got = fn(*[a.astype(np.float32) for a in arrays], keep, cot.astype(np.float32))
    ref = _torch_sdpa(arrays, keep, scale, causal, cot)
    for what, g, r in zip(["out", "dq", "dk", "dv"], got, ref):
        _close(g, r, f"{what} vs torch", atol=1e-5)


def test_gradients_skip_masked_keys_and_fully_masked_rows(rng):
    arrays, keep = _case(rng, (2,), 5, 6, 4, 3, keep=True)
    keep[0] = False           # batch 0: no key at all -> no gradient anywhere
    keep[1, 2] = False
    arrays[2][1, 2] = np.nan  # masked NaN value: no NaN in any gradient
    ins = [rg.input(a.shape, name=n) for a, n in zip(arrays, "qkv")]
    kin = rg.input(keep.shape, "bool", name="keep")
    out = rg.attention(*ins, key_keep=kin, scale=0.5)
    c = rg.input((2, 5, 3), name="cot")
    fn = rg.function(ins + [kin, c], list(rg.grad(rg.sum(rg.where(rg.isnan(out), 0.0, out) * c), ins)),
                     backend="wgpu")
    cot = rng.standard_normal((2, 5, 3)).astype(np.float32)
    dq, dk, dv = fn(*[a.astype(np.float32) for a in arrays], keep, cot)
    for g in (dq, dk, dv):
        assert np.isfinite(g).all()
        np.testing.assert_array_equal(g[0], 0.0)
    np.testing.assert_array_equal(dk[1, 2], 0.0)
    np.testing.assert_array_equal(dv[1, 2], 0.0)


def test_conformance_kit_through_the_wgpu_backend(rng):
    # Forward against the references, gradients (compiled on wgpu) against finite differences.
    for op in ("attention", "attention_lse", "attention_backward"):
        for dtype in ("float32", "float64"):  # float64 is computed in float32 on wgpu
            check_op(op, backend="wgpu", dtype=dtype, seed=int(rng.integers(2**31)))


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-3), ("bfloat16", 1.6e-2)])
def test_16_bit_operands_are_computed_in_float32(rng, dtype, tol):
    arrays, keep = _case(rng, (2,), 9, 11, 8, 4, keep=True)
    keep[..., 0] = True
    h = [a.astype(rg.dtypes.as_dtype(dtype)) for a in arrays]
    ins = [rg.input(a.shape, dtype, name=n) for a, n in zip(h, "qkv")]
    kin = rg.input(keep.shape, "bool", name="keep")
    fn = rg.function(ins + [kin], rg.attention(*ins, key_keep=kin, scale=0.4, causal=True), backend="wgpu")
    got = fn(*h, keep)
    assert got.dtype == rg.dtypes.as_dtype(dtype)
    ref = OPS["attention"].reference(*[a.astype(np.float64) for a in h], keep, scale=0.4, causal=True)
    _close(got.astype(np.float64), ref, dtype, rtol=tol, atol=tol)


# --- kernel-level paths: small workgroup memory, dispatches split over x/y/z, refusals ------------
def _launch(kb, pool, readback, op, arrays, attrs):
    views = []
    for a in arrays:
        st = storage_for(a.dtype, kb.has_f16)
        views.append(TensorView(upload(kb.ctx, st.to_device(a), pool), tuple(a.shape), a.dtype, st))
    ref = OPS[op].reference(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays], **attrs)
    st = storage_for(np.float32, kb.has_f16)
    out = TensorView(pool.acquire(max(ref.size * 4, 4)), ref.shape, np.dtype(np.float32), st)
    kb.ctx.queue.write_buffer(out.buffer, 0, np.full(max(ref.size, 1), np.nan, np.float32).tobytes())
    launches = attention_wgsl.KERNELS[op](kb, Instr(0, op, (), attrs, ref.shape, np.dtype(np.float32)), views, out)
    enc = kb.ctx.device.create_command_encoder()
    cpass = enc.begin_compute_pass()
    for launch in launches:
        launch.encode(cpass)
    cpass.end()
    return st.to_host(readback.read(out.buffer, ref.size * 4, enc), ref.shape, np.float32), ref


def test_small_workgroup_memory_and_split_dispatches(ctx, pool, readback, rng):
    small = dataclasses.replace(ctx, limits={**ctx.limits, "max-compute-workgroups-per-dimension": 3,
                                             "max-compute-workgroup-storage-size": 1024})
    kb = KernelBuilder(small, PipelineCache(small), scratch_alloc=lambda n, label: pool.acquire(n))
    (q, k, v), keep = _case(rng, (3, 2), 130, 75, 12, 20, keep=True)
    q, k, v = (a.astype(np.float32) for a in (q, k, v))
    out, lse = _refs([q, k, v], keep, 0.3, True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    delta = np.nansum(dout * np.nan_to_num(out), axis=-1).astype(np.float32)
    lse = lse.astype(np.float32)
    cases = [("attention", [q, k, v, keep], {}), ("attention_lse", [q, k, keep], {})] + [
        ("attention_backward", [q, k, v, dout, lse, delta, keep], {"wrt": w}) for w in "qkv"]
    for op, arrays, extra in cases:
        attrs = {"scale": 0.3, "causal": True, **extra}
        got, ref = _launch(kb, pool, readback, op, arrays, attrs)
        _close(got, ref, f"{op} {extra}", atol=1e-5)
    assert attention_wgsl.tile_for(attention_wgsl.AttnSpec("forward", 12, 20, keep=True), 1024) == 4


def test_head_sizes_past_the_limit_are_refused_with_the_op_and_the_limit(ctx, pipelines):
    kb = KernelBuilder(ctx, pipelines)
    big = attention_wgsl.MAX_HEAD_DIM + 1
    views = [TensorView(None, s, np.dtype(np.float32), storage_for(np.float32, False)) for s in ((2, 3, big), (2, 4, big),
                                                                                          (2, 4, 8))]
    instr = Instr(0, "attention", (), {"scale": 1.0, "causal": False}, (2, 3, 8), np.dtype(np.float32))
    with pytest.raises(KernelError, match=rf"attention \(wgpu\): head sizes up to {big - 1}"):
        attention_wgsl.KERNELS["attention"](kb, instr, views, None)


def test_the_plugin_registers_the_attention_kernels():
    table = load_kernels("wgpu")
    assert all(table[op] is kernel for op, kernel in attention_wgsl.KERNELS.items())
