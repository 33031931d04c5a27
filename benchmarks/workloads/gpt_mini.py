"""W4: GPT-mini: vocab 256, d 128, 4 heads, 2 pre-LN blocks (causal attention, GELU MLP),
T 64, batch 16, next-token cross-entropy, AdamW (lr 3e-4, weight decay 0.01).

Both implementations use the same formulation: token + learned position
embeddings, per block ``x += proj(attn(LN(x)))`` and ``x += W2 gelu(W1 LN(x))``,
a final LN and an untied output head. PyTorch runs its fused
``scaled_dot_product_attention`` (its fastest eager path); RustyASG builds the
attention from matmul, a causal mask and softmax.
"""

from __future__ import annotations

import math

import numpy as np

from .common import adam, cross_entropy, torch_params, torch_trainer, uniform_init, variables

NAME = "GPT-mini V256 d128 h4 L2 T64, batch 16, AdamW"
V, D, H, L, T, BATCH = 256, 128, 4, 2, 64, 16
LR, WD = 3e-4, 0.01


def init_params(rng):
    p = {"tok": (rng.standard_normal((V, D)) * 0.02).astype(np.float32),
         "pos": (rng.standard_normal((T, D)) * 0.02).astype(np.float32)}
    for b in range(L):
        for ln in ("ln1", "ln2"):
            p[f"{b}.{ln}.g"] = np.ones(D, np.float32)
            p[f"{b}.{ln}.b"] = np.zeros(D, np.float32)
        p[f"{b}.qkv.w"] = uniform_init(rng, (D, 3 * D), D)
        p[f"{b}.qkv.b"] = np.zeros(3 * D, np.float32)
        p[f"{b}.proj.w"] = uniform_init(rng, (D, D), D)
        p[f"{b}.proj.b"] = np.zeros(D, np.float32)
        p[f"{b}.fc1.w"] = uniform_init(rng, (D, 4 * D), D)
        p[f"{b}.fc1.b"] = np.zeros(4 * D, np.float32)
        p[f"{b}.fc2.w"] = uniform_init(rng, (4 * D, D), 4 * D)
        p[f"{b}.fc2.b"] = np.zeros(D, np.float32)
    p["lnf.g"], p["lnf.b"] = np.ones(D, np.float32), np.zeros(D, np.float32)
    p["head.w"] = uniform_init(rng, (D, V), D)
    return p


def make_batch(rng):
    seq = rng.integers(0, V, size=(BATCH, T + 1)).astype(np.int64)
    return np.ascontiguousarray(seq[:, :-1]), np.ascontiguousarray(seq[:, 1:])


def rustyasg_step(params, backend):
    import rustyasg.core as rg

    p = variables(params)
    idx, tgt = rg.input((BATCH, T), "int64", name="idx"), rg.input((BATCH, T), "int64", name="targets")
    mask = rg.constant(np.triu(np.full((T, T), -np.inf, np.float32), k=1))
    hd = D // H
    x = rg.take(p["tok"], idx, axis=0) + p["pos"]                       # (B, T, D)
    for b in range(L):
        h = rg.layer_norm(x, p[f"{b}.ln1.g"], p[f"{b}.ln1.b"])
        qkv = (h @ p[f"{b}.qkv.w"] + p[f"{b}.qkv.b"]).reshape((BATCH, T, 3, H, hd))
        qkv = rg.transpose(qkv, axes=(2, 0, 3, 1, 4))                    # (3, B, H, T, hd)
        q, k, v = (qkv[i] for i in range(3))
        att = rg.softmax((q @ rg.transpose(k, axes=(0, 1, 3, 2))) * (1.0 / math.sqrt(hd)) + mask, axis=-1)
        o = rg.transpose(att @ v, axes=(0, 2, 1, 3)).reshape((BATCH, T, D))
        x = x + o @ p[f"{b}.proj.w"] + p[f"{b}.proj.b"]
        h = rg.layer_norm(x, p[f"{b}.ln2.g"], p[f"{b}.ln2.b"])
        x = x + rg.gelu(h @ p[f"{b}.fc1.w"] + p[f"{b}.fc1.b"]) @ p[f"{b}.fc2.w"] + p[f"{b}.fc2.b"]
    h = rg.layer_norm(x, p["lnf.g"], p["lnf.b"])
    loss = cross_entropy((h @ p["head.w"]).reshape((BATCH * T, V)), tgt.reshape((BATCH * T,)), V)
    ws = list(p.values())
    updates = adam(ws, rg.grad(loss, ws), LR, weight_decay=WD, decoupled=True)
    return rg.function([idx, tgt], loss, updates=updates, backend=backend)


def torch_step(params):
    import torch
    import torch.nn.functional as F

    p = torch_params(params)
    hd = D // H

    def linear(x, w, b=None):  # one addmm over the flattened tokens, as nn.Linear does
        y = x.reshape(-1, x.shape[-1]) @ w if b is None else torch.addmm(b, x.reshape(-1, x.shape[-1]), w)
        return y.reshape(*x.shape[:-1], w.shape[1])

    def loss_fn(idx, tgt):
        x = p["tok"][idx] + p["pos"]
        for b in range(L):
            h = F.layer_norm(x, (D,), p[f"{b}.ln1.g"], p[f"{b}.ln1.b"])
            qkv = linear(h, p[f"{b}.qkv.w"], p[f"{b}.qkv.b"]).reshape(BATCH, T, 3, H, hd).permute(2, 0, 3, 1, 4)
            o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
            x = x + linear(o.transpose(1, 2).reshape(BATCH, T, D), p[f"{b}.proj.w"], p[f"{b}.proj.b"])
            h = F.layer_norm(x, (D,), p[f"{b}.ln2.g"], p[f"{b}.ln2.b"])
            x = x + linear(F.gelu(linear(h, p[f"{b}.fc1.w"], p[f"{b}.fc1.b"])), p[f"{b}.fc2.w"], p[f"{b}.fc2.b"])
        h = F.layer_norm(x, (D,), p["lnf.g"], p["lnf.b"])
        return F.cross_entropy(linear(h, p["head.w"]).reshape(BATCH * T, V), tgt.reshape(-1))

    opt = torch.optim.AdamW(list(p.values()), lr=LR, weight_decay=WD)
    return torch_trainer(list(p.values()), loss_fn, opt)
