"""Zoo GPT: parity with a nanoGPT-layout PyTorch twin (learned and rotary positions, tied head),
training with decreasing loss, generation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn.zoo import GPT, GPTConfig

CFG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0)


def _rope(x, base):
    d = x.shape[-1]
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.outer(torch.arange(x.shape[-2], dtype=torch.float64), inv).to(x.dtype)
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    return x * cos + torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1) * sin


class TorchAttn(torch.nn.Module):
    def __init__(self, c, rotary):
        super().__init__()
        self.c_attn, self.c_proj = torch.nn.Linear(c.n_embd, 3 * c.n_embd), torch.nn.Linear(c.n_embd, c.n_embd)
        self.n_head, self.rotary, self.base = c.n_head, rotary, c.rotary_base

    def forward(self, x):
        n, t, e = x.shape
        q, k, v = (h.view(n, t, self.n_head, e // self.n_head).transpose(1, 2) for h in self.c_attn(x).split(e, 2))
        if self.rotary:
            q, k = _rope(q, self.base), _rope(k, self.base)
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(n, t, e))


class TorchBlock(torch.nn.Module):
    def __init__(self, c, rotary):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(c.n_embd)
        self.attn = TorchAttn(c, rotary)
        self.ln_2 = torch.nn.LayerNorm(c.n_embd)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = torch.nn.Linear(c.n_embd, 4 * c.n_embd), torch.nn.Linear(4 * c.n_embd, c.n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(TF.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class TorchGPT(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        rotary = c.positions == "rotary"
        parts = {"wte": torch.nn.Embedding(c.vocab_size, c.n_embd)}
        if not rotary:
            parts["wpe"] = torch.nn.Embedding(c.block_size, c.n_embd)
        parts["h"] = torch.nn.ModuleList([TorchBlock(c, rotary) for _ in range(c.n_layer)])
        parts["ln_f"] = torch.nn.LayerNorm(c.n_embd)
        self.transformer = torch.nn.ModuleDict(parts)
        self.lm_head = torch.nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx):
        x = self.transformer.wte(idx)
        if "wpe" in self.transformer:
            x = x + self.transformer.wpe.weight[: idx.shape[1]]
        for b in self.transformer.h:
            x = b(x)
        return self.lm_head(self.transformer.ln_f(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("positions,tie", [("learned", True), ("rotary", True), ("learned", False)])
def test_gpt_parity(positions, tie, dtype, parity, rng):
    cfg = GPTConfig(positions=positions, tie_weights=tie, **CFG)
    ours, theirs = GPT(cfg), TorchGPT(cfg)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.named_parameters()) == [n for n, _ in theirs.named_parameters()]
    parity(ours, theirs, [rng.integers(0, 11, (3, 6))], dtype)
    if tie:
        assert ours.lm_head.weight is ours.transformer["wte"].weight


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_gpt_with_fused_attention_matches_torch(positions, dtype, parity, rng):
    """``attention="fused"``: the flash-attention op in every block, same values and gradients."""
    cfg = GPTConfig(positions=positions, attention="fused", **CFG)
    ours, theirs = GPT(cfg), TorchGPT(cfg)
    parity(ours, theirs, [rng.integers(0, 11, (3, 6))], dtype)


def test_gpt_init_follows_gpt2():
    nn.init.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=300, block_size=64, n_layer=4, n_head=4, n_embd=64))
    w = model.transformer["h"][0].mlp.c_fc.weight.value()
    proj = model.transformer["h"][0].attn.c_proj.weight.value()
    assert abs(w.std() - 0.02) < 0.001 and abs(proj.std() - 0.02 / math.sqrt(8)) < 0.0005
    assert not model.transformer["h"][1].attn.c_attn.bias.value().any()
    total = model.num_parameters(non_embedding=False)
    assert total - model.num_parameters() == 64 * 64
    assert total == 300 * 64 + 64 * 64 + 4 * (12 * 64 * 64 + 13 * 64) + 2 * 64


def test_gpt_errors():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="positions"):
        GPTConfig(positions="alibi")
    with pytest.raises(ValueError, match=r"attention must be one of \['auto', 'composed', 'fused'\]"):
        GPTConfig(attention="flash")
    model = GPT(GPTConfig(**CFG))
    with pytest.raises(rg.ShapeError, match="block_size 8"):
        model(rg.input((1, 9), "int64", name="idx"))


def test_gpt_trains_with_decreasing_loss(backend):
    """Learn a fixed cyclic sequence: next-token loss falls quickly with Adam (rotary positions, dropout on).

    Learned positions train in the generation test below."""
    cfg = GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.1, positions="rotary")
    model = GPT(cfg, seed=1)
    idx = rg.input(("B", 8), "int64", name="idx")
    targets = rg.input(("B", 8), "int64", name="targets")
    loss = GPT.loss(model(idx), targets)
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    step = rg.function([idx, targets], loss, updates={**opt.updates(loss), **model.state_updates()}, backend=backend)
    seq = np.arange(64) % 7
    starts = np.arange(6)
    x = np.stack([seq[s:s + 8] for s in starts])
    y = np.stack([seq[s + 1:s + 9] for s in starts])
    losses = [float(step(x, y)) for _ in range(25)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
    assert abs(losses[0] - math.log(7)) < 0.3  # starts near chance


def test_gpt_generate_continues_a_learned_pattern(backend):
    cfg = GPTConfig(vocab_size=5, block_size=6, n_layer=1, n_head=2, n_embd=16)
    model = GPT(cfg)
    idx = rg.input(("B", 6), "int64", name="idx")
    targets = rg.input(("B", 6), "int64", name="t")
    loss = GPT.loss(model(idx), targets)
    step = rg.function([idx, targets], loss, updates=nn.optim.Adam(model.parameters(), lr=3e-2).updates(loss),
                       backend=backend)
    seq = np.arange(40) % 5
    x = np.stack([seq[s:s + 6] for s in range(5)])
    y = np.stack([seq[s + 1:s + 7] for s in range(5)])
    for _ in range(60):
        final = float(step(x, y))
    assert final < 0.1
    out = model.generate(np.array([[0, 1, 2]]), 8, temperature=0.5, top_k=2, backend=backend)
    assert out.shape == (1, 11)
    np.testing.assert_array_equal(out[0], np.arange(11) % 5)
    assert model.training  # generation restores the mode
