"""What every loss shares: reductions, argument checks and error messages.

Errors are raised while the graph is built and name the loss, the operand
shapes and the user's ``file:line`` (the same :class:`GraphBuildError` family
the core ops raise).

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((4, 3), name="x")
    >>> reduce_loss(x, "sum", "demo").shape
    ()
"""

from __future__ import annotations

from typing import Optional, Sequence

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.errors import DTypeError, GraphBuildError, ShapeError
from rustyasg.core.shapes import format_shape, same_shape as shapes_agree
from rustyasg.core.source import user_location

REDUCTIONS = ("mean", "sum", "none")


def fail(loss: str, message: str, *operands, error=ShapeError):
    """Raise ``error`` for ``loss`` naming the operands' types and the user's file:line."""
    described = [t.describe() if isinstance(t, Tensor) else repr(t) for t in operands]
    raise error(loss, message, described, user_location())


def check_reduction(loss: str, reduction: str, allowed: Sequence[str] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise GraphBuildError(loss, f"reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}",
                              source=user_location())


def reduce_loss(loss: Tensor, reduction: str, name: str) -> Tensor:
    """Apply a ``'mean'``/``'sum'``/``'none'`` reduction to per-element losses."""
    check_reduction(name, reduction)
    if reduction == "mean":
        return rg.mean(loss)
    if reduction == "sum":
        return rg.sum(loss)
    return loss


def as_float(loss: str, value, like: Optional[Tensor] = None, what: str = "input") -> Tensor:
    """A floating tensor from a tensor or array-like (constants adopt ``like``'s dtype)."""
    if not isinstance(value, Tensor):
        value = rg.constant(value, like.dtype if like is not None and like.dtype.kind == "f" else None)
    if value.dtype.kind != "f":
        fail(loss, f"{what} must be floating point, got {value.dtype}", value, error=DTypeError)
    return value


def as_index(loss: str, value, what: str = "target") -> Tensor:
    """An int32/int64 tensor of class indices."""
    if not isinstance(value, Tensor):
        value = rg.constant(value, "int64")
    if value.dtype.kind not in "iu":
        fail(loss, f"{what} must hold integer class indices, got {value.dtype}", value, error=DTypeError)
    return value


def same_shape(loss: str, a: Tensor, b: Tensor, what: str = "input and target") -> None:
    """Refuse silently broadcasting losses: PyTorch warns there, we stop."""
    if not shapes_agree(a.shape, b.shape):  # two None batch dims agree, as in the core ops
        fail(loss, f"{what} must have the same shape, got {format_shape(a.shape)} and {format_shape(b.shape)}",
             a, b)


def class_weight(loss: str, weight, n_classes, like: Tensor) -> Tensor:
    """A 1-D per-class weight of length ``n_classes`` in ``like``'s dtype."""
    w = as_float(loss, weight, like, "weight")
    if len(w.shape) != 1 or w.shape[0] != n_classes:
        fail(loss, f"weight must be a 1-D tensor with one entry per class ({n_classes}), "
                   f"got {format_shape(w.shape)}", like, w)
    return w.astype(like.dtype)


def along(vector: Tensor, axis: int, ndim: int) -> Tensor:
    """Reshape a 1-D ``vector`` so it broadcasts along ``axis`` of a rank-``ndim`` tensor."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(tuple(shape))
