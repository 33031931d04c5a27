"""Explicit, seedable randomness that lives in the compiled graph.

An :class:`RNG` owns an int64 state variable: the seed in the high 32 bits and
a step counter in the low 32. Every draw hashes (state, salt, element index),
so a compiled step that draws numbers advances the counter by one per call
(added to the function's updates automatically unless you update it yourself).
The same seed gives the same draws on every run and every backend: the uniform
bits underneath are identical everywhere, and the values agree to the precision
each backend computes in (see :mod:`rustyasg.core.ops.random`).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> rng = rg.RNG(seed=42)
    >>> f = rg.function([], rng.uniform((3,), dtype="float64"), backend="reference")
    >>> a, b = f(), f()
    >>> bool(np.all(a != b))   # a new stream per step
    True
"""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np

from .builders import builder
from .graph import Tensor, Variable, variable

# Node ids are never reused, so a plain set of ids marks the auto-advancing states
# (a WeakSet would compare tensors with ==, which builds graph nodes).
_AUTO_ADVANCE: set = set()


class RNG:
    """A random stream: ``uniform``, ``normal``, ``bernoulli`` and ``dropout`` draw from it."""

    def __init__(self, seed: Optional[int] = None, name: str = "rng"):
        """``seed=None`` takes the next default seed (reproducible after ``rg.manual_seed``)."""
        if seed is None:
            from .seeding import next_default_seed

            seed = next_default_seed()
        self.seed = int(seed)
        self.state = variable(np.array(self.seed << 32, np.int64), name=f"{name}.state", trainable=False)
        _AUTO_ADVANCE.add(self.state.id)
        self._salts = itertools.count(1)

    def next_salt(self) -> int:
        """A fresh salt so each draw in one graph is independent."""
        return next(self._salts)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, dtype="float32") -> Tensor:
        from .ops import random_uniform

        return random_uniform(self.state, shape=shape, salt=self.next_salt(), low=low, high=high, dtype=dtype)

    def normal(self, shape, mean: float = 0.0, std: float = 1.0, dtype="float32") -> Tensor:
        from .ops import random_normal

        return random_normal(self.state, shape=shape, salt=self.next_salt(), mean=mean, std=std, dtype=dtype)

    def bernoulli(self, shape, p: float, dtype="float32") -> Tensor:
        """1 with probability ``p``, else 0."""
        return (self.uniform(shape, dtype=dtype) < p).astype(dtype)

    def dropout(self, x: Tensor, p: float) -> Tensor:
        return dropout(x, p, self.state, salt=self.next_salt())

    def reseed(self, seed: int) -> None:
        """Restart the stream from ``seed``."""
        self.seed = int(seed)
        self.state.assign(np.array(self.seed << 32, np.int64))


@builder()
def dropout(x: Tensor, p: float, seed: Tensor, salt: int = 0) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    ``seed`` is an int tensor (usually RNG state advanced each step), ``salt`` separates layers.
    """
    from .ops import random_uniform, where

    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if p == 0.0:
        return x
    keep = random_uniform(seed, shape=x.shape, salt=salt, dtype=x.dtype) >= p
    return where(keep, x * (1.0 / (1.0 - p)), 0.0)


def collect_rng_updates(roots, already_updated: set):
    """``(state, state + 1)`` for every auto-advancing RNG state the graph reads."""
    from .graph import toposort

    updates = []
    for node in toposort(roots):
        if isinstance(node, Variable) and node.id in _AUTO_ADVANCE and id(node) not in already_updated:
            updates.append((node, node + 1))
            already_updated.add(id(node))
    return updates
