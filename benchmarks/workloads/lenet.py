"""W3: LeNet-5 on 1x28x28, batch 64, cross-entropy, SGD with momentum 0.9 (lr 0.01).

conv 5x5 (6, padding 2) -> ReLU -> max-pool 2 -> conv 5x5 (16) -> ReLU -> max-pool 2
-> 400-120-84-10 with ReLU.
"""

from __future__ import annotations

import numpy as np

from .common import cross_entropy, sgd_momentum, torch_params, torch_trainer, uniform_init, variables

NAME = "LeNet-5 1x28x28, batch 64, cross-entropy, SGD momentum"
BATCH, LR, MOMENTUM = 64, 0.01, 0.9
FC = (400, 120, 84, 10)


def init_params(rng):
    out = {"c1": uniform_init(rng, (6, 1, 5, 5), 25), "cb1": uniform_init(rng, (6,), 25),
           "c2": uniform_init(rng, (16, 6, 5, 5), 150), "cb2": uniform_init(rng, (16,), 150)}
    for k, (a, b) in enumerate(zip(FC[:-1], FC[1:])):
        out[f"w{k}"] = uniform_init(rng, (a, b), a)
        out[f"b{k}"] = uniform_init(rng, (b,), a)
    return out


def make_batch(rng):
    return (rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32),
            rng.integers(0, FC[-1], size=BATCH).astype(np.int64))


def rustyasg_step(params, backend):
    import rustyasg.core as rg

    p = variables(params)
    x, y = rg.input((BATCH, 1, 28, 28), name="x"), rg.input((BATCH,), "int64", name="y")
    h = rg.relu(rg.conv2d(x, p["c1"], padding=2) + p["cb1"].reshape((6, 1, 1)))
    h = rg.max_pool2d(h, 2)
    h = rg.relu(rg.conv2d(h, p["c2"]) + p["cb2"].reshape((16, 1, 1)))
    h = rg.max_pool2d(h, 2).reshape((BATCH, 400))
    for k in range(3):
        h = h @ p[f"w{k}"] + p[f"b{k}"]
        if k < 2:
            h = rg.relu(h)
    loss = cross_entropy(h, y, FC[-1])
    ws = list(p.values())
    return rg.function([x, y], loss, updates=sgd_momentum(ws, rg.grad(loss, ws), LR, MOMENTUM), backend=backend)


def torch_step(params):
    import torch
    import torch.nn.functional as F

    p = torch_params(params)

    def loss_fn(x, y):
        h = F.max_pool2d(F.relu(F.conv2d(x, p["c1"], p["cb1"], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["c2"], p["cb2"])), 2).reshape(x.shape[0], 400)
        for k in range(3):
            h = torch.addmm(p[f"b{k}"], h, p[f"w{k}"])
            if k < 2:
                h = F.relu(h)
        return F.cross_entropy(h, y)

    opt = torch.optim.SGD(list(p.values()), lr=LR, momentum=MOMENTUM)
    return torch_trainer(list(p.values()), loss_fn, opt)
