"""Programs that keep their symbolic dimensions: the graph a function is, for every batch size.

:func:`~rustyasg.core.program.lower` specialises a graph for one input signature. Saved
programs, exporters and inference mode need the graph for *every* signature instead: the
same instruction list, but with shapes that may hold :class:`~rustyasg.core.shapes.Dim`
entries (``(Dim(x.0), 10)``). :func:`trace` builds such a program from a compiled
:class:`~rustyasg.core.function.Function` (or explicit inputs/outputs/updates),
:func:`optimise` runs the backend-independent passes on it (simplify, constant folding,
CSE, DCE) and :func:`to_graph` turns it back into symbolic tensors, checking every shape on
the way.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None, 3), name="x")
    >>> w = rg.variable(np.ones((3, 2), np.float32), name="w")
    >>> p = optimise(trace([x], [(x @ w) * 1.0]))
    >>> [i.op for i in p.instrs], p.by_id()[p.outputs[0]].shape
    (['input', 'variable', 'matmul'], (Dim(x.0), 2))
"""

from __future__ import annotations

import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .graph import Tensor, Variable, apply, constant, input as make_input, toposort
from .program import Instr, Program
from .registry import PASSES
from .shapes import Dim, format_shape, is_static


class SymbolicInstr(Instr):
    """An instruction whose shape may hold symbolic dims.

    Its ``size`` is ``sys.maxsize`` while the shape is symbolic, so size-bounded passes
    (constant folding) leave such instructions alone.
    """

    @property
    def size(self) -> int:
        if not is_static(self.shape):
            return sys.maxsize
        return int(np.prod(self.shape, dtype=np.int64))


def trace(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
          updates: Sequence[Tuple[Variable, Tensor]] = ()) -> Program:
    """The symbolic program of ``outputs`` (and variable ``updates``) as functions of ``inputs``."""
    roots = list(outputs) + [v for _, v in updates]
    input_ids = {t.id for t in inputs}
    instrs: List[Instr] = []
    variables: Dict[int, Variable] = {}
    for node in toposort(roots):
        if node.op == "input" and node.id not in input_ids:
            from .errors import GraphBuildError

            raise GraphBuildError("input", f"the graph needs input {node.name!r}, which is not among the "
                                  f"function's inputs", source=node.source)
        if isinstance(node, Variable):
            variables[node.id] = node
        instrs.append(SymbolicInstr(node.id, node.op, tuple(i.id for i in node.inputs), dict(node.attrs),
                                    tuple(node.shape), node.dtype, node.source, node.name))
    present = {i.id for i in instrs}
    for t in inputs:  # an input no output reads is still part of the call signature
        if t.id not in present:
            instrs.insert(0, SymbolicInstr(t.id, "input", (), {}, tuple(t.shape), t.dtype, t.source, t.name))
    return Program(instrs, [t.id for t in inputs], [t.id for t in outputs], variables,
                   [(var, value.id) for var, value in updates])


def trace_function(fn) -> Program:
    """The symbolic program of a compiled :class:`~rustyasg.core.function.Function`."""
    return trace(fn.inputs, fn.outputs, fn.updates)


def optimise(program: Program, extra: Sequence[Tuple[float, Callable]] = (), disabled: Sequence[str] = ()) -> Program:
    """Run the backend-independent passes (and ``extra`` ``(position, fn)`` passes) in order."""
    passes = [(p.position, p.name, p.fn) for p in PASSES.ordered(None) if p.name not in disabled]
    passes += [(pos, getattr(fn, "__name__", "extra"), fn) for pos, fn in extra]
    for _, _, fn in sorted(passes, key=lambda p: p[0]):
        program = fn(program)
    return program


def dim_names(program: Program) -> Dict[str, Tuple[int, int]]:
    """Each symbolic dim name -> ``(input instruction id, axis)`` where it is first bound."""
    by_id = program.by_id()
    names: Dict[str, Tuple[int, int]] = {}
    for iid in program.inputs:
        for axis, d in enumerate(by_id[iid].shape):
            if isinstance(d, Dim) and len(d.factors) == 1 and d.coef == 1 and d.factors[0][1] == 1:
                names.setdefault(d.factors[0][0], (iid, axis))
    return names


def to_graph(program: Program, variables: Optional[Dict[int, Variable]] = None, check_shapes: bool = True):
    """Symbolic tensors for ``program``: ``(inputs, outputs, updates)`` ready for ``rg.function``.

    ``variables`` maps a variable instruction id to the :class:`Variable` to use (default:
    the program's own). Each rebuilt node's shape and dtype is re-inferred by its op and,
    with ``check_shapes``, compared with the recorded one (a mismatch means the program
    was altered or was written by an incompatible op definition).
    """
    variables = dict(program.variables if variables is None else variables)
    nodes: Dict[int, Tensor] = {}
    for ins in program.instrs:
        if ins.op == "input":
            shape = tuple(_dim_name(d) for d in ins.shape)
            t = make_input(shape, ins.dtype, name=ins.name)
        elif ins.op == "variable":
            t = variables[ins.id]
        elif ins.op == "constant":
            t = constant(ins.attrs["value"], ins.dtype, name=ins.name)
        else:
            t = apply(ins.op, *(nodes[a] for a in ins.inputs), name=ins.name, **ins.attrs)
        if check_shapes and (tuple(t.shape) != tuple(ins.shape) or t.dtype != ins.dtype):
            from .errors import GraphBuildError

            raise GraphBuildError(ins.op, f"instruction %{ins.id} rebuilds as {t.describe()}, but the program "
                                  f"records {ins.dtype}{format_shape(ins.shape)}")
        nodes[ins.id] = t
    inputs = [nodes[i] for i in program.inputs]
    outputs = [nodes[i] for i in program.outputs]
    updates = [(variables[var.id] if var.id in variables else var, nodes[vid]) for var, vid in program.updates]
    return inputs, outputs, updates


def symbolic_inputs(example_inputs: Sequence, dynamic_batch: bool = True, names: Optional[Sequence[str]] = None,
                    batch: str = "batch") -> List[Tensor]:
    """``rg.input`` tensors shaped like ``example_inputs``, axis 0 a symbolic ``batch`` if ``dynamic_batch``.

    Example arrays give shapes and dtypes; ``rg.input`` tensors pass through unchanged (they
    choose their own symbolic dims).

    >>> import numpy as np
    >>> [t.shape for t in symbolic_inputs([np.zeros((2, 3), np.float32)])]
    [(Dim(batch), 3)]
    """
    out = []
    for k, ex in enumerate(example_inputs):
        if isinstance(ex, Tensor):
            if ex.op != "input":
                raise TypeError(f"example input {k} is a computed tensor; pass arrays or rg.input(...) tensors")
            out.append(ex)
            continue
        arr = np.asarray(ex)
        shape = ((batch,) + arr.shape[1:]) if dynamic_batch and arr.ndim else arr.shape
        out.append(make_input(shape, arr.dtype, name=names[k] if names else f"input{k}"))
    return out


def _dim_name(d):
    if isinstance(d, Dim):
        if len(d.factors) != 1 or d.coef != 1 or d.factors[0][1] != 1:
            raise ValueError(f"an input dimension must be an int or a plain name, got {d}")
        return d.factors[0][0]
    return int(d)
