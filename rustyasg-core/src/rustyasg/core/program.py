"""The compiler's IR: a concrete, topologically ordered list of instructions.

A compiled function lowers its symbolic graph into a :class:`Program` for one
input signature: symbolic dimensions are bound to ints, every attribute is
made concrete, and shapes are re-inferred (so the program is fully static).
Passes rewrite programs; backends compile them.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input(("B", 3), name="x")
    >>> p = lower([x], [(x * 2.0).sum()], [], [((4, 3), rg.float32)])
    >>> [i.op for i in p.instrs]
    ['input', 'constant', 'mul', 'sum']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import GraphBuildError
from .graph import Tensor, Variable, toposort
from .registry import OPS, TensorType
from .shapes import bind_dims, format_shape, substitute


@dataclass
class Instr:
    """One node of a program: ``op(*inputs, **attrs)`` with a concrete shape and dtype."""

    id: int
    op: str
    inputs: Tuple[int, ...]
    attrs: Dict[str, Any]
    shape: Tuple[int, ...]
    dtype: np.dtype
    source: Optional[str] = None
    name: Optional[str] = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


@dataclass
class Program:
    """A static program: instructions, which are inputs, outputs, variables and updates.

    ``updates`` pairs a :class:`Variable` with the instruction id of its new value; all
    updates read the values from before the call (they are applied together at the end).
    ``plan`` is what a backend's planning pass decided (a :class:`~rustyasg.core.compile.Plan`:
    fused groups and their order), ``None`` until one ran. ``options``: what the compiled
    function asks of the whole-step passes (``precision``, ``loss_scale``, ``remat``), and
    ``report``: what those passes decided (see :mod:`rustyasg.core.compile.precision`).
    """

    instrs: List[Instr]
    inputs: List[int]
    outputs: List[int]
    variables: Dict[int, Variable] = field(default_factory=dict)
    updates: List[Tuple[Variable, int]] = field(default_factory=list)
    plan: Optional[Any] = None
    options: Dict[str, Any] = field(default_factory=dict)
    report: Dict[str, Any] = field(default_factory=dict)

    def by_id(self) -> Dict[int, Instr]:
        return {i.id: i for i in self.instrs}

    def users(self) -> Dict[int, List[int]]:
        out: Dict[int, List[int]] = {i.id: [] for i in self.instrs}
        for ins in self.instrs:
            for src in ins.inputs:
                out[src].append(ins.id)
        return out

    def roots(self) -> List[int]:
        """Instruction ids whose values leave the program (outputs and update values)."""
        return list(self.outputs) + [vid for _, vid in self.updates]

    def new_id(self) -> int:
        return max((i.id for i in self.instrs), default=-1) + 1

    def dump(self) -> str:
        """Human-readable listing, one instruction per line."""
        lines = []
        for i in self.instrs:
            args = ", ".join(f"%{a}" for a in i.inputs)
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in i.attrs.items())
            sep = ", " if args and attrs else ""
            label = f"  # {i.name}" if i.name else ""
            lines.append(f"%{i.id} = {i.op}({args}{sep}{attrs}) : {i.dtype}{format_shape(i.shape)}{label}")
        lines.append("outputs: " + ", ".join(f"%{o}" for o in self.outputs))
        for var, vid in self.updates:
            lines.append(f"update {var.name or 'var'} <- %{vid}")
        return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"array{v.shape}" if v.size > 4 else repr(v.tolist())
    return repr(v)


def lower(inputs: Sequence[Tensor], outputs: Sequence[Tensor], updates: Sequence[Tuple[Variable, Tensor]],
          signature: Sequence[Tuple[Tuple[int, ...], Any]]) -> Program:
    """Specialise the graph for concrete input ``signature`` ((shape, dtype) per input)."""
    bindings: Dict[str, int] = {}
    for t, (shape, dt) in zip(inputs, signature):
        try:
            bind_dims(t.shape, shape, bindings, f"input {t.name!r}")
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if np.dtype(dt) != t.dtype:
            raise TypeError(f"input {t.name!r}: expected dtype {t.dtype}, got {dt}")
    roots = list(outputs) + [v for _, v in updates]
    order = toposort(roots)
    input_ids = {t.id for t in inputs}
    instrs: List[Instr] = []
    variables: Dict[int, Variable] = {}
    types: Dict[int, TensorType] = {}
    for node in order:
        if node.op == "input":
            if node.id not in input_ids:
                raise GraphBuildError("input", f"the graph needs input {node.name!r}, which is not among the "
                                      f"function's inputs", source=node.source)
            shape = substitute(node.shape, bindings)
        elif isinstance(node, Variable):
            variables[node.id] = node
            shape = node.shape
        elif node.op == "constant":
            shape = node.shape
        else:
            attrs = substitute(node.attrs, bindings) if _has_dims(node.attrs) else node.attrs
            try:
                inferred = OPS[node.op].infer([types[i.id] for i in node.inputs], **attrs)
            except (ValueError, TypeError, KeyError) as exc:
                raise GraphBuildError(node.op, f"with concrete shapes: {exc}",
                                      [f"{types[i.id].dtype}{format_shape(types[i.id].shape)}" for i in node.inputs],
                                      node.source) from None
            instrs.append(Instr(node.id, node.op, tuple(i.id for i in node.inputs), dict(attrs),
                                tuple(int(d) for d in inferred.shape), np.dtype(inferred.dtype), node.source, node.name))
            types[node.id] = TensorType(instrs[-1].shape, instrs[-1].dtype)
            continue
        instrs.append(Instr(node.id, node.op, (), dict(node.attrs), tuple(int(d) for d in shape), node.dtype,
                            node.source, node.name))
        types[node.id] = TensorType(instrs[-1].shape, node.dtype)
    for var, value in updates:
        if tuple(types[value.id].shape) != tuple(var.shape) or value.dtype != var.dtype:
            raise GraphBuildError("update", f"new value {value.dtype}{format_shape(types[value.id].shape)} does not "
                                  f"match variable {var.name!r} {var.describe()}", source=value.source)
    return Program(instrs, [t.id for t in inputs], [t.id for t in outputs], variables,
                   [(var, value.id) for var, value in updates])


def _has_dims(attrs: Mapping[str, Any]) -> bool:
    from .shapes import Dim

    def walk(v: Any) -> bool:
        if isinstance(v, Dim):
            return True
        if isinstance(v, (tuple, list)):
            return any(walk(x) for x in v)
        return False

    return any(walk(v) for v in attrs.values())
