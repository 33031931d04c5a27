"""Attention against PyTorch: scaled_dot_product_attention and MultiheadAttention (values and gradients)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn


class SDPA(nn.Module):
    """Wraps the function so the parity harness can call it like a module."""

    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, q, k, v, mask=None):
        return nn.scaled_dot_product_attention(q, k, v, attn_mask=mask, **self.kw)


class TorchSDPA(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, q, k, v, mask=None):
        return TF.scaled_dot_product_attention(q, k, v, attn_mask=mask, **self.kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", [{}, {"is_causal": True}, {"scale": 0.3}, {"is_causal": True, "scale": 1.7}],
                         ids=["plain", "causal", "scale", "causal-scale"])
def test_sdpa_parity(kw, dtype, parity, rng):
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    parity(SDPA(**kw), TorchSDPA(**kw), [q, k, v], dtype)


def test_sdpa_cross_lengths_and_masks(parity, rng):
    q = rng.standard_normal((2, 4, 6))
    k, v = rng.standard_normal((2, 7, 6)), rng.standard_normal((2, 7, 3))
    bool_mask = rng.random((4, 7)) < 0.7
    bool_mask[:, 0] = True  # no fully masked row
    parity(SDPA(), TorchSDPA(), [q, k, v, bool_mask], "float64")
    float_mask = rng.standard_normal((2, 4, 7))
    parity(SDPA(), TorchSDPA(), [q, k, v, float_mask], "float64")
    parity(SDPA(is_causal=True), TorchSDPA(is_causal=True), [q, k, v], "float64")  # top-left aligned


def test_sdpa_key_padding_and_bias(rng):
    """key_padding_mask and an additive bias equal an explicit float mask in torch."""
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    pad = np.zeros((2, 5), bool)
    pad[1, 3:] = True
    bias = rng.standard_normal((3, 5, 5))
    syms = [rg.input(a.shape, "float64", name=n) for a, n in ((q, "q"), (k, "k"), (v, "v"))]
    out = nn.scaled_dot_product_attention(*syms, is_causal=True, key_padding_mask=rg.constant(pad),
                                          bias=rg.constant(bias))
    got = rg.function(syms, out, backend="reference")(q, k, v)
    mask = torch.tensor(bias) + torch.where(torch.tensor(pad)[:, None, None, :], -torch.inf, 0.0)
    mask = mask + torch.where(torch.ones(5, 5, dtype=torch.bool).tril(), 0.0, -torch.inf)
    ref = TF.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), attn_mask=mask)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["causal+padding", "key-mask", "gqa", "broadcast-kv", "plain-3d"])
def test_sdpa_fused_equals_composed_and_torch(case, backend, rng):
    """The fused ``attention`` op (``fused=True``) against the composed form and torch: values and gradients."""
    q, k, v = (rng.standard_normal((2, 4, 6, 5)) for _ in range(3))
    kw, tkw = {}, {}
    if case == "causal+padding":
        pad = rng.random((2, 6)) < 0.3
        pad[:, 0] = False  # row 0 of a causal mask sees key 0 only
        kw = {"is_causal": True, "key_padding_mask": rg.constant(pad)}
        causal = np.tril(np.ones((6, 6), bool))
        tkw = {"attn_mask": torch.tensor(causal & ~pad[:, None, None, :])}
    elif case == "key-mask":
        keep = rng.random((2, 1, 1, 6)) < 0.6
        keep[..., 0] = True
        kw, tkw = {"attn_mask": rg.constant(keep)}, {"attn_mask": torch.tensor(keep)}
    elif case == "gqa":
        k, v = k[:, :2], v[:, :2]
        kw = tkw = {"enable_gqa": True}
    elif case == "broadcast-kv":
        k, v = k[:1], v[:1]
    else:
        q, k, v = q[0], k[0], v[0]
    syms = [rg.input(a.shape, "float64", name=n) for a, n in ((q, "q"), (k, "k"), (v, "v"))]
    g = rng.standard_normal(q.shape)
    results = {}
    for fused in (True, False):
        out = nn.scaled_dot_product_attention(*syms, fused=fused, **kw)
        assert (out.op == "attention") == fused
        loss = rg.sum(out * rg.constant(g))
        results[fused] = rg.function(syms, [out, *rg.grad(loss, syms)], backend=backend)(q, k, v)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    ref = TF.scaled_dot_product_attention(tq, tk, tv, **tkw)
    ref.backward(torch.tensor(g))
    for got_fused, got_composed, want in zip(results[True], results[False], (ref, tq.grad, tk.grad, tv.grad)):
        np.testing.assert_allclose(got_fused, want.detach().numpy(), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(got_fused, got_composed, rtol=1e-9, atol=1e-11)


def test_sdpa_fused_true_names_what_prevents_it():
    from rustyasg.core.errors import ShapeError

    x = rg.input((2, 3, 4), name="x")
    for kw, reason in (({"dropout_p": 0.1}, "dropout"), ({"bias": rg.input((3, 3))}, "bias"),
                       ({"return_weights": True}, "weights"), ({"attn_mask": rg.input((3, 3))}, "float attn_mask"),
                       ({"attn_mask": rg.input((3, 3), "bool")}, "over queries and keys")):
        with pytest.raises(ShapeError, match=f"fused=True, but .*{reason}"):
            nn.scaled_dot_product_attention(x, x, x, fused=True, **kw)


def test_sdpa_fused_none_fuses_where_the_arguments_allow_it():
    """``fused=None``: the fused op for what it serves, the composed chain, silently, for the rest;
    the default composes."""
    x = rg.input((2, 3, 4), name="x")
    keys_only = rg.input((2, 1, 3), "bool", name="keep")
    padding = rg.input((2, 3), "bool", name="pad")
    for kw in ({}, {"is_causal": True}, {"attn_mask": keys_only}, {"key_padding_mask": padding}):
        assert nn.scaled_dot_product_attention(x, x, x, fused=None, **kw).op == "attention", kw
        assert nn.scaled_dot_product_attention(x, x, x, **kw).op != "attention", kw
    rng = rg.RNG(0)
    for kw in ({"dropout_p": 0.1, "rng": rng}, {"bias": rg.input((3, 3))}, {"attn_mask": rg.input((3, 3))},
               {"attn_mask": rg.input((3, 3), "bool")}):
        assert nn.scaled_dot_product_attention(x, x, x, fused=None, **kw).op != "attention", kw
    out, weights = nn.scaled_dot_product_attention(x, x, x, return_weights=True, fused=None)
    assert out.op != "attention" and weights.shape == (2, 3, 3)


def test_sdpa_fused_causal_takes_a_symbolic_length(backend, rng):
    t = rg.input((2, "T", 4), "float64", name="t")
    out = nn.scaled_dot_product_attention(t, t, t, is_causal=True, fused=True)
    x = rng.standard_normal((2, 5, 4))
    want = TF.scaled_dot_product_attention(*(torch.tensor(x),) * 3, is_causal=True).numpy()
    np.testing.assert_allclose(rg.function([t], out, backend=backend)(x), want, rtol=1e-9, atol=1e-11)


def test_sdpa_errors_name_shapes_and_line():
    q, k = rg.input((None, 5, 8), name="q"), rg.input((None, 6, 7), name="k")
    with pytest.raises(rg.ShapeError) as err:
        nn.scaled_dot_product_attention(q, k, k)
    assert "feature sizes differ (8 vs 7)" in str(err.value) and "test_attention.py" in str(err.value)
    with pytest.raises(ValueError, match="not both"):
        nn.scaled_dot_product_attention(q, q, q, attn_mask=rg.constant(np.ones((5, 5), bool)), is_causal=True)
    t = rg.input((2, "T", 8), name="t")
    with pytest.raises(rg.ShapeError, match="concrete sequence lengths"):  # the composed chain's causal mask
        nn.scaled_dot_product_attention(t, t, t, is_causal=True)
    assert nn.scaled_dot_product_attention(t, t, t, is_causal=True, fused=None).op == "attention"  # fused: it takes it


def _mha_pair(embed=8, heads=2, **kw):
    return nn.MultiheadAttention(embed, heads, **kw), torch.nn.MultiheadAttention(embed, heads, batch_first=True, **kw)


def _self_attention(**call_kw):
    return lambda m, x, *rest: m(x, x, x, *rest, **call_kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention_parity(bias, dtype, parity, rng):
    ours, theirs = _mha_pair(bias=bias)
    ours.eval(), theirs.eval()
    parity(ours, theirs, [rng.standard_normal((3, 5, 8))], dtype, call=_self_attention())


def test_mha_cross_attention_with_kdim_vdim(parity, rng):
    ours, theirs = _mha_pair(12, 3, kdim=5, vdim=7)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "q_proj_weight" in ours.state_dict()
    q, k, v = rng.standard_normal((2, 4, 12)), rng.standard_normal((2, 6, 5)), rng.standard_normal((2, 6, 7))
    parity(ours, theirs, [q, k, v], "float64")


@pytest.mark.parametrize("mask_kind", ["bool", "float", "per_head", "causal"])
def test_mha_masks_parity(mask_kind, parity, rng):
    ours, theirs = _mha_pair(8, 2)
    x = rng.standard_normal((2, 5, 8))
    pad = np.zeros((2, 5), bool)
    pad[0, 4] = pad[1, 2:] = True
    if mask_kind == "bool":
        mask = rng.random((5, 5)) < 0.3
        mask[:, 0] = False  # key 0 is never padding: no fully blocked row
    elif mask_kind == "float":
        mask = rng.standard_normal((5, 5))
    elif mask_kind == "per_head":
        mask = rng.standard_normal((2 * 2, 5, 5))
    else:
        mask = ~np.tril(np.ones((5, 5), bool))

    def call(m, x, pad, mask):
        return m(x, x, x, key_padding_mask=pad, attn_mask=mask, average_attn_weights=False)

    parity(ours, theirs, [x, pad, mask], "float64", call=call)


def test_mha_is_causal_without_mask_builds_the_causal_mask(rng):
    mha = nn.MultiheadAttention(8, 4)
    mha.eval()
    x = rg.input((None, 6, 8), "float32", name="x")
    out, w = mha(x, x, x, is_causal=True)
    fn = rg.function([x], [out, w], backend="reference")
    _, weights = fn(rng.standard_normal((2, 6, 8)).astype(np.float32))
    assert np.all(np.triu(weights, 1) == 0) and np.allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_mha_sequence_first_and_no_weights(parity, rng):
    ours = nn.MultiheadAttention(8, 2, batch_first=False)
    theirs = torch.nn.MultiheadAttention(8, 2)
    x = rng.standard_normal((5, 3, 8))  # (L, N, E)
    parity(ours, theirs, [x, rng.standard_normal((4, 3, 8))], "float64",
           call=lambda m, q, kv: m(q, kv, kv, need_weights=False)[0])
    out, w = ours(rg.input((5, 3, 8), name="q"), rg.input((4, 3, 8), name="k"), rg.input((4, 3, 8), name="v"),
                  need_weights=False)
    assert w is None and out.shape == (5, 3, 8)


def test_mha_symbolic_batch_compiles_once_per_size(backend, rng):
    mha = nn.MultiheadAttention(8, 2)
    mha.eval()
    x = rg.input((None, 4, 8), name="x")
    out, _ = mha(x, x, x)
    fn = rg.function([x], out, backend=backend)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in mha.state_dict().items()})
    for n in (1, 3):
        a = rng.standard_normal((n, 4, 8)).astype(np.float32)
        ref = theirs(*[torch.from_numpy(a)] * 3)[0].detach().numpy()
        np.testing.assert_allclose(fn(a), ref, rtol=1e-5, atol=1e-5)
    assert fn.stats["compiles"] == 2


def test_mha_dropout_on_weights_in_training(backend, rng):
    mha = nn.MultiheadAttention(8, 2, dropout=0.5)
    mha.set_rng(1)
    x = rg.input((2, 5, 8), name="x")
    _, w = mha(x, x, x, average_attn_weights=False)
    weights = rg.function([x], w, backend=backend)(rng.standard_normal((2, 5, 8)).astype(np.float32))
    zero = weights == 0
    assert 0.3 < zero.mean() < 0.7
    np.testing.assert_allclose(weights.sum(-1)[~zero.all(-1)].mean(), 1.0, atol=0.35)  # 2x scaled survivors


def test_mha_errors():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(rg.ShapeError, match="query has 6 features, expected 8"):
        mha(rg.input((2, 3, 6), name="q"), rg.input((2, 3, 8), name="k"), rg.input((2, 3, 8), name="v"))
    with pytest.raises(rg.ShapeError, match="rank-3"):
        mha(rg.input((3, 8), name="q"), rg.input((3, 8), name="k"), rg.input((3, 8), name="v"))


def test_mha_default_init_matches_pytorch_distribution():
    nn.init.manual_seed(0)
    ours = nn.MultiheadAttention(64, 4)
    bound = np.sqrt(6 / (64 + 3 * 64))  # xavier_uniform over the packed (3E, E) weight
    w = ours.in_proj_weight.value()
    assert w.shape == (192, 64) and bound * 0.98 < np.abs(w).max() <= bound
    assert not ours.in_proj_bias.value().any() and not ours.out_proj.bias.value().any()
