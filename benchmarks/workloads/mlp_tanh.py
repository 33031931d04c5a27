"""W1: MLP 32-64-1 with tanh, batch 32, MSE loss, plain SGD (lr 0.01).

A tiny model: per-step time is dominated by per-call overhead, not arithmetic.
"""

from __future__ import annotations

import numpy as np

from .common import sgd, torch_params, torch_trainer, uniform_init, variables

NAME = "MLP 32-64-1 tanh, batch 32, MSE, SGD"
BATCH, IN, HID, OUT, LR = 32, 32, 64, 1, 0.01


def init_params(rng):
    return {"w1": uniform_init(rng, (IN, HID), IN), "b1": uniform_init(rng, (HID,), IN),
            "w2": uniform_init(rng, (HID, OUT), HID), "b2": uniform_init(rng, (OUT,), HID)}


def make_batch(rng):
    return (rng.standard_normal((BATCH, IN)).astype(np.float32), rng.standard_normal((BATCH, OUT)).astype(np.float32))


def rustyasg_step(params, backend):
    import rustyasg.core as rg

    p = variables(params)
    x, y = rg.input(("B", IN), name="x"), rg.input(("B", OUT), name="y")
    pred = rg.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    loss = rg.mean(rg.square(pred - y))
    ws = [p["w1"], p["b1"], p["w2"], p["b2"]]
    return rg.function([x, y], loss, updates=sgd(ws, rg.grad(loss, ws), LR), backend=backend)


def torch_step(params):
    import torch

    p = torch_params(params)

    def loss_fn(x, y):
        pred = torch.addmm(p["b2"], torch.tanh(torch.addmm(p["b1"], x, p["w1"])), p["w2"])
        return torch.nn.functional.mse_loss(pred, y)

    return torch_trainer(list(p.values()), loss_fn, torch.optim.SGD(list(p.values()), lr=LR))
