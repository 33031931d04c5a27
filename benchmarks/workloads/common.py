"""Pieces the workloads share: parameter init, losses and optimizers as graph updates.

The optimizers follow PyTorch's update formulas exactly (``torch.optim.SGD`` with
momentum, ``Adam``, ``AdamW``), so both implementations walk the same trajectory.
Hyperparameters are baked into the graph as constants; the step counter of Adam
is a variable, so bias correction changes per step without recompiling.

Example:
    >>> import numpy as np
    >>> w = uniform_init(np.random.default_rng(0), (3, 2), fan_in=3)
    >>> w.dtype, w.shape
    (dtype('float32'), (3, 2))
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np


def uniform_init(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    """PyTorch's default Linear/Conv init range ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


# --- RustyASG side ---------------------------------------------------------------------------
def variables(params: Dict[str, np.ndarray]):
    import rustyasg.core as rg

    return {k: rg.variable(v.copy(), name=k) for k, v in params.items()}


def cross_entropy(logits, labels, classes: int):
    """Mean cross-entropy of ``(N, C)`` logits against int64 labels (as ``F.cross_entropy``)."""
    import rustyasg.core as rg

    logp = rg.log_softmax(logits, axis=-1)
    picked = rg.sum(logp * rg.one_hot(labels, num_classes=classes, dtype=logits.dtype), axis=1)
    return -rg.mean(picked)


def sgd(weights, grads, lr: float):
    return {w: w - lr * g for w, g in zip(weights, grads)}


def sgd_momentum(weights, grads, lr: float, momentum: float):
    """``torch.optim.SGD(momentum=...)``: ``buf = momentum*buf + g`` (``buf = g`` at the first step)."""
    import rustyasg.core as rg

    updates = {}
    first = rg.variable(np.array(1.0, np.float32), name="sgd.first", trainable=False)
    for w, g in zip(weights, grads):
        buf = rg.variable(np.zeros(w.shape, np.float32), name=f"{w.name}.momentum", trainable=False)
        new = buf * (momentum * (1.0 - first)) + g
        updates[buf] = new
        updates[w] = w - lr * new
    updates[first] = first * 0.0
    return updates


def adam(weights, grads, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
         decoupled: bool = False):
    """``torch.optim.Adam`` (``decoupled=False``) / ``AdamW`` (``decoupled=True``)."""
    import rustyasg.core as rg

    b1, b2 = betas
    step = rg.variable(np.array(0.0, np.float32), name="adam.step", trainable=False)
    t = step + 1.0
    c1 = 1.0 / (1.0 - b1 ** t)
    c2 = 1.0 / rg.sqrt(1.0 - b2 ** t)
    updates = {step: t}
    for w, g in zip(weights, grads):
        m = rg.variable(np.zeros(w.shape, np.float32), name=f"{w.name}.m", trainable=False)
        v = rg.variable(np.zeros(w.shape, np.float32), name=f"{w.name}.v", trainable=False)
        if weight_decay and not decoupled:
            g = g + weight_decay * w
        m_new = b1 * m + (1.0 - b1) * g
        v_new = b2 * v + (1.0 - b2) * g * g
        base = w * (1.0 - lr * weight_decay) if (weight_decay and decoupled) else w
        # torch: denom = sqrt(v)/sqrt(1-b2^t) + eps; param -= lr/(1-b1^t) * m / denom
        updates[w] = base - (lr * c1) * m_new / (rg.sqrt(v_new) * c2 + eps)
        updates[m] = m_new
        updates[v] = v_new
    return updates


# --- PyTorch side ------------------------------------------------------------------------------
def torch_params(params: Dict[str, np.ndarray]):
    import torch

    return {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()}


def torch_trainer(params: Sequence, loss_fn, optimizer):
    """``step(*batch)``: zero grads, forward, backward, optimizer step; returns the loss."""
    import torch

    def step(*batch):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(*[torch.from_numpy(b) for b in batch])
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step
