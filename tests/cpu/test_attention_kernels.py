"""The cpu backend's fused attention kernels against the float64 reference and PyTorch's SDPA.

Covers the tiling (many query blocks and key tiles, forced small), masks (causal, key_keep,
rows with no allowed key), shapes at the edges (L or S of 1, S == 0, empty batch, batch
ranks 0..2, L != S, E != Ev) and edge values (NaN/inf in q, k, v; NaN behind a mask; large
scores), for ``attention``, ``attention_lse`` and each ``attention_backward``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rustyasg.core as rg
from rustyasg.cpu import threads
from rustyasg.cpu.kernels import attention as kernels

OUTPUTS = ("out", "lse", "dq", "dk", "dv")


def _graph(batch, L, S, E, Ev, dtype, causal, scale, with_keep):
    """Inputs ``q, k, v[, keep], g`` and outputs ``out, lse, dq, dk, dv`` (gradients of ``sum(out * g)``)."""
    q = rg.input(batch + (L, E), dtype, name="q")
    k = rg.input(batch + (S, E), dtype, name="k")
    v = rg.input(batch + (S, Ev), dtype, name="v")
    keep = [rg.input(batch + (S,), "bool", name="keep")] if with_keep else []
    out = rg.attention(q, k, v, *keep, scale=scale, causal=causal)
    lse = rg.attention_lse(q, k, *keep, scale=scale, causal=causal)
    g = rg.input(out.shape, dtype, name="g")
    grads = rg.grad((out * g).sum(), [q, k, v])
    return [q, k, v, *keep, g], [out, lse, *grads]


def _run(arrays, causal, scale, keep=None, dtype="float32", backend="cpu"):
    q, k, v, g = arrays
    batch, (L, E), (S, Ev) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    inputs, outputs = _graph(batch, L, S, E, Ev, dtype, causal, scale, keep is not None)
    cast = (lambda a: a.astype(dtype))
    feed = [cast(q), cast(k), cast(v)] + ([keep] if keep is not None else []) + [cast(g)]
    return [np.asarray(r) for r in rg.function(inputs, outputs, backend=backend)(*feed)]


def _reference(arrays, causal, scale, keep=None):
    with np.errstate(all="ignore"):  # the edge cases make numpy's matmul warn about its NaNs
        return _run([a.astype(np.float64) for a in arrays], causal, scale, keep, "float64", "reference")


def assert_matches(got, want, rtol, label=""):
    """Same NaN and inf positions (and signs); finite values within ``rtol`` of the array's largest magnitude.

    The magnitude is at least 0.1: a gradient that cancels to 0 (one key: softmax is constant)
    is compared with the rounding of its O(1) terms, not with 0.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, label
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{label}: NaN positions")
    inf = np.isinf(want)
    np.testing.assert_array_equal(np.isinf(got), inf, err_msg=f"{label}: inf positions")
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"{label}: inf signs")
    fin = np.isfinite(want)
    if fin.any():
        scale = max(np.abs(want[fin]).max(), 0.1)
        err = np.abs(got[fin] - want[fin]).max() / scale
        assert err <= rtol, f"{label}: relative error {err:.3g} > {rtol}"


def _arrays(rng, batch, L, S, E, Ev):
    return [rng.standard_normal(batch + s) for s in ((L, E), (S, E), (S, Ev), (L, Ev))]


def _keep_every_row_some_key(rng, batch, L, S, causal):
    """A padding mask under which every query still has an allowed key (PyTorch gives those rows NaN too)."""
    keep = rng.random(batch + (S,)) < 0.6
    keep[..., 0] = True
    return keep


@pytest.fixture
def small_tiles(monkeypatch):
    """Blocks of 8 queries and tiles of 16 keys: every shape below spans several of both."""
    monkeypatch.setattr(kernels, "BLOCK", 8)
    monkeypatch.setattr(kernels, "TILE_WORK", 8 * 16)


