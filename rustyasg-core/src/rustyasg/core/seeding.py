"""One call seeds every default random stream: ``rg.manual_seed(seed)`` (like ``torch.manual_seed``).

It restarts the stream of default seeds that ``rg.RNG()`` draws from when no seed is given, and
tells every part that keeps its own default generator (``rustyasg.nn`` seeds its weight
initializers and its modules' dropout streams from it). Parts subscribe with
:func:`on_manual_seed`; core imports none of them. Explicit seeds (``rg.RNG(seed=7)``,
``model.set_rng(7)``) are never affected.

Example:
    >>> import rustyasg.core as rg
    >>> rg.manual_seed(3); a = rg.RNG().seed; b = rg.RNG().seed
    >>> rg.manual_seed(3); (a, b) == (rg.RNG().seed, rg.RNG().seed), a != b
    (True, True)
"""

from __future__ import annotations

import itertools
import threading
from typing import Callable, Iterator, List

_lock = threading.Lock()
_seed = 0
_defaults: Iterator[int] = itertools.count(0)
_listeners: List[Callable[[int], None]] = []


def manual_seed(seed: int) -> None:
    """Seed every default random stream of RustyASG and its installed parts with ``seed``."""
    global _seed, _defaults
    seed = int(seed)
    if not 0 <= seed < 2 ** 63:
        raise ValueError(f"manual_seed: the seed must be in [0, 2**63), got {seed}")
    with _lock:
        _seed = seed
        _defaults = itertools.count(seed << 16)  # disjoint from the next seeds' default streams
        listeners = list(_listeners)
    for listener in listeners:
        listener(seed)


def initial_seed() -> int:
    """The seed of the last :func:`manual_seed` (0 before any)."""
    return _seed


def next_default_seed() -> int:
    """The next seed of a stream created without one (``rg.RNG()``): reproducible after manual_seed."""
    with _lock:
        return next(_defaults)


def on_manual_seed(listener: Callable[[int], None]) -> None:
    """Call ``listener(seed)`` on every :func:`manual_seed` (parts register their generators here)."""
    with _lock:
        _listeners.append(listener)


__all__ = ["manual_seed", "initial_seed", "next_default_seed", "on_manual_seed"]
