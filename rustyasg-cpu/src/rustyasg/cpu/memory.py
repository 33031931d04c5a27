"""The cpu's memory: one arena per compiled signature, allocated once.

The compiler kit plans it (:func:`rustyasg.core.compile.plan_memory` with :data:`LAYOUT`:
buffers packed by lifetime at 64-byte aligned offsets); this module allocates the
arena and cuts the planned buffers out of it. The run loop never allocates.

Example:
    >>> arena = allocate(256)
    >>> arena.ctypes.data % ALIGN, buffer_view(arena, 64, (2, 3), "float32").shape
    (0, (2, 3))
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.backend_api import MemoryLayout

ALIGN = 64  # a cache line, and AVX-512 friendly
#: What the cpu backend declares to the planner: one arena, offsets aligned to ALIGN.
LAYOUT = MemoryLayout(alignment=ALIGN, pooled=False)


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
