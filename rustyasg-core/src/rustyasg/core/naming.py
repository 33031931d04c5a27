"""Name scopes: where in the model each graph node was created.

Every :class:`~rustyasg.core.graph.Tensor` records the :class:`Scope` active when it was
built: the module path (``"encoder/layers.0/attn/q_proj"``, one ``/``-separated component
per nested module call) and, for nodes emitted by :func:`~rustyasg.core.grad`, the id of
the forward node whose gradient rule produced them. ``rustyasg.nn`` modules enter a scope
in ``__call__``; tools (the viewer, the profiler, ``debug_nans``) read ``tensor.scope``.

Example:
    >>> import rustyasg.core as rg
    >>> with name_scope("encoder"), name_scope("layers.0"):
    ...     y = rg.input((2,), name="x") * 2.0
    >>> y.scope.path
    'encoder/layers.0'
    >>> current() is None
    True
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, NamedTuple, Optional


class Scope(NamedTuple):
    """Where a node was created: the module ``path`` and the forward node it is a gradient of."""

    path: str = ""
    grad_of: Optional[int] = None


_state = threading.local()


def current() -> Optional[Scope]:
    """The active scope, or ``None`` outside every scope (the common, zero-cost case)."""
    return getattr(_state, "scope", None)


@contextlib.contextmanager
def _entered(scope: Optional[Scope]) -> Iterator[Optional[Scope]]:
    previous = current()
    _state.scope = scope
    try:
        yield scope
    finally:
        _state.scope = previous


def name_scope(name: str):
    """Nest ``name`` under the active module path for the nodes built inside.

    An empty ``name`` (the outermost model) keeps the path unchanged.
    """
    outer = current() or Scope()
    path = f"{outer.path}/{name}" if outer.path and name else (name or outer.path)
    return _entered(Scope(path, outer.grad_of))


def gradient_of(node) -> "contextlib.AbstractContextManager":
    """Mark nodes built inside as the gradient of forward ``node`` (keeps ``node``'s module path)."""
    path = node.scope.path if node.scope is not None else ""
    return _entered(Scope(path, node.id))
