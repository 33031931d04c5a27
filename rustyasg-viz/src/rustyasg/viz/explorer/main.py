"""The Model Explorer adapter: RustyASG graph bundles (``*.rgviz``) become Model Explorer graphs.

Model Explorer loads custom extensions by module name (``extensions=["rustyasg.viz.explorer"]``
imports this ``main`` module); an :class:`~model_explorer.Adapter` subclass registers
itself. A bundle is the JSON written by :func:`rustyasg.viz.bundle.write_bundle`: the
forward, gradient and compiled-step graphs of one program. Module paths become
collapsible layers (node namespaces); node attributes carry op, attributes, shapes,
source line, module path, fused group and state_dict names.

Example:
    >>> RustyAsgAdapter.metadata.fileExts
    ['rgviz']
"""

from __future__ import annotations

from typing import Dict

from model_explorer import Adapter, AdapterMetadata, ModelExplorerGraphs, graph_builder as gb

from ..bundle import read_bundle

#: Background colours by node kind (the forward graph is left white).
KIND_COLORS = {"gradient": "#fde7e7", "forward-input": "#eeeeee", "update": "#e6f0ff", "leaf": "#f4f4f4"}


def to_explorer_graph(graph) -> gb.Graph:
    """One :class:`~rustyasg.viz.graphs.VizGraph` as a Model Explorer graph."""
    out = gb.Graph(id=graph.id)
    for n in graph.nodes:
        attrs = [gb.KeyValue(key=k, value=str(v)) for k, v in n.attrs.items()]
        attrs.append(gb.KeyValue(key="node id", value=f"%{n.id}"))
        node = gb.GraphNode(id=n.id, label=n.label, namespace=n.namespace, attrs=attrs)
        node.incomingEdges = [gb.IncomingEdge(sourceNodeId=src, targetNodeInputId=str(k))
                              for k, src in enumerate(n.inputs)]
        node.outputsMetadata = [gb.MetadataItem(id="0", attrs=[
            gb.KeyValue(key="tensor_name", value=f"%{n.id}"), gb.KeyValue(key="shape", value=n.shape),
            gb.KeyValue(key="dtype", value=n.dtype), gb.KeyValue(key="bytes", value=str(n.nbytes))])]
        color = KIND_COLORS.get(n.kind)
        if color:
            node.style = gb.GraphNodeStyle(backgroundColor=color)
        out.nodes.append(node)
    return out


class RustyAsgAdapter(Adapter):
    """Reads ``.rgviz`` bundles written by :mod:`rustyasg.viz`."""

    metadata = AdapterMetadata(id="rustyasg_viz_adapter", name="RustyASG graph adapter",
                               description="RustyASG forward, gradient and compiled-step graphs",
                               source_repo="", fileExts=["rgviz"])

    def __init__(self):
        super().__init__()

    def convert(self, model_path: str, settings: Dict) -> ModelExplorerGraphs:
        graphs = read_bundle(model_path)
        return {"graphs": [to_explorer_graph(g) for g in graphs.values()]}
