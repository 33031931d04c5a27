"""Benchmark workloads: full training steps (forward, backward, optimizer update).

Each workload module defines the same model twice, once as a RustyASG graph and
once in PyTorch eager, from the same initial parameters, and draws its batches
from a seeded generator so both see identical inputs:

- ``init_params(rng) -> {name: float32 array}``
- ``make_batch(rng) -> tuple of arrays``
- ``rustyasg_step(params, backend) -> step(*batch) -> loss``
- ``torch_step(params) -> step(*batch) -> loss``

The RustyASG models are ``rustyasg.nn`` modules with ``rustyasg.nn.optim`` optimizers,
compiled as one step; ``init_params`` returns their state dict (PyTorch names and layouts).

Example:
    >>> sorted(WORKLOADS)
    ['W1', 'W2', 'W3', 'W4']
"""

from __future__ import annotations

import importlib

WORKLOADS = {
    "W1": "mlp_tanh",
    "W2": "mlp_mnist",
    "W3": "lenet",
    "W4": "gpt_mini",
}


def load(name: str):
    """The module of workload ``name`` (``"W1"`` ... ``"W4"``)."""
    return importlib.import_module(f"{__name__}.{WORKLOADS[name]}")
