"""Memory planning: one arena per compiled signature, buffers packed by lifetime.

Every value that needs storage (copied-in inputs, kernel outputs, scratch) gets
an interval ``[first step, last step]``. Buffers are placed in one arena with
the greedy-by-size strategy (TensorFlow Lite's ``GreedyBySizePlanner``): largest
first, each at the lowest offset that does not overlap, in memory *and* time,
a buffer placed before it. The arena is allocated once; the run loop never
allocates.

Example:
    >>> plan = plan_arena([Buffer(0, 0, 1, 400), Buffer(1, 2, 3, 400), Buffer(2, 1, 2, 100)])
    >>> plan.offsets[0] == plan.offsets[1], plan.total
    (True, 576)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np

ALIGN = 64  # a cache line, and AVX-512 friendly


@dataclass(frozen=True)
class Buffer:
    """A value's storage need: key, first and last step using it (inclusive), bytes."""

    key: object
    start: int
    end: int
    nbytes: int


@dataclass
class ArenaPlan:
    offsets: Dict[object, int] = field(default_factory=dict)
    total: int = 0
    naive: int = 0
    live_peak: int = 0


def _round(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_arena(buffers: Sequence[Buffer]) -> ArenaPlan:
    """Offsets for ``buffers`` such that buffers alive at the same step never overlap."""
    plan = ArenaPlan()
    placed: List[tuple] = []  # (offset, size, start, end)
    for b in sorted(buffers, key=lambda b: (-b.nbytes, b.start)):
        size = _round(max(b.nbytes, 1))
        busy = sorted((o, s) for o, s, st, en in placed if st <= b.end and b.start <= en)
        offset = 0
        for o, s in busy:
            if o - offset >= size:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, b.start, b.end))
        plan.offsets[b.key] = offset
        plan.total = max(plan.total, offset + size)
        plan.naive += size
    if buffers:
        steps = sorted({b.start for b in buffers})
        plan.live_peak = max(sum(_round(max(b.nbytes, 1)) for b in buffers if b.start <= t <= b.end) for t in steps)
    return plan


def allocate(total: int) -> np.ndarray:
    """A byte arena of ``total`` bytes whose start is ALIGN-aligned."""
    raw = np.empty(total + ALIGN, np.uint8)
    shift = (-raw.ctypes.data) % ALIGN
    return raw[shift:shift + total]


def buffer_view(arena: np.ndarray, offset: int, shape, dtype) -> np.ndarray:
    """The C-contiguous array of ``shape``/``dtype`` at ``offset`` in the arena."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return arena[offset:offset + n].view(dtype).reshape(shape)
