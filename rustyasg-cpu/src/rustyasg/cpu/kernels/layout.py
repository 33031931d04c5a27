"""Shape helpers shared by kernels: collapsing an axis set to ``(A, R, B)``.

A reduction over a contiguous run of axes of a C-ordered array is a reduction
over the middle axis of a 3-D view ``(A, R, B)``: everything before, the reduced
axes, everything after. Kernels written for that one layout serve every rank.

Example:
    >>> arb((2, 3, 4, 5), (1, 2))
    (2, 12, 5)
    >>> arb((2, 3, 4), (0, 2)) is None
    True
"""

from __future__ import annotations

from math import prod
from typing import Optional, Sequence, Tuple


def arb(shape: Sequence[int], axes: Sequence[int]) -> Optional[Tuple[int, int, int]]:
    """``(A, R, B)`` for reducing ``axes`` of ``shape``, or None if they are not contiguous."""
    axes = sorted(axes)
    if not axes:
        return (prod(shape), 1, 1)
    if axes != list(range(axes[0], axes[-1] + 1)):
        return None
    return (prod(shape[:axes[0]]), prod(shape[axes[0]:axes[-1] + 1]), prod(shape[axes[-1] + 1:]))
