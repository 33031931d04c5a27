"""The graph builder handed to every op translator.

A translator is ``fn(b, node) -> output name``: ``node`` describes the RustyASG instruction
(its ONNX input names, their shapes and dtypes, the attributes, the result's shape and
dtype) and ``b`` (a :class:`GraphBuilder`) adds ONNX nodes and constants. Shapes may hold
symbolic dims: :meth:`GraphBuilder.shape` and :meth:`GraphBuilder.dim` compute them at run
time from the graph inputs that define them, so the exported model keeps its dynamic axes.

Example translator (``softsign(x) = x / (1 + |x|)``):
    >>> def softsign(b, node):
    ...     (x,) = node.inputs
    ...     return b.op("Div", x, b.op("Add", b.const(1.0, node.dtype), b.op("Abs", x)))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
from onnx import helper, numpy_helper

from rustyasg.core.shapes import Dim

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


@dataclass
class Node:
    """One RustyASG instruction as a translator sees it."""

    op: str
    inputs: List[str]                      # ONNX value names of the operands
    input_shapes: List[tuple]              # their shapes (ints and Dims)
    input_dtypes: List[np.dtype]
    attrs: Dict[str, Any]
    shape: tuple                           # the result's shape and dtype
    dtype: np.dtype
    name: Optional[str] = None

    @property
    def rank(self) -> int:
        return len(self.input_shapes[0])


def onnx_dtype(dtype) -> int:
    """The ONNX ``TensorProto`` element type of a numpy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class GraphBuilder:
    """Collects ONNX nodes, initializers and the symbolic-dim sources of one graph."""

    def __init__(self, opset: int, dim_sources: Dict[str, Tuple[str, int]]):
        self.opset = opset
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._dim_sources = dim_sources        # dim name -> (ONNX input name, axis)
        self._names = itertools.count()
        self._const_cache: Dict[Tuple, str] = {}
        self._dim_cache: Dict[Any, str] = {}
        self._shape_cache: Dict[str, str] = {}

    # -- names and nodes --------------------------------------------------------------------------
    def fresh(self, hint: str = "v") -> str:
        return f"{hint}_{next(self._names)}"

    def op(self, op_type: str, *inputs: Optional[str], outputs: int = 1, domain: str = "", **attrs) -> Union[str, List[str]]:
        """Add ``op_type(*inputs, **attrs)``; returns its output name (a list when ``outputs`` > 1).

        ``None`` among ``inputs`` is an omitted optional input.
        """
        outs = [self.fresh(op_type.lower()) for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, ["" if i is None else i for i in inputs], outs,
                                           name=self.fresh("n_" + op_type), domain=domain, **attrs))
        return outs[0] if outputs == 1 else outs

    # -- constants ------------------------------------------------------------------------------
    def initializer(self, array: np.ndarray, name: Optional[str] = None) -> str:
        """Add ``array`` as an initializer (weights, large constants) and return its name."""
        name = name or self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const(self, value, dtype=None) -> str:
        """A constant tensor (deduplicated for small values)."""
        arr = np.asarray(value, dtype=dtype)
        if arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key not in self._const_cache:
                self._const_cache[key] = self.initializer(arr)
            return self._const_cache[key]
        return self.initializer(arr)

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (axes, starts, pads ...)."""
        return self.const(np.asarray(list(values), np.int64).reshape(-1))

    # -- shapes with symbolic dims -------------------------------------------------------------------
    def _input_shape(self, name: str) -> str:
        if name not in self._shape_cache:
            self._shape_cache[name] = self.op("Shape", name)
        return self._shape_cache[name]

    def dim(self, d) -> str:
        """A 1-element int64 tensor holding dimension ``d`` (an int or a :class:`Dim`)."""
        if isinstance(d, (int, np.integer)):
            return self.ints([int(d)])
        key = (d.coef, d.factors)
        if key not in self._dim_cache:
            value = None
            for name, power in d.factors:
                if name not in self._dim_sources:
                    raise KeyError(f"symbolic dimension {name!r} is not the size of any input axis")
                src, axis = self._dim_sources[name]
                one = self.op("Gather", self._input_shape(src), self.ints([axis]), axis=0)
                for _ in range(power):
                    value = one if value is None else self.op("Mul", value, one)
            if d.coef != 1:
                value = self.op("Mul", value, self.ints([d.coef]))
            self._dim_cache[key] = value
        return self._dim_cache[key]

    def shape(self, shape: Sequence) -> str:
        """A 1-D int64 shape tensor for ``shape`` (computed at run time where dims are symbolic)."""
        if all(isinstance(d, (int, np.integer)) for d in shape):
            return self.ints([int(d) for d in shape])
        if len(shape) == 1:
            return self.dim(shape[0])
        return self.op("Concat", *[self.dim(d) for d in shape], axis=0)

    def numel(self, shape: Sequence) -> str:
        """The element count of ``shape`` as a 1-element int64 tensor."""
        static = int(np.prod([d for d in shape if isinstance(d, (int, np.integer))], dtype=np.int64))
        value = self.ints([static])
        for d in shape:
            if isinstance(d, Dim):
                value = self.op("Mul", value, self.dim(d))
        return value
