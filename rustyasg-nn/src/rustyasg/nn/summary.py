"""``summary(model, input_shape)``: the layers of a model with their output shapes and parameter
counts (what ``torchinfo.summary`` prints for PyTorch).

The forward is traced once on symbolic inputs -- nothing is compiled or run -- and every module
call records its output shape; ``None`` in an input shape is a symbolic batch dimension.

Example:
    >>> import rustyasg.nn as nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    >>> print(summary(model, (None, 1, 28, 28)))
    Layer (type)    Output shape   Param #
    ======================================
    Sequential      (x.0, 10)      203,530
    ├─ 0: Flatten   (x.0, 784)     --
    ├─ 1: Linear    (x.0, 256)     200,960
    ├─ 2: ReLU      (x.0, 256)     --
    └─ 3: Linear    (x.0, 10)      2,570
    ======================================
    Total params: 203,530
    Buffers (running statistics): 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core.shapes import format_shape

from . import module as _module


@dataclass
class LayerRow:
    """One line of a summary: tree depth, dotted name, type, output shapes, parameters (own + children)."""

    depth: int
    name: str
    kind: str
    output_shapes: List[str] = field(default_factory=list)
    params: int = 0


@dataclass
class ModelSummary:
    """What :func:`summary` returns; ``str()`` is the table."""

    rows: List[LayerRow]
    total_params: int  # trainable scalars (tied weights once)
    buffer_elements: int  # non-trainable state: running statistics

    def __str__(self) -> str:
        cells = [("Layer (type)", "Output shape", "Param #")]
        open_levels: List[bool] = []  # per ancestor level: does it have siblings still to come?
        for i, r in enumerate(self.rows):
            if r.depth == 0:
                label = r.kind
            else:
                later = [x.depth for x in self.rows[i + 1:]]
                cut = next((k for k, d in enumerate(later) if d < r.depth), len(later))
                last = r.depth not in later[:cut]
                del open_levels[r.depth - 1:]
                bars = "".join("│  " if more else "   " for more in open_levels)
                label = bars + ("└─ " if last else "├─ ") + f"{r.name.rsplit('.', 1)[-1]}: {r.kind}"
                open_levels.append(not last)
            shapes = ", ".join(r.output_shapes) or "--"
            cells.append((label, shapes, f"{r.params:,}" if r.params else "--"))
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        line = "=" * (sum(widths) + 2 * 3)
        text = ["   ".join(c.ljust(w) for c, w in zip(cells[0], widths)).rstrip(), line]
        text += ["   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells[1:]]
        text += [line, f"Total params: {self.total_params:,}", f"Buffers (running statistics): {self.buffer_elements:,}"]
        return "\n".join(text)

    __repr__ = __str__


def _symbolic(inputs: Sequence[Any], dtype) -> List[rg.Tensor]:
    names = ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))]
    out = []
    for name, spec in zip(names, inputs):
        if isinstance(spec, rg.Tensor):
            out.append(spec)
        elif isinstance(spec, np.ndarray):
            out.append(rg.input(spec.shape, spec.dtype, name=name))
        elif isinstance(spec, (tuple, list)):
            out.append(rg.input(tuple(spec), dtype, name=name))
        else:
            raise TypeError(f"summary: give each input as a shape tuple, a numpy array or a symbolic tensor, "
                            f"got {type(spec).__name__}")
    return out


def _shape_text(out) -> List[str]:
    if isinstance(out, rg.Tensor):
        return [format_shape(out.shape)]
    if isinstance(out, (tuple, list)):
        return [s for o in out for s in _shape_text(o)]
    return []


def summary(model, *inputs, depth: int = 8, dtype="float32") -> ModelSummary:
    """Trace ``model`` on inputs of the given shapes and tabulate its layers (see the module docstring).

    ``inputs`` are shape tuples (``None`` for a symbolic dimension; ``dtype`` applies), numpy
    arrays (their shape and dtype) or symbolic tensors; with none, only the layers and
    parameter counts are listed. ``depth`` limits how deep the tree is shown.
    """
    recorded: Dict[int, List[str]] = {}

    def observe(mod, out) -> None:
        recorded.setdefault(id(mod), []).extend(s for s in _shape_text(out) if s not in recorded.get(id(mod), []))

    if inputs:
        _module._call_observers.append(observe)
        try:
            model(*_symbolic(inputs, dtype))
        finally:
            _module._call_observers.remove(observe)
            for m in model.modules():
                m.clear_updates()  # the trace's buffer updates belong to no step
    rows = []
    for name, mod in model.named_modules():
        level = 0 if not name else name.count(".") + 1
        if level > depth:
            continue
        count = sum(p.numel() for p in mod.parameters())
        rows.append(LayerRow(level, name, type(mod).__name__, recorded.get(id(mod), []), count))
    rows = _tree_order(rows)
    return ModelSummary(rows, sum(p.numel() for p in model.parameters()), sum(b.numel() for b in model.buffers()))


def _tree_order(rows: List[LayerRow]) -> List[LayerRow]:
    """Rows in depth-first order of their dotted names, children in registration order."""
    order: Dict[str, Tuple[int, ...]] = {}
    for i, r in enumerate(rows):
        parent = r.name.rsplit(".", 1)[0] if "." in r.name else ""
        order[r.name] = order.get(parent, ()) + (i,) if r.name else ()
    return sorted(rows, key=lambda r: order[r.name])


__all__ = ["summary", "ModelSummary", "LayerRow"]
