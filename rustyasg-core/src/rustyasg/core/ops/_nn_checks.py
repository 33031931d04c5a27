"""Operand checks shared by the conv, pooling and normalization shape rules.

They raise ValueError/TypeError with a plain message; ``apply`` turns that into a
GraphBuildError naming the op, the operand shapes and the user's file:line.
"""

from __future__ import annotations

from .. import dtypes
from ..shapes import format_shape


def require_rank(t, rank: int, what: str, layout: str = "") -> None:
    if len(t.shape) != rank:
        hint = f" {layout}" if layout else ""
        raise ValueError(f"{what} must have rank {rank}{hint}, got shape {format_shape(t.shape)}")


def require_floating(*types) -> None:
    for t in types:
        if not dtypes.is_floating(t.dtype):
            raise TypeError(f"needs floating-point operands, got {t.dtype}")


def static_dims(t, axes, what: str) -> tuple:
    """The sizes of ``axes`` of ``t`` as ints; symbolic sizes are refused with a clear message."""
    out = []
    for a in axes:
        d = t.shape[a]
        if not isinstance(d, int):
            raise ValueError(f"{what} needs a concrete size along axis {a} of {format_shape(t.shape)}, "
                             f"got the symbolic dimension {d}")
        out.append(d)
    return tuple(out)


def require_positive(name: str, values) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{name} must be positive, got {tuple(values)}")


def require_non_negative(name: str, values) -> None:
    if any(v < 0 for v in values):
        raise ValueError(f"{name} must be non-negative, got {tuple(values)}")


def user_error(op: str, exc: Exception, tensors):
    """A GraphBuildError for a check made outside ``apply`` (in a composite user function)."""
    from ..errors import DTypeError, ShapeError
    from ..source import user_location

    cls = DTypeError if isinstance(exc, TypeError) else ShapeError
    return cls(op, str(exc.args[0] if exc.args else exc), [t.describe() for t in tensors], user_location())
