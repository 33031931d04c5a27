"""Overlays: numbers per node (time, bytes, peak-live memory, value statistics, first NaN) and
highlighted paths, as Model Explorer node data.

An overlay is ``{graph id: {node id: value}}``; :func:`to_node_data` turns it into Model
Explorer's ``ModelNodeData`` with a colour gradient, which its UI shows on the nodes, in
the side panel and in the per-layer aggregate tables.

Example:
    >>> from rustyasg.viz.graphs import VizGraph, VizNode
    >>> g = VizGraph("forward", [VizNode("1", "input", "x"), VizNode("2", "exp", "exp", inputs=["1"]),
    ...                          VizNode("3", "sum", "sum", inputs=["2"])])
    >>> sorted(path_between(g, "2", "3"))
    ['2', '3']
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Set

from .graphs import VizGraph

Overlay = Dict[str, Dict[str, float]]

GRADIENTS = {
    "time": [("#ffffff", 0.0), ("#ffd27f", 0.5), ("#e4572e", 1.0)],
    "memory": [("#ffffff", 0.0), ("#9ecae1", 0.5), ("#08519c", 1.0)],
    "path": [("#fff176", 0.0), ("#fbc02d", 1.0)],
    "nan": [("#ffcdd2", 0.0), ("#d50000", 1.0)],
}


def descendants(graph: VizGraph, start: str) -> Set[str]:
    users: Dict[str, list] = {}
    for src, dst in graph.edges():
        users.setdefault(src, []).append(dst)
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(users.get(n, ()))
    return seen


def ancestors(graph: VizGraph, start: str) -> Set[str]:
    by_id = graph.by_id()
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n in seen or n not in by_id:
            continue
        seen.add(n)
        stack.extend(by_id[n].inputs)
    return seen


def path_between(graph: VizGraph, source: str, target: str) -> Set[str]:
    """Node ids on some path from ``source`` to ``target`` (both included; empty if none)."""
    down = descendants(graph, source)
    if target not in down:
        return set()
    return down & ancestors(graph, target)


def gradient_path(gradient: VizGraph, grad_node: str) -> Set[str]:
    """Gradient-graph nodes the gradient ``grad_node`` is computed from (back to the loss's seed)."""
    by_id = gradient.by_id()
    return {n for n in ancestors(gradient, grad_node) if by_id[n].kind == "gradient"}


def forward_origins(gradient: VizGraph, nodes: Iterable[str]) -> Set[str]:
    """Forward node ids that the given gradient nodes are gradients of."""
    by_id = gradient.by_id()
    out = set()
    for n in nodes:
        origin = by_id[n].attrs.get("gradient of", "")
        if origin.startswith("%"):
            out.add(origin[1:].split()[0])
    return out


def to_node_data(name: str, overlay: Overlay, kind: str = "time"):
    """Model Explorer node data for ``overlay`` (``kind`` picks the colour gradient)."""
    from model_explorer import node_data_builder as ndb

    stops = GRADIENTS.get(kind, GRADIENTS["time"])
    graphs = {}
    for graph_id, values in overlay.items():
        results = {nid: ndb.NodeDataResult(value=float(v)) for nid, v in values.items()}
        graphs[graph_id] = ndb.GraphNodeData(
            results=results, name=name,
            gradient=[ndb.GradientItem(stop=s, bgColor=c) for c, s in stops])
    return ndb.ModelNodeData(graphsData=graphs)


def bytes_overlay(graphs: Mapping[str, VizGraph]) -> Overlay:
    """Bytes each node's value takes, per graph."""
    return {gid: {n.id: float(n.nbytes) for n in g.nodes if n.nbytes} for gid, g in graphs.items()}


def highlight_overlay(graph_id: str, nodes: Iterable[str]) -> Overlay:
    return {graph_id: {n: 1.0 for n in nodes}}


def merge(*overlays: Optional[Overlay]) -> Overlay:
    out: Overlay = {}
    for ov in overlays:
        for gid, values in (ov or {}).items():
            out.setdefault(gid, {}).update(values)
    return out
