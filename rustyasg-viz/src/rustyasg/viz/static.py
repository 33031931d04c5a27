"""Static pictures of a graph: SVG and PNG laid out by Graphviz (``dot``), for papers and issues.

Module paths become clusters. A graph larger than ``collapse_above`` nodes is drawn at
module level: one box per module (at ``depth`` path components) with its node count and
op mix, and one edge per pair of connected modules labelled with how many edges it stands for.

Example:
    >>> from rustyasg.viz.graphs import VizGraph, VizNode
    >>> g = VizGraph("forward", [VizNode("1", "input", "input x"), VizNode("2", "exp", "exp", "enc", ["1"])])
    >>> dot = to_dot(g)
    >>> "cluster" in dot.source and "exp" in dot.source
    True
"""

from __future__ import annotations

import collections
import os
from typing import Dict

from rustyasg.core.errors import RustyASGError

from .graphs import VizGraph

COLORS = {"forward": "#ffffff", "gradient": "#fde7e7", "forward-input": "#eeeeee", "update": "#e6f0ff",
          "leaf": "#f4f4f4"}


def _require_graphviz():
    try:
        import graphviz
    except ImportError:
        raise RustyASGError("static export needs the graphviz Python package: pip install graphviz") from None
    return graphviz


def to_dot(graph: VizGraph, collapse_above: int = 300, depth: int = 1, highlight=()):
    """A ``graphviz.Digraph`` of ``graph`` (module level when it has more than ``collapse_above`` nodes)."""
    graphviz = _require_graphviz()
    dot = graphviz.Digraph(graph.id, graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "10"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                      "fontsize": "9"})
    if len(graph.nodes) > collapse_above:
        return _module_level(dot, graph, depth)
    marked = set(highlight)
    clusters: Dict[str, list] = collections.defaultdict(list)
    for n in graph.nodes:
        clusters[n.namespace].append(n)
    for ns, nodes in clusters.items():
        target = dot if not ns else graphviz.Digraph(f"cluster_{ns}", graph_attr={"label": ns, "style": "dashed"})
        for n in nodes:
            fill = "#fbc02d" if n.id in marked else COLORS.get(n.kind, "#ffffff")
            target.node(f"n{n.id}", f"{n.label}\n{n.dtype}{n.shape}", fillcolor=fill, tooltip=f"%{n.id}")
        if ns:
            dot.subgraph(target)
    known = {n.id for n in graph.nodes}
    for src, dst in graph.edges():
        if src in known:
            dot.edge(f"n{src}", f"n{dst}")
    return dot


def _module_level(dot, graph: VizGraph, depth: int):
    def module(ns: str) -> str:
        parts = [p for p in ns.split("/") if p]
        return "/".join(parts[:depth]) or "(top level)"

    of = {n.id: module(n.namespace) for n in graph.nodes}
    members: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for n in graph.nodes:
        members[of[n.id]][n.op] += 1
    ids = {m: f"m{k}" for k, m in enumerate(members)}
    for m, ops in members.items():
        mix = ", ".join(f"{op}x{c}" for op, c in ops.most_common(3))
        dot.node(ids[m], f"{m}\n{sum(ops.values())} nodes\n{mix}", fillcolor="#ffffff")
    edges = collections.Counter((of[s], of[d]) for s, d in graph.edges() if s in of and of[s] != of[d])
    for (a, b), count in edges.items():
        dot.edge(ids[a], ids[b], label=str(count), fontsize="8")
    return dot


def export(graph: VizGraph, path: str, collapse_above: int = 300, depth: int = 1, highlight=()) -> str:
    """Write ``graph`` as SVG or PNG (by ``path``'s extension); returns the path."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise RustyASGError(f"export: {path!r} must end in .svg or .png")
    dot = to_dot(graph, collapse_above, depth, highlight)
    try:
        data = dot.pipe(format=fmt)
    except Exception as exc:  # graphviz.ExecutableNotFound and layout failures
        raise RustyASGError(f"export: Graphviz could not lay out the graph ({exc}); on Debian: "
                            f"apt-get install graphviz") from None
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
