"""W3: LeNet-5 on 1x28x28, batch 64, cross-entropy, SGD with momentum 0.9 (lr 0.01).

conv 5x5 (6, padding 2) -> ReLU -> max-pool 2 -> conv 5x5 (16) -> ReLU -> max-pool 2
-> 400-120-84-10 with ReLU (``rustyasg.nn.zoo.LeNet5`` with ReLU and max pooling).
"""

from __future__ import annotations

import numpy as np

from .common import nn_state, nn_step, torch_load, torch_trainer

NAME = "LeNet-5 1x28x28, batch 64, cross-entropy, SGD momentum"
BATCH, LR, MOMENTUM, CLASSES = 64, 0.01, 0.9, 10


def rustyasg_model():
    from rustyasg.nn.zoo import LeNet5

    return LeNet5(num_classes=CLASSES, in_channels=1, input_size=28, activation="relu", pooling="max")


def init_params(rng):
    return nn_state(rustyasg_model, rng)


def make_batch(rng):
    return (rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32),
            rng.integers(0, CLASSES, size=BATCH).astype(np.int64))


def rustyasg_step(params, backend):
    import rustyasg.core as rg
    from rustyasg.nn import optim
    from rustyasg.nn.losses import cross_entropy

    model = rustyasg_model()
    x, y = rg.input((BATCH, 1, 28, 28), name="x"), rg.input((BATCH,), "int64", name="y")
    loss = cross_entropy(model(x), y)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return nn_step(model, params, [x, y], loss, opt, backend)


def torch_step(params):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F

    class LeNet5(tnn.Module):  # the names and layouts of rustyasg.nn.zoo.LeNet5
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5, padding=2), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, CLASSES)

        def forward(self, x):
            h = F.max_pool2d(F.relu(self.conv1(x)), 2)
            h = F.max_pool2d(F.relu(self.conv2(h)), 2).reshape(x.shape[0], 400)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(h)))))

    model = torch_load(LeNet5(), params)

    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)

    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return torch_trainer(list(model.parameters()), loss_fn, opt)


def jax_step(params):
    import jax
    import jax.numpy as jnp
    from jax import lax

    from .jax_common import cross_entropy, jax_trainer, linear, sgd

    def conv(p, name, x, pad):
        y = lax.conv_general_dilated(x, p[f"{name}.weight"], (1, 1), [(pad, pad), (pad, pad)],
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + p[f"{name}.bias"][None, :, None, None]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss_fn(p, x, y):
        h = pool(jax.nn.relu(conv(p, "conv1", x, 2)))
        h = pool(jax.nn.relu(conv(p, "conv2", h, 0))).reshape(x.shape[0], 400)
        h = jax.nn.relu(linear(p, "fc2", jax.nn.relu(linear(p, "fc1", h))))
        return cross_entropy(linear(p, "fc3", h), y)

    return jax_trainer(params, loss_fn, sgd(lr=LR, momentum=MOMENTUM))


def step_flops():
    """Convolution and GEMM FLOPs of one training step (see :func:`.common.gemm_training_flops`)."""
    from .common import gemm_training_flops as g

    convs = g(BATCH * 28 * 28, 1 * 25, 6, input_grad=False) + g(BATCH * 10 * 10, 6 * 25, 16)
    return convs + g(BATCH, 400, 120) + g(BATCH, 120, 84) + g(BATCH, 84, CLASSES)
