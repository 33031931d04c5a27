"""W2: MLP 784-512-512-10 with ReLU, batch 128, cross-entropy, Adam (lr 1e-3).

Dominated by six GEMMs and the Adam update of 670k parameters.
"""

from __future__ import annotations

import numpy as np

from .common import nn_state, nn_step, torch_load, torch_trainer

NAME = "MLP 784-512-512-10 ReLU, batch 128, cross-entropy, Adam"
BATCH, SIZES, LR = 128, (784, 512, 512, 10), 1e-3


def _layers(linear, relu):
    layers = []
    for k, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(linear(a, b))
        if k < len(SIZES) - 2:
            layers.append(relu())
    return layers


def rustyasg_model():
    import rustyasg.nn as nn

    return nn.Sequential(*_layers(nn.Linear, nn.ReLU))


def init_params(rng):
    return nn_state(rustyasg_model, rng)


def make_batch(rng):
    return (rng.standard_normal((BATCH, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], size=BATCH).astype(np.int64))


def rustyasg_step(params, backend):
    import rustyasg.core as rg
    from rustyasg.nn import optim
    from rustyasg.nn.losses import cross_entropy

    model = rustyasg_model()
    x, y = rg.input(("B", SIZES[0]), name="x"), rg.input(("B",), "int64", name="y")
    loss = cross_entropy(model(x), y)
    return nn_step(model, params, [x, y], loss, optim.Adam(model.parameters(), lr=LR), backend)


def torch_step(params):
    import torch
    import torch.nn as tnn

    model = torch_load(tnn.Sequential(*_layers(tnn.Linear, tnn.ReLU)), params)

    def loss_fn(x, y):
        return tnn.functional.cross_entropy(model(x), y)

    return torch_trainer(list(model.parameters()), loss_fn, torch.optim.Adam(model.parameters(), lr=LR))


def jax_step(params):
    import jax

    from .jax_common import adam, cross_entropy, jax_trainer, linear

    def loss_fn(p, x, y):
        h = jax.nn.relu(linear(p, "0", x))
        h = jax.nn.relu(linear(p, "2", h))
        return cross_entropy(linear(p, "4", h), y)

    return jax_trainer(params, loss_fn, adam(lr=LR))


def step_flops():
    """GEMM FLOPs of one training step (see :func:`.common.gemm_training_flops`)."""
    from .common import gemm_training_flops as g

    return sum(g(BATCH, a, b, input_grad=k > 0) for k, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])))
