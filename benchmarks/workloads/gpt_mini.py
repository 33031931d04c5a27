"""W4: GPT-mini: vocab 256, d 128, 4 heads, 2 pre-LN blocks (causal attention, GELU MLP),
T 64, batch 16, next-token cross-entropy, AdamW (lr 3e-4, weight decay 0.01).

RustyASG runs ``rustyasg.nn.zoo.GPT`` (learned positions, untied output head, GELU in
its tanh form as GPT-2); the PyTorch twin has the same names and formulation: token +
learned position embeddings, per block ``x += c_proj(attn(ln_1(x)))`` and
``x += c_proj(gelu(c_fc(ln_2(x))))``, a final LN and ``lm_head``. PyTorch runs its fused
``scaled_dot_product_attention`` (its fastest eager path); RustyASG the composed chain
(``rustyasg_model("fused")`` builds the fused ``attention`` op instead).
"""

from __future__ import annotations

import numpy as np

from .common import nn_state, nn_step, torch_load, torch_trainer

NAME = "GPT-mini V256 d128 h4 L2 T64, batch 16, AdamW"
V, D, H, L, T, BATCH = 256, 128, 4, 2, 64, 16
LR, WD = 3e-4, 0.01


def rustyasg_model(attention: str = "composed"):
    from rustyasg.nn.zoo import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=D, dropout=0.0,
                    positions="learned", tie_weights=False, attention=attention)
    return GPT(cfg)


def init_params(rng):
    return nn_state(rustyasg_model, rng)


def make_batch(rng):
    seq = rng.integers(0, V, size=(BATCH, T + 1)).astype(np.int64)
    return np.ascontiguousarray(seq[:, :-1]), np.ascontiguousarray(seq[:, 1:])


def rustyasg_step(params, backend):
    import rustyasg.core as rg
    from rustyasg.nn import optim
    from rustyasg.nn.losses import cross_entropy

    # the composed attention: the fused op's cpu step is ~4% faster but its forward kernel takes 2.4 s
    # of numba compile on a cold start (benchmarks/cpu/NOTES.md, "W4 with the fused attention")
    model = rustyasg_model()
    idx, tgt = rg.input((BATCH, T), "int64", name="idx"), rg.input((BATCH, T), "int64", name="targets")
    loss = cross_entropy(model(idx).reshape((BATCH * T, V)), tgt.reshape((BATCH * T,)))
    opt = optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    return nn_step(model, params, [idx, tgt], loss, opt, backend)


def torch_step(params):
    import torch
    import torch.nn.functional as F

    from benchmarks.torch_gpt import torch_gpt

    model = torch_load(torch_gpt(V, D, H, L, T, tie=False), params)

    def loss_fn(idx, tgt):
        return F.cross_entropy(model(idx).reshape(BATCH * T, V), tgt.reshape(-1))

    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    return torch_trainer(list(model.parameters()), loss_fn, opt)


def jax_step(params):
    """The same model in JAX; attention through ``jax.nn.dot_product_attention`` (causal)."""
    import jax
    import jax.numpy as jnp

    from .jax_common import adam, cross_entropy, jax_trainer, linear

    def layer_norm(p, name, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + 1e-5) * p[f"{name}.weight"] + p[f"{name}.bias"]

    def block(p, k, x):
        pre = f"transformer.h.{k}"
        n, t, c = x.shape
        q, kk, v = jnp.split(linear(p, f"{pre}.attn.c_attn", layer_norm(p, f"{pre}.ln_1", x)), 3, axis=-1)
        q, kk, v = (z.reshape(n, t, H, c // H) for z in (q, kk, v))
        y = jax.nn.dot_product_attention(q, kk, v, is_causal=True).reshape(n, t, c)
        x = x + linear(p, f"{pre}.attn.c_proj", y)
        h = jax.nn.gelu(linear(p, f"{pre}.mlp.c_fc", layer_norm(p, f"{pre}.ln_2", x)), approximate=True)
        return x + linear(p, f"{pre}.mlp.c_proj", h)

    def loss_fn(p, idx, tgt):
        x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][: idx.shape[1]]
        for k in range(L):
            x = block(p, k, x)
        logits = linear(p, "lm_head", layer_norm(p, "transformer.ln_f", x), bias=False)
        return cross_entropy(logits.reshape(BATCH * T, V), tgt.reshape(-1))

    return jax_trainer(params, loss_fn, adam(lr=LR, weight_decay=WD, decoupled=True))


def step_flops():
    """GEMM FLOPs of one training step: the projections, both attention products (per batch
    entry and head) and the head (see :func:`.common.gemm_training_flops`)."""
    from .common import gemm_training_flops as g

    rows, hd = BATCH * T, D // H
    block = g(rows, D, 3 * D) + g(rows, D, D) + g(rows, D, 4 * D) + g(rows, 4 * D, D)
    attention = g(BATCH * H * T, hd, T) + g(BATCH * H * T, T, hd)
    return L * (block + attention) + g(rows, D, V)
