"""Shape algebra every backend needs, in one place.

- :func:`outer_reduced_inner`: a reduction over a contiguous run of axes of a C-ordered
  array is a reduction over the middle axis of the 3-D view ``(outer, reduced, inner)``;
  kernels written for that one layout serve every rank (size-1 axes never break a run).
- :func:`sum_to_axes`: the axes ``sum_to`` (the inverse of broadcasting) sums over.
- :func:`reduced_shape`: the shape a reduction leaves.

Example:
    >>> outer_reduced_inner((2, 3, 4, 5), (1, 2))
    (2, 12, 5)
    >>> outer_reduced_inner((2, 3, 4), (0, 2)) is None
    True
    >>> sum_to_axes((5, 4, 3), (4, 1))
    (0, 2)
"""

from __future__ import annotations

from math import prod
from typing import Optional, Sequence, Tuple


def outer_reduced_inner(shape: Sequence[int], axes: Sequence[int]) -> Optional[Tuple[int, int, int]]:
    """``(outer, reduced, inner)`` sizes for reducing ``axes`` of ``shape``; None when the
    reduced axes are not one contiguous run (a size-1 axis between them does not break it).

    >>> outer_reduced_inner((2, 1, 3), (0, 2)), outer_reduced_inner((4, 5), ())
    ((1, 6, 1), (20, 1, 1))
    """
    shape = tuple(shape)
    red = sorted(set(axes))
    if not red:
        return (prod(shape), 1, 1)
    lo, hi = red[0], red[-1]
    if any(shape[i] != 1 and i not in red for i in range(lo, hi + 1)):
        return None
    return (prod(shape[:lo]), prod(shape[lo:hi + 1]), prod(shape[hi + 1:]))


def sum_to_axes(in_shape: Sequence[int], target: Sequence[int]) -> Tuple[int, ...]:
    """Axes of ``in_shape`` that summing down to the broadcast-compatible ``target`` reduces:
    the leading extra axes and those where ``target`` has 1 and ``in_shape`` does not."""
    lead = len(in_shape) - len(target)
    return tuple(range(lead)) + tuple(lead + i for i, d in enumerate(target) if d == 1 and in_shape[lead + i] != 1)


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> Tuple[int, ...]:
    """The shape left by reducing ``axes`` (kept as 1 with ``keepdims``).

    >>> reduced_shape((2, 3, 4), (1,), False), reduced_shape((2, 3, 4), (1,), True)
    ((2, 4), (2, 1, 4))
    """
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)
