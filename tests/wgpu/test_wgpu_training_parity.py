"""The same rustyasg.nn model code trains on wgpu as on cpu: 20 steps, losses within float32 tolerance.

Both runs start from the same weights (one state dict) and see the same batches; the
steps are whole compiled training steps (forward, backward, optimizer update).
"""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import optim
from rustyasg.nn.zoo import GPT, GPTConfig

STEPS = 20


def _copy_weights(src, dst):
    state = src.state_dict()
    for name, p in dst.named_parameters().items():
        p.assign(state[name])


def _mlp(backend, template=None):
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 5))
    if template is not None:
        _copy_weights(template, model)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x = rg.input(("B", 20), name="x")
    y = rg.input(("B",), "int64", name="y")
    loss = nn.cross_entropy(model(x), y)
    return model, rg.function([x, y], loss, updates=opt.updates(loss), backend=backend)


def _gpt(backend, template=None):
    cfg = GPTConfig(vocab_size=31, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    model = GPT(cfg)
    if template is not None:
        _copy_weights(template, model)
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    idx = rg.input(("B", 8), "int64", name="idx")
    tgt = rg.input(("B", 8), "int64", name="tgt")
    loss = GPT.loss(model(idx), tgt)
    return model, rg.function([idx, tgt], loss, updates=opt.updates(loss, clip_grad_norm=1.0), backend=backend)


def _batches(kind, rng):
    """Learnable data: labels from a random linear teacher; next tokens of an affine sequence."""
    if kind == "mlp":  # four batches, cycled: a steady decrease to check learning against
        teacher = rng.standard_normal((20, 5))
        xs = [rng.standard_normal((16, 20)).astype(np.float32) for _ in range(4)]
        return [(x, np.argmax(x @ teacher, axis=1)) for x in xs] * (STEPS // 4)
    out = []
    for _ in range(STEPS):
        start = rng.integers(0, 31, (4, 1))
        seq = (start + 3 * np.arange(9)) % 31
        out.append((seq[:, :8], seq[:, 1:]))
    return out


@pytest.mark.parametrize("kind", ["mlp", "gpt"])
def test_twenty_steps_match_cpu(kind):
    rng = np.random.default_rng(0 if kind == "mlp" else 1)
    build = _mlp if kind == "mlp" else _gpt
    cpu_model, cpu_step = build("cpu")
    gpu_model, gpu_step = build("wgpu", template=cpu_model)
    losses = {"cpu": [], "wgpu": []}
    for batch in _batches(kind, rng):
        losses["cpu"].append(float(cpu_step(*batch)))
        losses["wgpu"].append(float(gpu_step(*batch)))
    cpu, gpu = np.array(losses["cpu"]), np.array(losses["wgpu"])
    assert cpu[-4:].mean() < cpu[:4].mean() * 0.9, f"the {kind} did not learn on cpu: {cpu}"
    np.testing.assert_allclose(gpu, cpu, rtol=2e-4, atol=1e-5, err_msg=f"{kind} losses, wgpu vs cpu")
    ref, got = cpu_model.state_dict(), gpu_model.state_dict()
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=2e-3, atol=2e-4, err_msg=name)
