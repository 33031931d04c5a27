"""Functions that build graph ops from other ops (composites and plugin wrappers).

:func:`builder` marks such a function: its frames are never reported as the user's
``file:line``, and a mistake raised inside it (a plain ``ValueError``/``IndexError``/
``TypeError`` or an inner op's error) becomes a :class:`~rustyasg.core.errors.GraphBuildError`
that names the function's op, the operands as the user passed them and the user's line.

Example:
    >>> import rustyasg.core as rg
    >>> @rg.builder("twice")
    ... def twice(x):
    ...     if x.ndim > 2:
    ...         raise ValueError("needs rank <= 2")
    ...     return x + x
    >>> try:
    ...     twice(rg.input((1, 2, 3), name="t"))
    ... except rg.ShapeError as e:
    ...     print(str(e).splitlines()[:2])
    ['twice: needs rank <= 2', '  operands: float32(1, 2, 3)']
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

from .errors import DTypeError, GraphBuildError, IndexingError, ShapeError
from .source import mark_builder, user_location


def _operands(args, kwargs) -> list:
    from .graph import Tensor

    found = []
    for value in list(args) + list(kwargs.values()):
        items = value if isinstance(value, (list, tuple)) else (value,)
        found.extend(v.describe() for v in items if isinstance(v, Tensor))
    return found


def _error_class(exc: Exception):
    if isinstance(exc, GraphBuildError):
        return type(exc)
    if isinstance(exc, IndexError):
        return IndexingError
    if isinstance(exc, TypeError):
        return DTypeError
    return ShapeError


def builder(op: Optional[str] = None) -> Callable:
    """Decorate a function that builds ops: errors name ``op`` (default: the function's name).

    Errors already naming ``op`` pass through unchanged; an inner op's error is re-raised
    under ``op`` with the inner op's message, so the user sees the function they called.
    """
    def decorate(fn: Callable) -> Callable:
        name = op or fn.__name__

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except GraphBuildError as exc:
                if exc.op == name:
                    raise
                detail = f"{exc.op}: {exc.detail}"
                raise _error_class(exc)(name, detail, _operands(args, kwargs), user_location()) from None
            except (ValueError, IndexError, TypeError) as exc:
                detail = str(exc.args[0]) if exc.args else type(exc).__name__
                raise _error_class(exc)(name, detail, _operands(args, kwargs), user_location()) from None

        mark_builder(fn)
        mark_builder(wrapper)
        return wrapper
    return decorate