CASES = [  # batch, L, S, E, Ev, causal, keep
    ((), 5, 7, 3, 2, False, False),
    ((2,), 9, 9, 4, 4, True, False),
    ((2, 3), 37, 50, 8, 5, True, True),
    ((3,), 50, 21, 6, 6, True, True),   # L > S under causal: the last queries see every key
    ((2,), 21, 50, 6, 3, False, True),
    ((4,), 1, 13, 5, 5, True, False),   # one query: one key under causal
    ((4,), 13, 1, 5, 2, False, True),   # one key
    ((1, 2), 1, 1, 2, 2, True, False),
]


@pytest.mark.parametrize("tiles", ["default", "small"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"b{c[0]}-L{c[1]}-S{c[2]}-E{c[3]}-Ev{c[4]}-c{int(c[5])}-m{int(c[6])}")
def test_forward_lse_and_gradients_match_the_float64_reference_and_torch(case, tiles, request, rng):
    if tiles == "small":
        request.getfixturevalue("small_tiles")
    batch, L, S, E, Ev, causal, with_keep = case
    arrays = _arrays(rng, batch, L, S, E, Ev)
    keep = _keep_every_row_some_key(rng, batch, L, S, causal) if with_keep else None
    scale = 0.7
    want = _reference(arrays, causal, scale, keep)
    for name, got, ref in zip(OUTPUTS, _run(arrays, causal, scale, keep), want):
        assert_matches(got, ref, 1e-5, f"float32 {name}")
    for name, got, ref in zip(OUTPUTS, _run(arrays, causal, scale, keep, "float64"), want):
        assert_matches(got, ref, 1e-12, f"float64 {name}")

    # PyTorch's SDPA, forward and gradients, in float32
    tq, tk, tv = (torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in arrays[:3])
    allowed = torch.ones(L, S, dtype=torch.bool).tril() if causal else torch.ones(L, S, dtype=torch.bool)
    if keep is not None:
        allowed = allowed & torch.tensor(keep)[..., None, :]
    y = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=allowed, scale=scale)
    y.backward(torch.tensor(arrays[3], dtype=torch.float32))
    theirs = [y.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()]
    ours = _run(arrays, causal, scale, keep)
    for name, got, ref in zip(("out", "dq", "dk", "dv"), [ours[0], *ours[2:]], theirs):
        assert_matches(got, ref, 2e-5, f"vs torch {name}")


def test_fully_masked_rows_give_nan_and_minus_inf_and_no_gradient(rng, small_tiles):
    batch, L, S = (3,), 20, 24
    arrays = _arrays(rng, batch, L, S, 4, 3)
    keep = rng.random(batch + (S,)) < 0.5
    keep[0] = False                 # no key at all for the first batch entry
    keep[1, :5] = False             # under causal, queries 0..4 of the second see nothing
    keep[1, 5] = True
    for causal in (False, True):
        got = _run(arrays, causal, 0.5, keep)
        want = _reference(arrays, causal, 0.5, keep)
        assert np.isnan(got[0][0]).all() and (got[1][0] == -np.inf).all()
        assert (got[2][0] == 0).all() and (got[3][0] == 0).all() and (got[4][0] == 0).all()
        if causal:
            assert np.isnan(got[0][1, :5]).all() and not np.isnan(got[0][1, 5:]).any()
        for name, g, w in zip(OUTPUTS, got, want):
            if name in ("dq", "dk", "dv"):  # rows of NaN output feed NaN into delta; they are excluded anyway
                g, w = np.nan_to_num(g), np.nan_to_num(w)
            assert_matches(g, w, 1e-5, name)


@pytest.mark.parametrize("causal", [False, True])
def test_no_keys_gives_zeros_and_an_empty_batch_gives_empty_results(causal, rng):
    arrays = _arrays(rng, (2,), 4, 0, 3, 5)
    out, lse, dq, dk, dv = _run(arrays, causal, 0.5)
    assert out.shape == (2, 4, 5) and (out == 0).all()
    assert (lse == -np.inf).all() and (dq == 0).all() and dk.shape == (2, 0, 3) and dv.shape == (2, 0, 5)
    empty = _run(_arrays(rng, (0, 3), 4, 6, 3, 5), causal, 0.5)
    assert [r.shape for r in empty] == [(0, 3, 4, 5), (0, 3, 4), (0, 3, 4, 3), (0, 3, 6, 3), (0, 3, 6, 5)]


