"""What the viewer shows: a compiled function's graphs as plain, serialisable data.

:func:`build_graphs` turns a :class:`~rustyasg.core.Function` (a training step, an eval
step, any compiled function) into up to three :class:`VizGraph` objects:

- ``forward``: the nodes the outputs depend on that neither are nor follow gradient nodes (the loss);
- ``gradient``: the nodes :func:`rustyasg.core.grad` emitted, plus the forward values they
  read (kind ``forward-input``), each gradient node naming the forward node it differentiates;
- ``step``: the optimised program one signature compiles to (after every pass), with fused
  groups as layers of their own (``.../fused.3``) and the memory each value takes.

Every node carries its op, attributes, shapes and dtypes, the user's ``file:line``, its
module path (the layer it is drawn in), and for variables the ``state_dict`` name.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None, 3), name="x")
    >>> w = rg.variable(np.ones((3, 1), np.float32), name="w")
    >>> loss = rg.mean((x @ w) ** 2)
    >>> (gw,) = rg.grad(loss, [w])
    >>> step = rg.function([x], loss, updates={w: w - 0.1 * gw}, backend="reference")
    >>> g = build_graphs(step)
    >>> [k for k in g], len(g["forward"].nodes) > 0
    (['forward', 'gradient'], True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from rustyasg.core.graph import Tensor, Variable, toposort
from rustyasg.core.shapes import format_shape

LEAVES = ("input", "variable", "constant")


@dataclass
class VizNode:
    """One node: ``id`` is the graph node id (equal to the program instruction id)."""

    id: str
    op: str
    label: str
    namespace: str = ""
    inputs: List[str] = field(default_factory=list)
    shape: str = ""
    dtype: str = ""
    nbytes: int = 0
    kind: str = "forward"          # forward | gradient | forward-input | update | leaf
    attrs: Dict[str, str] = field(default_factory=dict)


@dataclass
class VizGraph:
    id: str
    nodes: List[VizNode] = field(default_factory=list)

    def by_id(self) -> Dict[str, VizNode]:
        return {n.id: n for n in self.nodes}

    def edges(self) -> List[tuple]:
        """``(source id, target id)`` for every input of every node."""
        return [(src, n.id) for n in self.nodes for src in n.inputs]

    def to_dict(self) -> dict:
        return {"id": self.id, "nodes": [asdict(n) for n in self.nodes]}

    @staticmethod
    def from_dict(data: Mapping) -> "VizGraph":
        return VizGraph(data["id"], [VizNode(**n) for n in data["nodes"]])


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return repr(value.tolist())
        return f"array{value.shape} {value.dtype}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def variable_names(model=None, optimizer=None) -> Dict[int, str]:
    """Variable node id -> ``state_dict`` name (model parameters and buffers, optimizer state)."""
    names: Dict[int, str] = {}
    if model is not None and hasattr(model, "named_modules"):
        for prefix, mod in model.named_modules():
            for table in ("_parameters", "_buffers"):
                for k, v in getattr(mod, table, {}).items():
                    if isinstance(v, Variable):
                        names.setdefault(v.id, f"{prefix}.{k}" if prefix else k)
    if optimizer is not None:
        params = [p for g in getattr(optimizer, "param_groups", []) for p in g["params"]]
        for index, slots in getattr(optimizer, "state", {}).items():
            param = params[index] if isinstance(index, int) and index < len(params) else None
            pname = names.get(param.id, param.name) if param is not None else f"param{index}"
            for slot, var in slots.items():
                if isinstance(var, Variable):
                    names.setdefault(var.id, f"optimizer.{pname}.{slot}")
    return names


def _scope_path(t: Tensor) -> str:
    return t.scope.path if t.scope is not None else ""


def _tensor_node(t: Tensor, kind: str, names: Mapping[int, str], by_id: Mapping[int, Tensor]) -> VizNode:
    shape = tuple(t.shape)
    size = int(np.prod([d for d in shape if isinstance(d, int)], dtype=np.int64)) if shape else 1
    concrete = all(isinstance(d, int) for d in shape)
    attrs = {"op": t.op}
    for k, v in (t.attrs or {}).items():
        attrs[f"attr.{k}"] = _short(v)
    attrs["inputs"] = ", ".join(f"%{i.id}: {i.describe()}" for i in t.inputs) or "-"
    attrs["output"] = t.describe()
    attrs["source"] = t.source or "-"
    path = _scope_path(t)
    attrs["module"] = path or "(top level)"
    label = t.op
    if isinstance(t, Variable):
        state_name = names.get(t.id)
        attrs["state_dict name"] = state_name or (t.name or "-")
        attrs["trainable"] = str(t.trainable)
        label = state_name or t.name or "variable"
    elif t.op == "input":
        label = f"input {t.name}"
    elif t.name:
        attrs["name"] = t.name
    if t.scope is not None and t.scope.grad_of is not None:
        fwd = by_id.get(t.scope.grad_of)
        attrs["gradient of"] = f"%{t.scope.grad_of} {fwd.op if fwd is not None else ''}".strip()
    namespace = path.strip("/")
    if kind == "gradient":
        namespace = "/".join(p for p in ("grad", namespace) if p)
    return VizNode(str(t.id), t.op, label, namespace, [str(i.id) for i in t.inputs], format_shape(shape),
                   str(t.dtype), size * t.dtype.itemsize if concrete else 0, kind, attrs)


def _is_grad(t: Tensor) -> bool:
    return t.scope is not None and t.scope.grad_of is not None


def forward_graph(function, names: Mapping[int, str]) -> VizGraph:
    """The nodes the outputs depend on that neither are gradient nodes nor depend on one
    (a training step's loss and everything it is computed from)."""
    order = _pure_forward(function)
    by_id = {t.id: t for t in order}
    keep = set(by_id)
    nodes = []
    for t in order:
        n = _tensor_node(t, "leaf" if t.op in LEAVES else "forward", names, by_id)
        n.inputs = [i for i in n.inputs if int(i) in keep]
        nodes.append(n)
    return VizGraph("forward", nodes)


def _pure_forward(function) -> List[Tensor]:
    """Ancestors of the differentiated losses (the inputs of ``grad``'s seeds), or of the
    outputs when nothing was differentiated."""
    everything = toposort(list(function.outputs) + [v for _, v in function.updates])
    losses = [i for t in everything if _is_grad(t) for i in t.inputs
              if i.op == "ones_like" and not _is_grad(i) and i.shape == () for i in i.inputs]
    if not losses:
        return toposort(function.outputs)
    return toposort(losses)


def loss_of(function) -> Tensor:
    """The differentiated loss of a training step (its first output when nothing was differentiated)."""
    everything = toposort(list(function.outputs) + [v for _, v in function.updates])
    for t in everything:
        if t.op == "ones_like" and t.shape == () and not _is_grad(t) and t.inputs:
            return t.inputs[0]
    return function.outputs[0]


def gradient_graph(function, names: Mapping[int, str]) -> Optional[VizGraph]:
    """Gradient nodes reachable from the outputs and updates, and the forward values they read."""
    roots = list(function.outputs) + [v for _, v in function.updates]
    order = toposort(roots)
    by_id = {t.id: t for t in order}
    grads = [t for t in order if _is_grad(t)]
    if not grads:
        return None
    gset = {t.id for t in grads}
    boundary = []
    seen = set()
    for t in grads:
        for i in t.inputs:
            if i.id not in gset and i.id not in seen:
                seen.add(i.id)
                boundary.append(i)
    nodes = [_tensor_node(b, "forward-input", names, by_id) for b in boundary]
    for n in nodes:
        n.inputs = []
        n.namespace = ""
    nodes += [_tensor_node(t, "gradient", names, by_id) for t in grads]
    return VizGraph("gradient", nodes)


def step_graph(function, args: Sequence, names: Mapping[int, str], graph_id: str = "step") -> VizGraph:
    """The optimised program for ``args``'s signature, fused groups as layers."""
    program = function.lower(*args)
    try:
        slots = function.backend.memory_slots(function.compile(*args))
    except Exception as exc:  # a backend that cannot compile here still gets its graph shown
        slots = {}
        program.__dict__["_viz_compile_error"] = f"{type(exc).__name__}: {exc}"
    roots = list(function.outputs) + [v for _, v in function.updates]
    tensors = {t.id: t for t in toposort(roots)}
    groups = _groups(program)
    group_paths: Dict[int, List[str]] = {}
    for iid, (gid, _) in groups.items():
        t = tensors.get(iid)
        group_paths.setdefault(gid, []).append(_scope_path(t) if t is not None else "")
    group_ns = {gid: common_module_path(paths) for gid, paths in group_paths.items()}
    outputs = set(program.outputs)
    updated = {vid: var for var, vid in program.updates}
    nodes = []
    for ins in program.instrs:
        t = tensors.get(ins.id)
        path = _scope_path(t) if t is not None else ""
        kind = "leaf" if ins.op in LEAVES else ("gradient" if t is not None and _is_grad(t) else "forward")
        if kind == "forward" and t is not None and ins.id not in outputs and _only_for_updates(t, function):
            kind = "update"
        attrs = {"op": ins.op}
        for k, v in ins.attrs.items():
            attrs[f"attr.{k}"] = _short(v)
        attrs["output"] = f"{ins.dtype}{format_shape(ins.shape)}"
        attrs["bytes"] = str(ins.nbytes)
        attrs["source"] = ins.source or "-"
        attrs["module"] = path or "(top level)"
        label = ins.op
        if ins.op == "variable":
            var = program.variables.get(ins.id)
            label = names.get(ins.id) or (var.name if var is not None else None) or "variable"
            attrs["state_dict name"] = label
        elif ins.op == "input":
            label = f"input {ins.name}"
        if ins.id in slots:
            attrs["memory slot"] = slots[ins.id]
        if ins.id in updated:
            attrs["updates"] = names.get(updated[ins.id].id) or updated[ins.id].name or "variable"
        if t is not None and _is_grad(t):
            attrs["gradient of"] = f"%{t.scope.grad_of}"
        g = groups.get(ins.id)
        namespace = path.strip("/")
        if kind == "gradient":
            namespace = "/".join(p for p in ("grad", namespace) if p)
        elif kind == "update":
            namespace = "update"
        if g is not None:
            gid, materialized = g
            attrs["fused group"] = f"fused.{gid}"
            attrs["materialized"] = "yes" if materialized else "no (stays in registers)"
            namespace = "/".join(p for p in (group_ns[gid], f"fused.{gid}") if p)
        nodes.append(VizNode(str(ins.id), ins.op, label, namespace, [str(i) for i in ins.inputs],
                             format_shape(ins.shape), str(ins.dtype), ins.nbytes, kind, attrs))
    return VizGraph(graph_id, nodes)


def common_module_path(paths: Sequence[str]) -> str:
    """The longest shared leading components of ``/``-separated module paths.

    >>> common_module_path(["encoder/layers.0/attn", "encoder/layers.0/mlp"])
    'encoder/layers.0'
    """
    split = [p.strip("/").split("/") if p else [] for p in paths]
    common = []
    for parts in zip(*split):
        if any(x != parts[0] for x in parts):
            break
        common.append(parts[0])
    return "/".join(common)


def _only_for_updates(t: Tensor, function) -> bool:
    cache = function.__dict__.setdefault("_viz_output_ancestors", None)
    if cache is None:
        cache = {n.id for n in toposort(function.outputs)}
        function.__dict__["_viz_output_ancestors"] = cache
    return t.id not in cache


def _groups(program) -> Dict[int, tuple]:
    """Instruction id -> (group number, materialized) for members of fused groups."""
    plan = getattr(program, "plan", None)  # None: a backend that plans no units (the reference)
    out = {}
    for k, u in enumerate(plan.groups if plan is not None else ()):
        w = set(u.writes)
        for m in u.members:
            out[m] = (k, m in w)
    return out


def build_graphs(function, args: Optional[Sequence] = None, model=None, optimizer=None) -> Dict[str, VizGraph]:
    """``{"forward": ..., "gradient": ..., "step": ...}`` for ``function`` (see the module docstring).

    ``args`` (example arguments) adds the compiled ``step`` graph; ``model`` / ``optimizer``
    name variables by their ``state_dict`` keys.
    """
    names = variable_names(model, optimizer)
    out = {"forward": forward_graph(function, names)}
    grad = gradient_graph(function, names)
    if grad is not None:
        out["gradient"] = grad
    if args is not None:
        _concrete_shapes(function, args, out.values())
        out["step"] = step_graph(function, args, names)
    _mark_roles(function, out, names)
    return out


def gradient_node_of(function, var) -> Optional[int]:
    """Id of the gradient node that flows into ``var``'s update (the last one its update reads)."""
    for v, value in function.updates:
        if v is var:
            grads = [t for t in toposort([value]) if _is_grad(t)]
            return grads[-1].id if grads else None
    return None


def _mark_roles(function, graphs: Dict[str, VizGraph], names: Mapping[int, str]) -> None:
    """``role: loss`` on the loss, ``gradient for: <name>`` on each parameter's gradient (what the
    viewer's path-highlight provider starts from)."""
    loss = str(loss_of(function).id)
    for g in graphs.values():
        node = g.by_id().get(loss)
        if node is not None:
            node.attrs["role"] = "loss"
    grad = graphs.get("gradient")
    if grad is None:
        return
    by_id = grad.by_id()
    for var, _ in function.updates:
        gid = gradient_node_of(function, var)
        if gid is not None and str(gid) in by_id:
            by_id[str(gid)].attrs["gradient for"] = names.get(var.id) or var.name or f"%{var.id}"


def _concrete_shapes(function, args, graphs) -> None:
    """Give symbolic nodes the shapes and sizes they take for ``args`` (the program before passes)."""
    from rustyasg.core.program import lower

    arrays = function._convert(args)
    program = lower(function.inputs, function.outputs, function.updates, [(a.shape, a.dtype) for a in arrays])
    by_id = {str(i.id): i for i in program.instrs}
    for g in graphs:
        for n in g.nodes:
            ins = by_id.get(n.id)
            if ins is not None:
                n.attrs["symbolic shape"] = n.shape
                n.shape, n.nbytes = format_shape(ins.shape), ins.nbytes
                n.attrs["output"] = f"{ins.dtype}{format_shape(ins.shape)}"
