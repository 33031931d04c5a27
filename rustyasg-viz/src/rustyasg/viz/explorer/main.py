"""Model Explorer extensions: the adapter (``*.rgviz`` bundles become Model Explorer graphs) and a
node-data provider that highlights a path chosen in the UI.

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

from model_explorer import (Adapter, AdapterMetadata, GetConfigEditorsResult, ModelExplorerGraphs, NodeDataProvider,
                            NodeDataProviderFilter, NodeDataProviderMetadata, NodeDataProviderResult,
                            graph_builder as gb, node_data_builder as ndb)
from model_explorer.config_editor import DropDownConfigEditor, OptionItem, TextInputConfigEditor

from rustyasg.core.errors import RustyASGError

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


class PathHighlighter(NodeDataProvider):
    """Highlights a path chosen in the UI: from a node to the loss, or the gradient path of a parameter.

    The node is given by id (``79`` or ``%79``) or label (a ``state_dict`` name such as ``lm_head.weight``).
    """

    metadata = NodeDataProviderMetadata(id="rustyasg_path", name="RustyASG path",
                                        description="Highlight the path from a node to the loss, or from the "
                                                    "loss to a parameter's gradient",
                                        icon="route", filter=NodeDataProviderFilter(modelFileExts=["rgviz"]))

    def __init__(self):
        super().__init__()

    def get_config_editors(self, provider_id: str) -> GetConfigEditorsResult:
        return GetConfigEditorsResult(configEditors=[
            TextInputConfigEditor(id="node", label="Node", required=True,
                                  help="node id (79 or %79) or label (a state_dict name)"),
            DropDownConfigEditor(id="direction", label="Path", defaultValue="loss", options=[
                OptionItem(value="loss", label="from the node to the loss"),
                OptionItem(value="gradient", label="from the loss to this parameter's gradient")]),
        ])

    def run(self, provider_id: str, model_path: str, graph_id: str, config_values: dict,
            graph=None) -> NodeDataProviderResult:
        try:
            graphs = read_bundle(model_path)
            nodes = highlighted(graphs, graph_id, str(config_values.get("node", "")),
                                str(config_values.get("direction", "loss")))
        except (KeyError, ValueError, RustyASGError) as exc:
            return NodeDataProviderResult(error=str(exc))
        results = {n: ndb.NodeDataResult(value=1) for n in nodes}
        return NodeDataProviderResult(result=ndb.GraphNodeData(
            results=results, name="path", thresholds=[ndb.ThresholdItem(value=1, bgColor="#fbc02d")]))


def highlighted(graphs, graph_id: str, node: str, direction: str) -> set:
    """Node ids of ``graph_id`` on the requested path (see :class:`PathHighlighter`)."""
    from ..overlays import gradient_path, path_between

    graph = graphs[graph_id]
    start = _find(graphs, graph_id, node)
    if direction == "gradient":
        grad = graphs.get("gradient")
        if grad is None:
            raise ValueError("this program has no gradient graph")
        label = next((n.attrs.get("state_dict name") or n.label for g in graphs.values() for n in g.nodes
                      if n.id == start), start)
        target = next((n.id for n in grad.nodes if n.attrs.get("gradient for") in (label, f"%{start}")), None)
        if target is None:
            raise ValueError(f"no gradient flows into {label!r} (is it a trained parameter?)")
        path = gradient_path(grad, target)
        if graph_id == "gradient":
            return path
        origins = {grad.by_id()[n].attrs.get("gradient of", "").lstrip("%").split(" ")[0] for n in path}
        return {n.id for n in graph.nodes if n.id in origins}
    loss = next((n.id for n in graph.nodes if n.attrs.get("role") == "loss"), None)
    if loss is None:
        raise ValueError(f"graph {graph_id!r} has no loss node; pick the forward or step graph")
    path = path_between(graph, start, loss)
    if not path:
        raise ValueError(f"node {node!r} does not reach the loss in graph {graph_id!r}")
    return path


def _find(graphs, graph_id: str, node: str) -> str:
    key = node.strip().lstrip("%")
    if key.isdigit():
        return key
    for g in [graphs[graph_id]] + list(graphs.values()):
        for n in g.nodes:
            if n.label == key or n.attrs.get("state_dict name") == key:
                return n.id
    raise ValueError(f"no node {node!r} (give a node id like 79 or a label like lm_head.weight)")
