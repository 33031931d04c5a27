"""The ``.rgviz`` file: a program's viewer graphs as JSON (what the Model Explorer adapter reads).

Plain data only (ids, labels, strings): reading a bundle never executes code.

Example:
    >>> import tempfile, os
    >>> from rustyasg.viz.graphs import VizGraph, VizNode
    >>> path = os.path.join(tempfile.mkdtemp(), "m.rgviz")
    >>> _ = write_bundle(path, {"forward": VizGraph("forward", [VizNode("1", "exp", "exp")])})
    >>> read_bundle(path)["forward"].nodes[0].op
    'exp'
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Dict, Mapping

from rustyasg.core.errors import RustyASGError

from .graphs import VizGraph

FORMAT = "rustyasg-viz"
VERSION = 1


def write_bundle(path: str, graphs: Mapping[str, VizGraph]) -> str:
    """Write ``graphs`` to ``path`` atomically (a partial file never replaces a good one)."""
    data = {"format": FORMAT, "version": VERSION, "graphs": [g.to_dict() for g in graphs.values()]}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return path


def read_bundle(path: str) -> Dict[str, VizGraph]:
    """The graphs of a bundle, by id; a clear error for a file that is not one."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise RustyASGError(f"cannot read RustyASG graph bundle {path!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RustyASGError(f"{path!r} is not a RustyASG graph bundle (expected format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise RustyASGError(f"{path!r}: bundle version {data.get('version')!r} is not supported "
                            f"(this rustyasg-viz reads version {VERSION}); re-export it")
    return {g["id"]: VizGraph.from_dict(g) for g in data["graphs"]}
