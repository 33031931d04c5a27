"""Graph-build-time checks of layer inputs: errors name the layer, the shapes and the user's file:line."""

from __future__ import annotations

from rustyasg.core import ShapeError
from rustyasg.core.source import user_location


def shape_error(where: str, message: str, *tensors) -> ShapeError:
    """A :class:`rustyasg.core.ShapeError` for layer ``where``, listing the operands' types.

    >>> str(shape_error("Linear", "bad")).splitlines()[0]
    'Linear: bad'
    """
    return ShapeError(where, message, [t.describe() for t in tensors], user_location())


def check_rank(where: str, x, ranks, what: str = "input") -> None:
    """Raise unless ``x.ndim`` is one of ``ranks``."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if x.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise shape_error(where, f"expected a rank-{want} {what}, got rank {x.ndim}", x)


def check_dim(where: str, x, axis: int, size, what: str) -> None:
    """Raise unless ``x.shape[axis] == size``."""
    if x.shape[axis] != size:
        raise shape_error(where, f"{what}: expected size {size} along axis {axis}, got {x.shape[axis]}", x)
