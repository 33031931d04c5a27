"""Find the user's ``file:line`` that created a node, skipping RustyASG's own frames."""

from __future__ import annotations

import os
import sys

_PACKAGE_ROOTS: tuple = ()


def _package_roots() -> tuple:
    global _PACKAGE_ROOTS
    if not _PACKAGE_ROOTS:
        import rustyasg  # native namespace: one path entry per installed part

        _PACKAGE_ROOTS = tuple(os.path.join(os.path.abspath(p), "") for p in rustyasg.__path__)
    return _PACKAGE_ROOTS


def user_location(skip_internal: bool = True) -> str | None:
    """``"file.py:12"`` of the nearest caller outside the rustyasg packages.

    >>> user_location() is None or ":" in user_location()
    True
    """
    roots = _package_roots()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (skip_internal and filename.startswith(roots)) and not filename.startswith("<frozen"):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None
