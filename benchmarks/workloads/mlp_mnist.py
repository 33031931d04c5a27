"""W2: MLP 784-512-512-10 with ReLU, batch 128, cross-entropy, Adam (lr 1e-3).

Dominated by six GEMMs and the Adam update of 670k parameters.
"""

from __future__ import annotations

import numpy as np

from .common import adam, cross_entropy, torch_params, torch_trainer, uniform_init, variables

NAME = "MLP 784-512-512-10 ReLU, batch 128, cross-entropy, Adam"
BATCH, SIZES, LR = 128, (784, 512, 512, 10), 1e-3


def init_params(rng):
    out = {}
    for k, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        out[f"w{k}"] = uniform_init(rng, (a, b), a)
        out[f"b{k}"] = uniform_init(rng, (b,), a)
    return out


def make_batch(rng):
    return (rng.standard_normal((BATCH, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], size=BATCH).astype(np.int64))


def rustyasg_step(params, backend):
    import rustyasg.core as rg

    p = variables(params)
    x, y = rg.input(("B", SIZES[0]), name="x"), rg.input(("B",), "int64", name="y")
    h = x
    n = len(SIZES) - 1
    for k in range(n):
        h = h @ p[f"w{k}"] + p[f"b{k}"]
        if k < n - 1:
            h = rg.relu(h)
    loss = cross_entropy(h, y, SIZES[-1])
    ws = list(p.values())
    return rg.function([x, y], loss, updates=adam(ws, rg.grad(loss, ws), LR), backend=backend)


def torch_step(params):
    import torch

    p = torch_params(params)
    n = len(SIZES) - 1

    def loss_fn(x, y):
        h = x
        for k in range(n):
            h = torch.addmm(p[f"b{k}"], h, p[f"w{k}"])
            if k < n - 1:
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, y)

    return torch_trainer(list(p.values()), loss_fn, torch.optim.Adam(list(p.values()), lr=LR))
