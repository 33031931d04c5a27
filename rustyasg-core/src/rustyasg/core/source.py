"""Find the user's ``file:line`` that created a node, skipping the frames of op builders.

A frame belongs to a builder (and is skipped) when its code lives in a RustyASG part,
in the package of a plugin loaded from the ``rustyasg.plugins`` entry points, or in a
function marked with :func:`mark_builder` (what :func:`rustyasg.core.builder` does).
So an op from a plugin reports the line of the user's call, not the plugin's wrapper.
"""

from __future__ import annotations

import os
import sys

_PACKAGE_ROOTS: tuple = ()
_BUILDER_CODE: set = set()
_BUILDER_PACKAGES: set = {"rustyasg"}


def _package_roots() -> tuple:
    global _PACKAGE_ROOTS
    if not _PACKAGE_ROOTS:
        import rustyasg  # native namespace: one path entry per installed part

        _PACKAGE_ROOTS = tuple(os.path.join(os.path.abspath(p), "") for p in rustyasg.__path__)
    return _PACKAGE_ROOTS


def mark_builder(fn):
    """Treat the frames of ``fn`` as part of an op builder (never a user's line); returns ``fn``.

    >>> def wrapper(x):
    ...     return x
    >>> mark_builder(wrapper) is wrapper
    True
    """
    code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
    if code is not None:
        _BUILDER_CODE.add(code)
    inner = getattr(fn, "__code__", None)
    if inner is not None:
        _BUILDER_CODE.add(inner)
    return fn


def mark_builder_package(module_name: str) -> None:
    """Treat every module of ``module_name``'s top-level package as builder code (plugins' packages).

    ``__main__`` and test modules are never marked: their lines are the user's.
    """
    top = module_name.split(".", 1)[0]
    if top and top != "__main__":
        _BUILDER_PACKAGES.add(top)


def _is_builder_frame(frame, roots) -> bool:
    if frame.f_code in _BUILDER_CODE or frame.f_code.co_filename.startswith(roots):
        return True
    module = frame.f_globals.get("__name__") or ""
    return module.split(".", 1)[0] in _BUILDER_PACKAGES


def user_location(skip_internal: bool = True) -> str | None:
    """``"file.py:12"`` of the nearest caller outside the op builders.

    >>> user_location() is None or ":" in user_location()
    True
    """
    roots = _package_roots()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (skip_internal and _is_builder_frame(frame, roots)) and not filename.startswith("<frozen"):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None
