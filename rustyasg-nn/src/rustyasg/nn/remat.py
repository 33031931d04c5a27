"""Gradient checkpointing for modules: ``nn.checkpoint_module(block, policy=...)``.

The module's forward becomes one ``rg.checkpoint`` region per call (see
:mod:`rustyasg.core.checkpoint`): its activations are recomputed in the backward pass
instead of kept, as ``torch.utils.checkpoint`` does for a wrapped block. The module is
changed in place and returned, so its parameters and ``state_dict`` names stay the same.
(``rustyasg.nn.checkpoint`` is the *training*-checkpoint module: saving weights to disk.)

Example:
    >>> import numpy as np, rustyasg.core as rg, rustyasg.nn as nn
    >>> rg.manual_seed(0)
    >>> block = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8))
    >>> model = nn.Sequential(nn.checkpoint_module(block), nn.Linear(8, 2))
    >>> x = rg.input((3, 4), name="x")
    >>> loss = rg.sum(model(x) ** 2)
    >>> grads = rg.grad(loss, model.parameters())
    >>> f = rg.function([x], grads, backend="reference")
    >>> f.lower(np.ones((3, 4), np.float32)).report["remat"]["recomputed"] >= 1
    True
"""

from __future__ import annotations

import rustyasg.core as rg

from .module import Module


def checkpoint_module(module: Module, policy=rg.checkpoint_policies.nothing_saveable) -> Module:
    """Make every call of ``module`` a checkpoint region with ``policy``; returns ``module``.

    ``policy`` is one of ``rg.checkpoint_policies`` (``nothing_saveable``, ``dots_saveable``,
    ``save_only_these_names(...)``, ``everything_saveable``).
    """
    if not isinstance(module, Module):
        raise TypeError(f"checkpoint_module expects an nn.Module, got {type(module).__name__}")
    if getattr(module, "_checkpoint_policy", None) is not None:
        raise ValueError(f"{type(module).__name__} is already checkpointed (policy "
                         f"{module._checkpoint_policy.name}); checkpoint it once")
    plain = module.forward
    module.forward = rg.checkpoint(plain, policy=policy)
    module._checkpoint_policy = policy
    return module