def _edge_arrays(rng):
    q, k, v, g = _arrays(rng, (6,), 10, 12, 4, 3)
    q[0, 2, 1] = np.nan            # one NaN query: its row is NaN
    k[1, 3, 0] = np.inf            # an infinite key: +inf or -inf scores in every row
    k[2, 5, :] = -np.inf
    v[3, 4, 2] = np.inf            # an infinite value that is attended
    v[4, 7, :] = np.nan            # NaN behind the mask below: must not reach anything
    k[4, 7, :] = np.nan
    q[5] *= 300.0                  # scores in the thousands: exp would overflow without the max shift
    return [q, k, v, g]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-5), ("float64", 1e-12)])
def test_edge_values_match_the_reference(causal, dtype, rtol, rng, small_tiles):
    arrays = _edge_arrays(rng)
    if dtype == "float32":  # scores of thousands carry float32 rounding of ~1e-4 into exp: use exact products
        arrays[0][5] = np.round(arrays[0][5])
        arrays[1][5] = np.round(arrays[1][5] * 4) / 4
    keep = np.ones((6, 12), bool)
    keep[4, 7] = False
    keep[:, 11] = False
    want = _reference(arrays, causal, 0.5, keep)
    got = _run(arrays, causal, 0.5, keep, dtype)
    assert not np.isnan(got[0][4]).any() and not np.isnan(got[3][4]).any()  # the masked NaN stays out
    assert np.isnan(got[0][0, 2]).all()
    assert np.isfinite(got[0][5]).all()
    for name, g, w in zip(OUTPUTS, got, want):
        assert_matches(g, w, rtol, f"{dtype} {name}")


@pytest.mark.parametrize("wrt", ["q", "k", "v"])
def test_backward_op_with_nonfinite_operands_matches_the_reference(wrt, rng, small_tiles):
    """The backward ops alone, fed the saved statistics, where the contracted operand is not finite."""
    q, k, v, dout = _arrays(rng, (3,), 11, 17, 4, 5)
    keep = rng.random((3, 17)) < 0.7
    keep[:, 0] = True
    for t in (q, k, v, dout):  # a NaN and an inf in each operand: behind the mask or the causal triangle
        t[0, 3, 1] = np.nan
        t[1, 9, 0] = np.inf
    keep[0, 3] = False
    with np.errstate(all="ignore"):
        ref = rg.OPS["attention_lse"].reference(q, k, keep, scale=0.8, causal=True)
        delta = np.sum(dout * rg.OPS["attention"].reference(q, k, v, keep, scale=0.8, causal=True), axis=-1)
        want = rg.OPS["attention_backward"].reference(q, k, v, dout, ref, delta, keep, scale=0.8, causal=True,
                                                      wrt=wrt)
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        f = np.dtype(dtype)
        ins = [rg.input(a.shape, dtype, name=n) for a, n in zip((q, k, v, dout, ref, delta), ("q", "k", "v", "dout", "lse", "delta"))]
        kin = rg.input(keep.shape, "bool", name="keep")
        out = rg.attention_backward(*ins, kin, scale=0.8, causal=True, wrt=wrt)
        got = rg.function([*ins, kin], out, backend="cpu")(*(a.astype(f) for a in (q, k, v, dout, ref, delta)), keep)
        assert_matches(got, want, rtol, f"{dtype} d{wrt}")


