"""Gradient checkpointing regions: ``rg.checkpoint(fn, policy=...)``.

A checkpointed function builds its graph as usual; the nodes it creates are remembered as
one region, with a *policy* saying which of them the backward pass may keep besides the
region's outputs (the rest are recomputed from the region's inputs right before the backward
pass needs them, by the
``rematerialize`` pass, :mod:`rustyasg.core.compile.remat`). Policies follow
``jax.checkpoint_policies``:

- :data:`nothing_saveable` (the default): keep nothing, recompute the whole region;
- :data:`dots_saveable`: keep matmul and convolution outputs, recompute the cheap rest;
- :func:`save_only_these_names`: keep the tensors named so (``name=`` when built, or
  :func:`checkpoint_name`), recompute the rest;
- :data:`everything_saveable`: keep everything (the region is then a plain function).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.full((3, 3), 0.5, np.float32), name="w")
    >>> block = rg.checkpoint(lambda h: rg.tanh(h @ w) @ w)   # tanh's output is recomputed
    >>> x = rg.input((2, 3), name="x")
    >>> loss = rg.sum(block(block(x)))
    >>> (gw,) = rg.grad(loss, [w])
    >>> f = rg.function([x], gw, backend="reference")
    >>> f.lower(np.ones((2, 3), np.float32)).report["remat"]["recomputed"] > 0
    True
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Optional

from . import graph
from .graph import Tensor, toposort

#: Ops whose results a "dots" policy keeps (they are the expensive ones to recompute).
DOT_OPS = frozenset({"matmul", "conv2d", "conv2d_backward_input", "conv2d_backward_weight", "cpu.conv2d_gemm"})


@dataclass(frozen=True)
class Policy:
    """Which nodes of a region the backward pass may keep: ``saveable(node) -> bool``."""

    name: str
    saveable: Callable[[Tensor], bool]

    def __repr__(self):
        return f"<checkpoint policy {self.name}>"


nothing_saveable = Policy("nothing_saveable", lambda node: False)
everything_saveable = Policy("everything_saveable", lambda node: True)
dots_saveable = Policy("dots_saveable", lambda node: node.op in DOT_OPS)
save_matmul_outputs = dots_saveable


def save_only_these_names(*names: str) -> Policy:
    """Keep the region's tensors named ``names``; recompute the others.

    >>> save_only_these_names("attn_out").name
    "save_only_these_names('attn_out',)"
    """
    wanted = frozenset(names)
    return Policy(f"save_only_these_names{tuple(names)!r}", lambda node: node.name in wanted)


def checkpoint_name(t: Tensor, name: str) -> Tensor:
    """Name ``t`` so :func:`save_only_these_names` can keep it; returns ``t``."""
    t.name = name
    return t


@dataclass(frozen=True)
class Region:
    """One call of a checkpointed function: its nodes and which of them are saved."""

    members: FrozenSet[int]
    saved: FrozenSet[int]
    policy: str


_REGIONS: Dict[int, Region] = {}
_ANCHORS: Dict[int, weakref.ref] = {}


def regions_in(node_ids) -> list:
    """The regions with a member among ``node_ids`` (e.g. a graph's node ids)."""
    ids = set(node_ids)
    return [r for r in list(_REGIONS.values()) if r.members & ids]


def checkpoint(fn: Optional[Callable] = None, *, policy: Policy = nothing_saveable):
    """``fn`` whose intermediate values are recomputed in the backward pass instead of kept.

    Use as ``rg.checkpoint(fn)``, ``rg.checkpoint(fn, policy=rg.checkpoint_policies.dots_saveable)``
    or as a decorator. ``fn`` takes and returns tensors (a tensor, or a tuple/list of them).
    Values are the same as without checkpointing; only memory and time change (see
    ``rg.function(..., memory_budget=...)`` for an automatic choice).
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be one of rg.checkpoint_policies (nothing_saveable, dots_saveable, "
                        f"save_only_these_names(...), everything_saveable), got {policy!r}")

    def wrap(f):
        @functools.wraps(f)
        def call(*args, **kwargs):
            first = next(graph._ids)
            result = f(*args, **kwargs)
            outs = [result] if isinstance(result, Tensor) else [t for t in result if isinstance(t, Tensor)]
            if not outs:
                raise TypeError(f"rg.checkpoint: {getattr(f, '__name__', f)!r} returned no tensor")
            members = frozenset(n.id for n in toposort(outs) if n.id >= first and n.op not in
                                ("input", "variable", "constant"))
            # the outputs are kept, as in jax.checkpoint: they are the next computation's inputs, and
            # recomputing them would mean recomputing every region before this one too
            saved = frozenset(n.id for n in toposort(outs) if n.id in members and policy.saveable(n)) | \
                frozenset(t.id for t in outs)
            key = outs[0].id
            _REGIONS[key] = Region(members, saved, policy.name)
            _ANCHORS[key] = weakref.ref(outs[0], lambda _r, k=key: (_REGIONS.pop(k, None), _ANCHORS.pop(k, None)))
            return result

        return call

    return wrap(fn) if fn is not None else wrap


class checkpoint_policies:  # noqa: N801 - a namespace, spelled as in jax
    """The policies, as ``rg.checkpoint_policies.<name>`` (JAX's spelling)."""

    nothing_saveable = nothing_saveable
    everything_saveable = everything_saveable
    dots_saveable = dots_saveable
    save_matmul_outputs = save_matmul_outputs
    save_only_these_names = staticmethod(save_only_these_names)
