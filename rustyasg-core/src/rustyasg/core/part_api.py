"""Names that installed parts add to ``rustyasg.core`` (``rg.view``, ``rg.onnx``, ...).

Core imports no part. A part declares the names it contributes in the ``rustyasg.api``
entry-point group, and ``rustyasg.core.__getattr__`` resolves an unknown attribute there on
first use::

    [project.entry-points."rustyasg.api"]
    view = "rustyasg.viz.viewer:view"        # rg.view(...)
    onnx = "rustyasg.onnx"                   # rg.onnx.export(...)

A name that a known part would provide but that is not installed raises
:class:`~rustyasg.core.errors.MissingPartError` with the pip command.

Example:
    >>> from rustyasg.core.part_api import KNOWN_NAMES
    >>> KNOWN_NAMES["view"]
    'rustyasg-viz'
"""

from __future__ import annotations

import importlib.metadata as md
from typing import Any, Dict

from .errors import MissingPartError

GROUP = "rustyasg.api"

#: Names the project's own parts contribute -> the distribution to install for them.
KNOWN_NAMES: Dict[str, str] = {
    "view": "rustyasg-viz", "profile": "rustyasg-viz", "inspect": "rustyasg-viz",
    "debug_nans": "rustyasg-viz", "gradcheck": "rustyasg-viz", "viz": "rustyasg-viz",
    "onnx": "rustyasg-onnx",
    "web": "rustyasg-web",
    "distributed": "rustyasg-dist",
    "inference": "rustyasg-nn",
}


def resolve(name: str) -> Any:
    """The object a part registered under ``name`` in the ``rustyasg.api`` group.

    Raises ``AttributeError`` for a name no part provides, and ``MissingPartError`` for one
    that a known, uninstalled part would provide.
    """
    for ep in md.entry_points(group=GROUP):
        if ep.name == name:
            return ep.load()
    if name in KNOWN_NAMES:
        raise MissingPartError(f"rustyasg.core.{name} is provided by the part {KNOWN_NAMES[name]!r}, "
                               f"which is not installed; install it with: pip install {KNOWN_NAMES[name]}")
    raise AttributeError(f"module 'rustyasg.core' has no attribute {name!r}")