def test_split_across_threads_gives_the_same_bits(rng, monkeypatch, small_tiles):
    arrays = _arrays(rng, (5,), 40, 33, 6, 4)
    keep = _keep_every_row_some_key(rng, (5,), 40, 33, True)
    one = _run(arrays, True, 0.4, keep)
    monkeypatch.setenv("RUSTYASG_CPU_THREADS", "2")
    monkeypatch.setattr(threads, "MIN_WORK", 0)
    two = _run(arrays, True, 0.4, keep)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_sixteen_bit_operands_run_widened(rng):
    q, k, v, _ = _arrays(rng, (2,), 6, 7, 4, 4)
    ins = [rg.input(a.shape, "float16", name=n) for a, n in zip((q, k, v), "qkv")]
    out, lse = rg.attention(*ins, causal=True), rg.attention_lse(*ins[:2], scale=0.5, causal=True)
    h = [a.astype(np.float16) for a in (q, k, v)]
    got_out, got_lse = rg.function(ins, [out, lse], backend="cpu")(*h)
    assert got_out.dtype == np.float16 and got_lse.dtype == np.float32
    wide = [a.astype(np.float64) for a in h]
    want = rg.OPS["attention"].reference(*wide, scale=0.5, causal=True)
    np.testing.assert_allclose(got_out.astype(np.float64), want, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(got_lse, rg.OPS["attention_lse"].reference(*wide[:2], scale=0.5, causal=True),
                               rtol=1e-5)


def test_strided_operands_from_a_head_split_are_read_correctly(rng):
    """GPT-style heads: ``(B, T, H, D)`` permuted to ``(B, H, T, D)`` views before the op."""
    x = rng.standard_normal((2, 7, 3, 4)).astype(np.float32)
    inp = rg.input(x.shape, "float32", name="x")
    heads = rg.permute(inp, (0, 2, 1, 3))
    y = rg.attention(heads, heads * 0.5, heads, causal=True)
    (gx,) = rg.grad((y * y).sum(), [inp])
    got = rg.function([inp], [y, gx], backend="cpu")(x)
    want = rg.function([inp], [y, gx], backend="reference")(x.astype(np.float64))
    for g, w in zip(got, want):
        assert_matches(g, w, 1e-5)


def _copies_into_attention(exe):
    """Steps that copy a value for an attention kernel (the executor's contiguous copies)."""
    lines = exe.describe().splitlines()
    copied = {line.rsplit("-> ", 1)[1] for line in lines if line.startswith("copy(")}
    return [c for c in copied if any(c in line.split("->")[0] for line in lines if "attention" in line)]


@pytest.mark.parametrize("layout,in_place", [("heads", True), ("broadcast batch", True), ("features strided", False)])
def test_strided_operands_are_read_in_place_where_the_features_are_contiguous(layout, in_place, rng):
    """Heads split off a packed tensor by ``permute`` (rows far apart), a batch broadcast (stride 0):
    read as they are; features that are not contiguous: copied first. A NaN in a padded key row
    takes the loops over allowed pairs, which index the strided operand themselves."""
    B, T, H, D = 2, 9, 3, 4
    x = rng.standard_normal((B, T, 3, H, D)).astype(np.float32)
    x[1, 4, 1, 2, :] = np.nan  # key 4 of batch 1, head 2: padded away below
    keep = np.ones((B, H, T), bool)
    keep[1, :, 4] = False

    def graph(dtype):
        inp = rg.input(x.shape, dtype, name="x")
        kin = rg.input(keep.shape, "bool", name="keep")
        q, k, v = (rg.permute(inp[:, :, j], (0, 2, 1, 3)) for j in range(3))  # (B, H, T, D) views
        if layout == "broadcast batch":
            k = rg.broadcast_to(k[:1], shape=k.shape)
            v = rg.broadcast_to(v[:1], shape=v.shape)
        elif layout == "features strided":
            q = rg.permute(rg.tanh(rg.permute(q, (0, 1, 3, 2))), (0, 1, 3, 2))  # features T apart
        y = rg.attention(q, k, v, kin, causal=True)
        return [inp, kin], [y, *rg.grad((y * y).sum(), [inp])]

    f = rg.function(*graph("float32"), backend="cpu")
    assert (_copies_into_attention(f.compile(x, keep)) == []) == in_place
    with np.errstate(all="ignore"):
        want = rg.function(*graph("float64"), backend="reference")(x.astype(np.float64), keep)
    for got, ref in zip(f(x, keep), want):
        assert_matches(got, ref, 1e-5)
