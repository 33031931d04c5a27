"""Turn a RustyASG program (symbolic or static) into an ONNX model, one translator per op.

Translators come from :func:`rustyasg.core.exporters.translators` (``"onnx"``): this part
registers those of the core ops, and any plugin adds its own through the
``rustyasg_register_exporters`` hook.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.core.symbolic_program import trace
    >>> x = rg.input((None, 3), name="x")
    >>> model = program_to_model(trace([x], [rg.relu(x) * 2.0]))
    >>> [n.op_type for n in model.graph.node]
    ['Relu', 'Mul', 'Identity']
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import onnx
from onnx import helper

from rustyasg.core.errors import RustyASGError
from rustyasg.core.exporters import EXPORTERS, translators
from rustyasg.core.program import Program
from rustyasg.core.registry import OPS
from rustyasg.core.shapes import Dim

from .builder import GraphBuilder, Node, onnx_dtype

FORMAT = "onnx"
DEFAULT_OPSET = 18
MIN_OPSET = 18
LEAVES = ("input", "variable", "constant")


class OnnxExportError(RustyASGError, ValueError):
    """A graph cannot be exported to ONNX; the message names the op and what to do."""


class MissingTranslatorError(OnnxExportError):
    """An op of the graph has no ONNX translator installed."""


def value_info(name: str, shape, dtype) -> onnx.ValueInfoProto:
    """ONNX type of a value; symbolic dims become named (dynamic) axes."""
    dims = [str(d) if isinstance(d, Dim) else int(d) for d in shape]
    return helper.make_tensor_value_info(name, onnx_dtype(dtype), dims)


def check_translatable(program: Program, table) -> None:
    missing = sorted({i.op for i in program.instrs if i.op not in LEAVES and i.op not in table})
    if missing:
        parts = []
        for op in missing:
            plugin = OPS[op].plugin if op in OPS else "an unknown plugin"
            parts.append(f"{op!r} (an op of {plugin!r})")
        raise MissingTranslatorError(
            f"no ONNX translator for {', '.join(parts)}. Install a version of the plugin that registers one "
            f"through the rustyasg_register_exporters hook (pip install -U {' '.join(sorted({OPS[o].plugin for o in missing if o in OPS}))}), "
            f"or register one in-process with rustyasg.onnx.register_translator(op, fn)")


def _unique(name: Optional[str], fallback: str, taken: set) -> str:
    base = (name or fallback).replace(" ", "_")
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def program_to_model(program: Program, opset: int = DEFAULT_OPSET, input_names: Optional[Sequence[str]] = None,
                     output_names: Optional[Sequence[str]] = None, variables_as_inputs: bool = False,
                     graph_name: str = "rustyasg", variable_names: Optional[Dict[int, str]] = None) -> onnx.ModelProto:
    """The ONNX model of ``program``: its inputs, then its outputs followed by its update values.

    Variables become initializers named by ``variable_names`` (variable id -> name; default the
    variables' own names); with ``variables_as_inputs`` they are
    also graph inputs, so a runtime can feed new values: what a backend or a training loop needs).
    """
    if opset < MIN_OPSET or opset > onnx.defs.onnx_opset_version():
        raise OnnxExportError(f"opset {opset} is not supported: the translators use opset {MIN_OPSET} ops (reductions "
                              f"with axes as inputs); choose {MIN_OPSET} to {onnx.defs.onnx_opset_version()}")
    table = translators(FORMAT)
    check_translatable(program, table)
    by_id = program.by_id()
    taken: set = set()
    names: Dict[int, str] = {}
    graph_inputs: List[onnx.ValueInfoProto] = []
    for k, iid in enumerate(program.inputs):
        if iid not in by_id:  # a statically lowered program drops inputs that nothing reads
            continue
        ins = by_id[iid]
        given = input_names[k] if input_names is not None else ins.name
        names[iid] = _unique(given, f"input{k}", taken)
        graph_inputs.append(value_info(names[iid], ins.shape, ins.dtype))
    dim_sources = {}
    for iid in (i for i in program.inputs if i in by_id):
        for axis, d in enumerate(by_id[iid].shape):
            if isinstance(d, Dim) and d.coef == 1 and len(d.factors) == 1 and d.factors[0][1] == 1:
                dim_sources.setdefault(d.factors[0][0], (names[iid], axis))
    b = GraphBuilder(opset, dim_sources)
    for iid, var in sorted(program.variables.items()):
        names[iid] = _unique((variable_names or {}).get(iid, var.name), f"variable{iid}", taken)
        b.initializer(var.value(), names[iid])
        if variables_as_inputs:
            graph_inputs.append(value_info(names[iid], var.shape, var.dtype))
    for ins in program.instrs:
        if ins.op in ("input", "variable"):
            continue
        if ins.op == "constant":
            names[ins.id] = b.const(ins.attrs["value"], ins.dtype)
            continue
        node = Node(ins.op, [names[a] for a in ins.inputs], [by_id[a].shape for a in ins.inputs],
                    [by_id[a].dtype for a in ins.inputs], dict(ins.attrs), tuple(ins.shape), ins.dtype, ins.name)
        try:
            names[ins.id] = table[ins.op](b, node)
        except (KeyError, ValueError, NotImplementedError) as exc:
            where = f" (created at {ins.source})" if ins.source else ""
            raise OnnxExportError(f"cannot export {ins.op} %{ins.id}{where}: {exc}") from None
    roots = list(program.outputs) + [vid for _, vid in program.updates]
    labels = list(output_names or [])
    labels += [f"output{k}" for k in range(len(labels), len(program.outputs))]
    labels += [f"{var.name or 'variable'}.new" for var, _ in program.updates]
    graph_outputs = []
    for label, rid in zip(labels, roots):
        out = _unique(label, "output", taken)
        b.nodes.append(helper.make_node("Identity", [names[rid]], [out], name=b.fresh("n_out")))
        graph_outputs.append(value_info(out, by_id[rid].shape, by_id[rid].dtype))
    graph = helper.make_graph(b.nodes, graph_name, graph_inputs, graph_outputs, b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="rustyasg")
    model.ir_version = min(model.ir_version, 10)  # what current onnxruntime releases read
    return model


def register_translator(op: str, fn) -> None:
    """Register an ONNX translator in-process (plugins use the ``rustyasg_register_exporters`` hook)."""
    EXPORTERS.register(FORMAT, op, fn)
