"""A clear error for RustyASG parts that are not installed.

The parts are separate distributions sharing the ``rustyasg`` namespace, so a
missing one would otherwise surface as a bare ``No module named 'rustyasg.nn'``.
Importing the core appends a finder to ``sys.meta_path`` that is consulted only
after every real finder failed, and turns that case into a
:class:`~rustyasg.core.errors.MissingPartError` naming the pip command.

Example:
    >>> PARTS["nn"]
    'rustyasg-nn'
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

from .errors import MissingPartError

#: Import name under ``rustyasg.`` -> distribution that provides it.
PARTS = {"core": "rustyasg-core", "cpu": "rustyasg-cpu", "wgpu": "rustyasg-wgpu", "nn": "rustyasg-nn",
         "data": "rustyasg-data", "viz": "rustyasg-viz", "distributed": "rustyasg-dist",
         "onnx": "rustyasg-onnx", "web": "rustyasg-web", "serve": "rustyasg-serve"}


class MissingPartFinder(MetaPathFinder):
    """Last finder on ``sys.meta_path``: reached only when ``rustyasg.<part>`` was not found."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, rest = fullname.partition(".")
        if prefix != "rustyasg" or not rest or "." in rest:
            return None
        dist = PARTS.get(rest)
        if dist is None:
            return None
        raise MissingPartError(f"the RustyASG part 'rustyasg.{rest}' is not installed; "
                               f"install it with: pip install {dist}", name=fullname)


def install() -> None:
    """Append the finder once (idempotent)."""
    if not any(isinstance(f, MissingPartFinder) for f in sys.meta_path):
        sys.meta_path.append(MissingPartFinder())


def distribution_version(distribution: str) -> str:
    """The installed version of a RustyASG distribution, from its package metadata (one place: its
    ``pyproject.toml``); ``"0+unknown"`` for a source tree that was put on ``sys.path`` uninstalled.

    >>> distribution_version("rustyasg-core") == __import__("rustyasg.core").core.__version__
    True
    """
    import importlib.metadata as md

    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return "0+unknown"

