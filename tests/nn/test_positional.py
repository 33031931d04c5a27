"""Positional encodings: sinusoidal, learned, rotary (RoPE) and ALiBi, against PyTorch formulations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn


class TorchSinusoidal(torch.nn.Module):
    """The PyTorch tutorial's PositionalEncoding (batch first, no dropout)."""

    def __init__(self, d_model, max_len):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)
        self.offset = 0

    def forward(self, x):
        return x + self.pe[self.offset:self.offset + x.shape[1]].to(x.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("offset", [0, 3])
def test_sinusoidal_parity(offset, dtype, parity, rng):
    theirs = TorchSinusoidal(10, 32)
    theirs.offset = offset
    ours = nn.SinusoidalPositionalEncoding(10, max_len=32)
    parity(ours, theirs, [rng.standard_normal((2, 7, 10))], dtype, call=lambda m, x: m(x, offset=offset),
           torch_call=lambda m, x: m(x))
    assert list(ours.state_dict()) == []


def test_sinusoidal_odd_width_and_range_errors():
    table = nn.sinusoidal_table(4, 5)
    assert table.shape == (4, 5) and np.allclose(table[:, 1::2] ** 2 + table[:, 0:4:2] ** 2, 1.0)
    pe = nn.SinusoidalPositionalEncoding(8, max_len=6)
    with pytest.raises(ValueError, match="exceed max_len 6"):
        pe(rg.input((1, 4, 8), name="x"), offset=3)
    with pytest.raises(rg.ShapeError, match="concrete sequence length"):
        pe(rg.input((1, "T", 8), name="x"))


def test_learned_positional_parity(parity, rng):
    class TorchLearned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(12, 6))

        def forward(self, x):
            return x + self.weight[2:2 + x.shape[1]]

    ours = nn.LearnedPositionalEmbedding(12, 6)
    parity(ours, TorchLearned(), [rng.standard_normal((3, 5, 6))], "float64", call=lambda m, x: m(x, offset=2),
           torch_call=lambda m, x: m(x))
    assert ours.embeddings(4).shape == (4, 6)


def _torch_rope(x, base=10000.0, interleaved=False, offset=0, rot_dim=None):
    """Reference RoPE in torch: complex multiplication for interleaved pairs, rotate_half otherwise."""
    d = rot_dim or x.shape[-1]
    rot, rest = x[..., :d], x[..., d:]
    t = torch.arange(offset, offset + x.shape[-2], dtype=torch.float64)
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.outer(t, inv).to(x.dtype)
    if interleaved:
        pairs = torch.view_as_complex(rot.reshape(*rot.shape[:-1], d // 2, 2).contiguous())
        out = torch.view_as_real(pairs * torch.polar(torch.ones_like(ang), ang)).flatten(-2)
    else:
        cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
        half = torch.cat([-rot[..., d // 2:], rot[..., : d // 2]], -1)
        out = rot * cos + half * sin
    return torch.cat([out, rest], -1)


class TorchRope(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return _torch_rope(x, **self.kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("offset,rot_dim", [(0, None), (5, None), (2, 4)])
def test_rotary_parity(interleaved, offset, rot_dim, dtype, parity, rng):
    ours = nn.RotaryEmbedding(rot_dim or 8, base=500.0, interleaved=interleaved)
    theirs = TorchRope(base=500.0, interleaved=interleaved, offset=offset, rot_dim=rot_dim)
    parity(ours, theirs, [rng.standard_normal((2, 3, 6, 8))], dtype, call=lambda m, x: m(x, offset=offset),
           torch_call=lambda m, x: m(x))


def test_rotary_relative_property(rng):
    """Rotated q·k depends only on the distance between positions."""
    rope = nn.RotaryEmbedding(8)
    q = rg.input((1, 1, 1, 8), "float64", name="q")
    k = rg.input((1, 1, 1, 8), "float64", name="k")
    dots = [(rope(q, offset=a) * rope(k, offset=b)).sum() for a, b in ((0, 3), (4, 7), (10, 13))]
    vals = rg.function([q, k], dots, backend="reference")(rng.standard_normal((1, 1, 1, 8)),
                                                          rng.standard_normal((1, 1, 1, 8)))
    np.testing.assert_allclose(vals, vals[0], rtol=1e-12)
    with pytest.raises(ValueError, match="even"):
        nn.RotaryEmbedding(7)
    with pytest.raises(rg.ShapeError, match="rotates 16 features"):
        nn.RotaryEmbedding(16)(rg.input((1, 3, 8), name="x"))


def _paper_slopes(n):
    """get_slopes from the ALiBi authors' code (ofirpress/attention_with_linear_biases)."""
    def pow2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return pow2(n)
    closest = 2 ** math.floor(math.log2(n))
    return pow2(closest) + _paper_slopes(2 * closest)[0::2][: n - closest]


@pytest.mark.parametrize("heads", [1, 4, 6, 8, 12])
def test_alibi_slopes_match_the_paper(heads):
    np.testing.assert_allclose(nn.alibi_slopes(heads), _paper_slopes(heads), rtol=1e-15)
    if heads == 8:
        np.testing.assert_allclose(nn.alibi_slopes(8), 2.0 ** -np.arange(1, 9))


def test_alibi_attention_matches_torch_with_bias_mask(parity, rng):
    heads = 4

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.alibi = nn.ALiBi(heads)

        def forward(self, q, k, v):
            return nn.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                   bias=self.alibi(q.shape[2], k.shape[2], dtype=q.dtype))

    class Theirs(torch.nn.Module):
        def forward(self, q, k, v):
            L = q.shape[2]
            dist = torch.arange(L)[:, None] - torch.arange(L)[None, :]
            slopes = torch.tensor(_paper_slopes(heads), dtype=q.dtype)
            bias = -slopes[:, None, None] * dist
            bias = bias.masked_fill(dist < 0, -torch.inf)
            return TF.scaled_dot_product_attention(q, k, v, attn_mask=bias)

    q, k, v = (rng.standard_normal((2, heads, 6, 4)) for _ in range(3))
    parity(Ours(), Theirs(), [q, k, v], "float64")
    sym = nn.alibi_bias(2, 3, 3, symmetric=True)
    np.testing.assert_allclose(sym, np.transpose(sym, (0, 2, 1)))
    assert (sym <= 0).all()
