"""W1: MLP 32-64-1 with tanh, batch 32, MSE loss, plain SGD (lr 0.01).

A tiny model: per-step time is dominated by per-call overhead, not arithmetic.
"""

from __future__ import annotations

import numpy as np

from .common import nn_state, nn_step, torch_load, torch_trainer

NAME = "MLP 32-64-1 tanh, batch 32, MSE, SGD"
BATCH, IN, HID, OUT, LR = 32, 32, 64, 1, 0.01


def rustyasg_model():
    import rustyasg.nn as nn

    return nn.Sequential(nn.Linear(IN, HID), nn.Tanh(), nn.Linear(HID, OUT))


def init_params(rng):
    return nn_state(rustyasg_model, rng)


def make_batch(rng):
    return (rng.standard_normal((BATCH, IN)).astype(np.float32), rng.standard_normal((BATCH, OUT)).astype(np.float32))


def rustyasg_step(params, backend):
    import rustyasg.core as rg
    from rustyasg.nn import optim
    from rustyasg.nn.losses import mse_loss

    model = rustyasg_model()
    x, y = rg.input(("B", IN), name="x"), rg.input(("B", OUT), name="y")
    loss = mse_loss(model(x), y)
    return nn_step(model, params, [x, y], loss, optim.SGD(model.parameters(), lr=LR), backend)


def torch_step(params):
    import torch
    import torch.nn as tnn

    model = torch_load(tnn.Sequential(tnn.Linear(IN, HID), tnn.Tanh(), tnn.Linear(HID, OUT)), params)

    def loss_fn(x, y):
        return tnn.functional.mse_loss(model(x), y)

    return torch_trainer(list(model.parameters()), loss_fn, torch.optim.SGD(model.parameters(), lr=LR))


def jax_step(params):
    import jax.numpy as jnp

    from .jax_common import jax_trainer, linear, sgd

    def loss_fn(p, x, y):
        return jnp.mean((linear(p, "2", jnp.tanh(linear(p, "0", x))) - y) ** 2)

    return jax_trainer(params, loss_fn, sgd(lr=LR))


def step_flops():
    """GEMM FLOPs of one training step (see :func:`.common.gemm_training_flops`)."""
    from .common import gemm_training_flops as g

    return g(BATCH, IN, HID, input_grad=False) + g(BATCH, HID, OUT)
