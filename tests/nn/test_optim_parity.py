"""Optimizers against PyTorch 2.13.0: 10-step parameter trajectories of a small MLP.

Identical initial weights and batches; after every step every parameter must match
``torch.optim`` (1e-10 relative in float64 on the reference backend, 1e-5 in float32
on the backend under test). Covers every option of SGD, Adam, AdamW and RMSprop,
parameter groups with their own settings, and clipping inside the step.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.nn import optim

STEPS, BATCH, IN, HID, OUT = 10, 6, 4, 5, 3


def forward(params, x):
    """A two-layer MLP written with operators both frameworks share."""
    w1, b1, w2, b2 = params
    return (x @ w1 + b1).tanh() @ w2 + b2


def init_arrays(seed):
    r = np.random.default_rng(seed)
    shapes = [(IN, HID), (HID,), (HID, OUT), (OUT,)]
    params = [r.normal(size=s) * 0.7 for s in shapes]
    data = [(r.normal(size=(BATCH, IN)), r.normal(size=(BATCH, OUT))) for _ in range(STEPS)]
    return params, data


def groups_of(params, spec):
    """``spec`` is None (one group) or a list of (indices, settings) pairs."""
    if spec is None:
        return list(params)
    return [{"params": [params[i] for i in idx], **settings} for idx, settings in spec]


def run_torch(name, settings, spec, arrays, data, dtype, clip):
    tdt = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    params = [torch.tensor(a, dtype=tdt, requires_grad=True) for a in arrays]
    opt = getattr(torch.optim, name)(groups_of(params, spec), **settings)
    trajectory = []
    for x, y in data:
        opt.zero_grad()
        loss = ((forward(params, torch.tensor(x, dtype=tdt)) - torch.tensor(y, dtype=tdt)) ** 2).mean()
        loss.backward()
        if clip.get("value") is not None:
            torch.nn.utils.clip_grad_value_(params, clip["value"])
        if clip.get("norm") is not None:
            torch.nn.utils.clip_grad_norm_(params, clip["norm"], norm_type=clip.get("norm_type", 2.0))
        opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


def run_ours(name, settings, spec, arrays, data, dtype, clip, backend):
    params = [rg.variable(a.astype(dtype), name=f"p{i}") for i, a in enumerate(arrays)]
    opt = getattr(optim, name)(groups_of(params, spec), **settings)
    x = rg.input(("B", IN), dtype, name="x")
    y = rg.input(("B", OUT), dtype, name="y")
    loss = rg.mean(rg.square(forward(params, x) - y))
    upd = opt.updates(loss, clip_grad_norm=clip.get("norm"), clip_grad_value=clip.get("value"),
                      norm_type=clip.get("norm_type", 2.0))
    step = rg.function([x, y], loss, updates=upd, backend=backend)
    trajectory = []
    for xv, yv in data:
        step(xv.astype(dtype), yv.astype(dtype))
        trajectory.append([p.value() for p in params])
    assert step.stats["compiles"] == 1
    return trajectory


CASES = [
    ("SGD", {"lr": 0.1}, None, {}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, None, {}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}, None, {}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.02}, None, {}),
    ("SGD", {"lr": 0.05, "maximize": True}, None, {}),
    ("Adam", {"lr": 0.01}, None, {}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}, None, {}),
    ("Adam", {"lr": 0.01, "amsgrad": True}, None, {}),
    ("Adam", {"lr": 0.01, "betas": (0.0, 0.9)}, None, {}),
    ("AdamW", {"lr": 0.01}, None, {}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True, "maximize": True}, None, {}),
    ("RMSprop", {"lr": 0.01}, None, {}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}, None, {}),
    ("RMSprop", {"lr": 0.005, "centered": True, "alpha": 0.9}, None, {}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.5}, None, {}),
    # parameter groups with their own settings
    ("SGD", {"lr": 0.1, "momentum": 0.9}, [([0, 1], {"lr": 0.02, "nesterov": True}), ([2, 3], {"momentum": 0.0})], {}),
    ("Adam", {"lr": 0.01}, [([0, 2], {"betas": (0.85, 0.95), "weight_decay": 0.1}), ([1, 3], {"amsgrad": True})], {}),
    ("RMSprop", {"lr": 0.01}, [([0, 1, 2], {"centered": True}), ([3], {"lr": 0.001, "momentum": 0.7})], {}),
    # clipping inside the step
    ("SGD", {"lr": 0.1, "momentum": 0.9}, None, {"norm": 0.5}),
    ("Adam", {"lr": 0.01}, None, {"norm": 0.3, "norm_type": float("inf")}),
    ("AdamW", {"lr": 0.01}, None, {"norm": 0.4, "norm_type": 1.0}),
    ("SGD", {"lr": 0.1}, None, {"value": 0.05}),
    ("RMSprop", {"lr": 0.01}, None, {"value": 0.1, "norm": 0.2}),
]


def _id(case):
    name, settings, spec, clip = case
    parts = [name] + [f"{k}={v}" for k, v in settings.items()]
    parts += ["groups"] if spec else []
    parts += [f"clip_{k}={v}" for k, v in clip.items()]
    return "-".join(parts)


# Every case runs in float64 on the reference backend; on the backend under test (float32) the cases
# below cover every optimizer and option, groups and both clippings with less numba compile time.
FLOAT32_ON_BACKEND = {
    "SGD-lr=0.05-momentum=0.8-dampening=0.3-weight_decay=0.01",
    "SGD-lr=0.05-momentum=0.9-nesterov=True-weight_decay=0.02",
    "Adam-lr=0.02-betas=(0.8, 0.99)-eps=1e-06-weight_decay=0.05",
    "Adam-lr=0.01-amsgrad=True",
    "AdamW-lr=0.02-weight_decay=0.1-amsgrad=True-maximize=True",
    "RMSprop-lr=0.01-momentum=0.9-weight_decay=0.01",
    "RMSprop-lr=0.005-centered=True-momentum=0.5",
    "SGD-lr=0.1-momentum=0.9-groups",
    "Adam-lr=0.01-clip_norm=0.3-clip_norm_type=inf",
    "RMSprop-lr=0.01-clip_value=0.1-clip_norm=0.2",
}
PRECISIONS = [pytest.param(c, "float64-reference", id=f"float64-reference-{_id(c)}") for c in CASES] + \
    [pytest.param(c, "float32-backend", id=f"float32-backend-{_id(c)}") for c in CASES if _id(c) in FLOAT32_ON_BACKEND]
assert len(PRECISIONS) == len(CASES) + len(FLOAT32_ON_BACKEND), "a FLOAT32_ON_BACKEND id matches no case"


@pytest.mark.parametrize("case,precision", PRECISIONS)
def test_trajectory_matches_pytorch(case, precision, backend):
    name, settings, spec, clip = case
    dtype = np.float64 if precision.startswith("float64") else np.float32
    be = "reference" if dtype == np.float64 else backend
    tol = 1e-10 if dtype == np.float64 else 1e-5
    arrays, data = init_arrays(zlib.crc32(_id(case).encode()))
    theirs = run_torch(name, settings, spec, arrays, data, dtype, clip)
    ours = run_ours(name, settings, spec, arrays, data, dtype, clip, be)
    for step, (a_params, b_params) in enumerate(zip(ours, theirs)):
        for i, (a, b) in enumerate(zip(a_params, b_params)):
            # relative to the tensor's largest entry, so entries that pass near zero compare sensibly
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)),
                                       err_msg=f"step {step + 1}, parameter {i}")
    moved = max(np.max(np.abs(a - b)) for a, b in zip(ours[-1], arrays))
    assert moved > 1e-3, "the parameters hardly moved: the test would not notice a wrong update"
