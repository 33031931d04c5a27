"""Pieces the workloads share: seeded ``rustyasg.nn`` initial weights, the compiled step, torch twins.

Each workload's parameters are the state dict of its ``rustyasg.nn`` model (PyTorch's
names and layouts), drawn from a seed taken from the workload's generator. The RustyASG
model and its PyTorch twin both load that state dict, so they start from the same weights.

Example:
    >>> import numpy as np
    >>> import rustyasg.nn as nn
    >>> state = nn_state(lambda: nn.Linear(3, 2), np.random.default_rng(0))
    >>> {k: v.shape for k, v in state.items()}
    {'weight': (2, 3), 'bias': (2,)}
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np


# --- the arithmetic floor -------------------------------------------------------------------------
def gemm_training_flops(rows: int, k: int, n: int, input_grad: bool = True) -> int:
    """FLOPs of one ``(rows, k) @ (k, n)`` product in a training step: the forward product,
    the weight gradient and (unless ``input_grad`` is False: the first layer's input is data)
    the input gradient, ``2*rows*k*n`` each. A convolution is the same with ``rows = N*OH*OW``,
    ``k = C_in*KH*KW``, ``n = C_out``.

    >>> gemm_training_flops(2, 3, 4), gemm_training_flops(2, 3, 4, input_grad=False)
    (144, 96)
    """
    return 2 * rows * k * n * (3 if input_grad else 2)


# --- RustyASG side ---------------------------------------------------------------------------
def nn_state(make_model: Callable, rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """The state dict of ``make_model()`` built with ``rustyasg.nn``'s initializers seeded from ``rng``."""
    from rustyasg.nn import init

    init.manual_seed(int(rng.integers(0, 2 ** 31)))
    return {k: np.array(v, np.float32) for k, v in make_model().state_dict().items()}


def nn_step(model, params: Dict[str, np.ndarray], inputs: Sequence, loss, optimizer, backend):
    """``model`` loaded with ``params``, compiled as one training step ``step(*batch) -> loss``.

    ``loss`` must already be traced through ``model`` from ``inputs``; the optimizer's
    updates and the model's state updates (running statistics) are applied in the same call.
    """
    import rustyasg.core as rg

    model.load_state_dict(params)
    return rg.function(list(inputs), loss, updates={**optimizer.updates(loss), **model.state_updates()},
                       backend=backend)


# --- PyTorch side ------------------------------------------------------------------------------
def torch_load(model, params: Dict[str, np.ndarray]):
    """``model`` (a ``torch.nn.Module``) with ``params`` loaded (strictly, so the names must match)."""
    import torch

    model.load_state_dict({k: torch.from_numpy(np.array(v, np.float32)) for k, v in params.items()})
    return model


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
