"""Symbolic tensors: the nodes of the Abstract Semantic Graph.

Every :class:`Tensor` is the single output of one op applied to input tensors
with attributes. Shapes and dtypes are inferred when the node is created, so a
mistake raises at once with the op, the operand shapes and the user's file:line.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((None, 3), rg.float32, name="x")
    >>> y = (x * 2.0).sum(axis=1)
    >>> y.shape, y.dtype
    ((Dim(x.0),), dtype('float32'))
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import dtypes
from .errors import AttributeSchemaError, DTypeError, GraphBuildError, IndexingError, ShapeError
from .registry import OPS, TensorType
from .shapes import ANONYMOUS_DIMS, Dim, format_shape, normalize_shape
from .naming import current as current_scope
from .source import user_location

_ids = itertools.count()


class Tensor:
    """A symbolic tensor: the output of ``op(*inputs, **attrs)``.

    Supports numpy-style operators, methods (``sum``, ``reshape``, ``T``, indexing ...)
    and broadcasting. Values exist only when a compiled function runs.
    """

    __slots__ = ("id", "op", "inputs", "attrs", "shape", "dtype", "name", "source", "scope", "__weakref__")
    __array_priority__ = 1000  # numpy scalars/arrays defer to our operators

    def __init__(self, op: str, inputs: Tuple["Tensor", ...], attrs: Mapping[str, Any],
                 shape: tuple, dtype: np.dtype, name: Optional[str] = None, source: Optional[str] = None):
        self.id = next(_ids)
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        self.name = name
        self.source = source
        self.scope = current_scope()  # module path / gradient origin (see naming.py)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def type(self) -> TensorType:
        return TensorType(self.shape, self.dtype)

    def describe(self) -> str:
        """``float32(B, 3)`` style text used in error messages."""
        return f"{self.dtype}{format_shape(self.shape)}"

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"<Tensor{label} {self.op} {self.describe()}>"

    def __bool__(self):
        raise TypeError("a symbolic Tensor has no truth value while the graph is built; "
                        "use rustyasg.core.where(...) for data-dependent choices")

    def __hash__(self):
        return self.id

    def __iter__(self):
        raise TypeError("a symbolic Tensor is not iterable; index it or use split/unstack")

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        if not isinstance(self.shape[0], int):
            raise TypeError(f"len() of a tensor whose first dimension {self.shape[0]} is symbolic")
        return self.shape[0]

    if TYPE_CHECKING:
        # Operators and methods are attached at import time by tensor_api.py (the op set) and
        # realize.py (values on demand), so that this module does not depend on the ops; they
        # are declared here for type checkers and IDEs (tests/core/test_tensor_methods.py
        # checks that the declarations and the attached set agree).
        def __add__(self, other: TensorLike) -> Tensor: ...
        def __radd__(self, other: TensorLike) -> Tensor: ...
        def __sub__(self, other: TensorLike) -> Tensor: ...
        def __rsub__(self, other: TensorLike) -> Tensor: ...
        def __mul__(self, other: TensorLike) -> Tensor: ...
        def __rmul__(self, other: TensorLike) -> Tensor: ...
        def __truediv__(self, other: TensorLike) -> Tensor: ...
        def __rtruediv__(self, other: TensorLike) -> Tensor: ...
        def __floordiv__(self, other: TensorLike) -> Tensor: ...
        def __rfloordiv__(self, other: TensorLike) -> Tensor: ...
        def __mod__(self, other: TensorLike) -> Tensor: ...
        def __rmod__(self, other: TensorLike) -> Tensor: ...
        def __pow__(self, other: TensorLike) -> Tensor: ...
        def __rpow__(self, other: TensorLike) -> Tensor: ...
        def __matmul__(self, other: TensorLike) -> Tensor: ...
        def __rmatmul__(self, other: TensorLike) -> Tensor: ...
        def __lt__(self, other: TensorLike) -> Tensor: ...
        def __le__(self, other: TensorLike) -> Tensor: ...
        def __gt__(self, other: TensorLike) -> Tensor: ...
        def __ge__(self, other: TensorLike) -> Tensor: ...
        def __and__(self, other: TensorLike) -> Tensor: ...
        def __or__(self, other: TensorLike) -> Tensor: ...
        def __eq__(self, other: TensorLike) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, other: TensorLike) -> Tensor: ...  # type: ignore[override]
        def __invert__(self) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __pos__(self) -> Tensor: ...
        def __abs__(self) -> Tensor: ...
        def __getitem__(self, key: Any) -> Tensor: ...
        def sum(self, axis: Axes = None, keepdims: bool = False) -> Tensor: ...
        def mean(self, axis: Axes = None, keepdims: bool = False) -> Tensor: ...
        def max(self, axis: Axes = None, keepdims: bool = False) -> Tensor: ...
        def min(self, axis: Axes = None, keepdims: bool = False) -> Tensor: ...
        def prod(self, axis: Axes = None, keepdims: bool = False) -> Tensor: ...
        def logsumexp(self, axis: Axes = None, keepdims: bool = False) -> Tensor: ...
        def var(self, axis: Axes = None, keepdims: bool = False, correction: int = 1) -> Tensor: ...
        def std(self, axis: Axes = None, keepdims: bool = False, correction: int = 1) -> Tensor: ...
        def argmax(self, axis: Optional[int] = None, keepdims: bool = False) -> Tensor: ...
        def argmin(self, axis: Optional[int] = None, keepdims: bool = False) -> Tensor: ...
        def reshape(self, *shape: Any) -> Tensor: ...
        def view(self, *shape: Any) -> Tensor: ...
        def transpose(self, *axes: Any) -> Tensor: ...
        def permute(self, *axes: Any) -> Tensor: ...
        def swapaxes(self, a: int, b: int) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...
        @property
        def mT(self) -> Tensor: ...
        def astype(self, dtype: Any) -> Tensor: ...
        def cast(self, dtype: Any) -> Tensor: ...
        def squeeze(self, axis: Axes = None) -> Tensor: ...
        def unsqueeze(self, axis: int) -> Tensor: ...
        def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor: ...
        def expand(self, *shape: Any) -> Tensor: ...
        def broadcast_to(self, shape: Sequence[Any]) -> Tensor: ...
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def sqrt(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def relu(self) -> Tensor: ...
        def abs(self) -> Tensor: ...
        def sin(self) -> Tensor: ...
        def cos(self) -> Tensor: ...
        def square(self) -> Tensor: ...
        def clamp(self, min: Optional[TensorLike] = None, max: Optional[TensorLike] = None) -> Tensor: ...
        def softmax(self, axis: int = -1) -> Tensor: ...
        def log_softmax(self, axis: int = -1) -> Tensor: ...
        def matmul(self, other: TensorLike) -> Tensor: ...
        # math, bitwise, reductions, scans and sorting (tensor_api: the core functions, tensor first)
        def tan(self) -> Tensor: ...
        def asin(self) -> Tensor: ...
        def acos(self) -> Tensor: ...
        def atan(self) -> Tensor: ...
        def sinh(self) -> Tensor: ...
        def cosh(self) -> Tensor: ...
        def asinh(self) -> Tensor: ...
        def acosh(self) -> Tensor: ...
        def atanh(self) -> Tensor: ...
        def log2(self) -> Tensor: ...
        def log10(self) -> Tensor: ...
        def log1p(self) -> Tensor: ...
        def expm1(self) -> Tensor: ...
        def exp2(self) -> Tensor: ...
        def trunc(self) -> Tensor: ...
        def frac(self) -> Tensor: ...
        def isinf(self) -> Tensor: ...
        def isfinite(self) -> Tensor: ...
        def isnan(self) -> Tensor: ...
        def reciprocal(self) -> Tensor: ...
        def rsqrt(self) -> Tensor: ...
        def floor(self) -> Tensor: ...
        def ceil(self) -> Tensor: ...
        def sign(self) -> Tensor: ...
        def erf(self) -> Tensor: ...
        def atan2(self, other: TensorLike) -> Tensor: ...
        def hypot(self, other: TensorLike) -> Tensor: ...
        def copysign(self, other: TensorLike) -> Tensor: ...
        def fmod(self, other: TensorLike) -> Tensor: ...
        def logaddexp(self, other: TensorLike) -> Tensor: ...
        def remainder(self, other: TensorLike) -> Tensor: ...
        def __rand__(self, other: TensorLike) -> Tensor: ...
        def __ror__(self, other: TensorLike) -> Tensor: ...
        def __xor__(self, other: TensorLike) -> Tensor: ...
        def __rxor__(self, other: TensorLike) -> Tensor: ...
        def __lshift__(self, other: TensorLike) -> Tensor: ...
        def __rlshift__(self, other: TensorLike) -> Tensor: ...
        def __rshift__(self, other: TensorLike) -> Tensor: ...
        def __rrshift__(self, other: TensorLike) -> Tensor: ...
        def div(self, other: TensorLike, rounding_mode: Optional[str] = None) -> Tensor: ...
        def lerp(self, end: TensorLike, weight: TensorLike) -> Tensor: ...
        def isclose(self, other: TensorLike, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor: ...
        def nan_to_num(self, nan: float = 0.0, posinf: Optional[float] = None, neginf: Optional[float] = None) -> Tensor: ...
        def round(self, decimals: int = 0) -> Tensor: ...
        def any(self, dim: Axes = None, keepdim: bool = False) -> Tensor: ...
        def all(self, dim: Axes = None, keepdim: bool = False) -> Tensor: ...
        def count_nonzero(self, dim: Axes = None) -> Tensor: ...
        def amax(self, dim: Axes = None, keepdim: bool = False) -> Tensor: ...
        def amin(self, dim: Axes = None, keepdim: bool = False) -> Tensor: ...
        def cumsum(self, dim: int, dtype: Any = None) -> Tensor: ...
        def cumprod(self, dim: int, dtype: Any = None) -> Tensor: ...
        def logcumsumexp(self, dim: int) -> Tensor: ...
        def cummax(self, dim: int) -> Tuple[Tensor, Tensor]: ...
        def cummin(self, dim: int) -> Tuple[Tensor, Tensor]: ...
        def sort(self, dim: int = -1, descending: bool = False, stable: bool = True) -> Tuple[Tensor, Tensor]: ...
        def argsort(self, dim: int = -1, descending: bool = False, stable: bool = True) -> Tensor: ...
        def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Tuple[Tensor, Tensor]: ...
        def median(self, dim: Optional[int] = None, keepdim: bool = False) -> Any: ...
        def norm(self, p: Any = 'fro', dim: Axes = None, keepdim: bool = False) -> Tensor: ...
        def tril(self, diagonal: int = 0) -> Tensor: ...
        def triu(self, diagonal: int = 0) -> Tensor: ...
        def numpy(self) -> np.ndarray: ...
        def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray: ...
        def item(self) -> Any: ...
        def tolist(self) -> Any: ...
        def __float__(self) -> float: ...
        def __int__(self) -> int: ...
        def __format__(self, spec: str) -> str: ...
        def numel(self) -> int: ...


#: What an operator accepts next to a tensor: another tensor, a Python or numpy scalar, an array.
TensorLike = Union[Tensor, float, int, bool, np.ndarray, np.generic]
#: An axis argument: one axis, several, or all (``None``).
Axes = Union[int, Sequence[int], None]


class Variable(Tensor):
    """Persistent state held by a backend between calls: parameters, optimizer moments, RNG state.

    A compiled function reads variables and updates them in place through its
    ``updates``. ``value()`` reads the current value back from wherever it lives.

    >>> import rustyasg.core as rg
    >>> w = rg.variable(np.ones((2, 2), np.float32), name="w")
    >>> float(w.value().sum())
    4.0
    """

    __slots__ = ("_host", "trainable", "_owner", "_version")

    def __init__(self, value: np.ndarray, name: Optional[str], trainable: bool, source: Optional[str]):
        value = np.asarray(value, order="C")
        super().__init__("variable", (), {}, tuple(value.shape), dtypes.as_dtype(value.dtype), name, source)
        self._host: Optional[np.ndarray] = value
        self.trainable = trainable
        self._owner: Any = None  # backend holding the authoritative copy, if any
        self._version = 0

    def value(self) -> np.ndarray:
        """The current value as a numpy array (a copy read back from the owning backend)."""
        if self._owner is not None:
            self._host = self._owner.read_variable(self)
            self._owner = None
        return self._host.copy()

    numpy = value

    def assign(self, value) -> None:
        """Replace the value from the host; shape and dtype must not change."""
        value = np.asarray(value)
        if tuple(value.shape) != self.shape:
            raise ValueError(f"variable {self.name!r}: cannot assign shape {value.shape} to {format_shape(self.shape)}")
        self._host = np.array(value, dtype=self.dtype, order="C", copy=True)
        self._owner = None
        self._version += 1


def _location() -> Optional[str]:
    return user_location()


def _leaf_error(op: str, exc: Exception) -> GraphBuildError:
    """A value that cannot become a tensor (ragged lists, strings, out-of-range ints) as a build error."""
    cls = ShapeError if isinstance(exc, ValueError) and not isinstance(exc, OverflowError) else DTypeError
    error = cls(op, f"the value cannot be a tensor: {exc}", source=_location())
    error.original = exc
    return error


def _constant_dtype(value) -> np.dtype:
    arr = np.asarray(value)
    if arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        return dtypes.DEFAULT_FLOAT  # Python floats become float32 tensors
    if arr.dtype.kind in "iu" and not isinstance(value, np.ndarray):
        return dtypes.DEFAULT_INT
    return dtypes.as_dtype(arr.dtype)


def constant(value, dtype=None, name: Optional[str] = None) -> Tensor:
    """A constant tensor baked into the graph (use inputs for values that change per call).

    >>> constant([1.0, 2.0]).describe()
    'float32(2,)'
    """
    try:
        dt = dtypes.as_dtype(dtype) if dtype is not None else _constant_dtype(value)
        arr = np.array(value, dtype=dt, order="C")
    except (TypeError, ValueError, OverflowError) as exc:
        raise _leaf_error("constant", exc) from None
    arr.setflags(write=False)
    return Tensor("constant", (), {"value": arr}, tuple(arr.shape), dt, name, _location())


def input(shape=(), dtype="float32", name: Optional[str] = None) -> Tensor:  # noqa: A001 - mirrors placeholders
    """A value supplied at each call of a compiled function.

    ``None`` or a string in ``shape`` makes a symbolic dimension; ``None`` gets a
    fresh name ``<name>.<axis>``, equal strings share one size.

    >>> x = input((None, 784), "float32", name="x")
    >>> x.shape
    (Dim(x.0), 784)
    """
    if isinstance(shape, (int, str)) or shape is None:
        shape = (shape,)
    base = name or f"in{next(_ids)}"
    try:
        dtype = dtypes.as_dtype(dtype)
        normalize_shape(tuple(0 if d is None else d for d in shape))
    except (TypeError, ValueError) as exc:
        raise (DTypeError if isinstance(exc, TypeError) else ShapeError)(
            "input", f"{exc} (name {name!r})", source=_location()) from None
    shape = tuple(f"{base}.{i}" if d is None else d for i, d in enumerate(shape))
    ANONYMOUS_DIMS.update(f"{base}.{i}" for i, d in enumerate(shape) if d == f"{base}.{i}")
    return Tensor("input", (), {}, normalize_shape(shape), dtypes.as_dtype(dtype), name or base, _location())


def variable(value, name: Optional[str] = None, dtype=None, trainable: bool = True) -> Variable:
    """A persistent variable initialised from ``value``.

    >>> v = variable(np.zeros(3), dtype="float32", name="bias")
    >>> v.describe()
    'float32(3,)'
    """
    try:
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(dtypes.as_dtype(dtype))
        elif not isinstance(value, np.ndarray):
            arr = arr.astype(_constant_dtype(value))
        dtypes.as_dtype(arr.dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _leaf_error("variable", exc) from None
    return Variable(arr, name, trainable, _location())


def as_tensor(value, like: Optional[Tensor] = None) -> Tensor:
    """Wrap Python/numpy values as constants; tensors pass through."""
    if isinstance(value, Tensor):
        return value
    if like is not None and np.ndim(value) == 0:
        return constant(value, dtypes.result_type_with_scalar(like.dtype, value)
                        if not isinstance(value, np.ndarray) else None)
    return constant(value)


def _error_class(exc: Exception):
    if isinstance(exc, IndexError):
        return IndexingError
    if isinstance(exc, TypeError):
        return DTypeError
    if isinstance(exc, KeyError):
        return AttributeSchemaError
    return ShapeError


def apply(op: str, *inputs, name: Optional[str] = None, **attrs) -> Tensor:
    """Create the node ``op(*inputs, **attrs)``, checking shapes, dtypes and attributes.

    This is how every op function is built; plugins can call it for their own ops.

    >>> x = input((2, 3), name="x")
    >>> apply("exp", x).shape
    (2, 3)
    """
    opdef = OPS.get(op)
    if opdef is None:
        raise GraphBuildError(op, "no such op is registered (is the plugin that provides it installed?)",
                              source=_location())
    if opdef.num_inputs is not None and len(inputs) != opdef.num_inputs:
        raise GraphBuildError(op, f"takes {opdef.num_inputs} input(s), got {len(inputs)}", source=_location())
    try:
        tensors = _coerce_inputs(inputs, opdef.promote)
    except (OverflowError, ValueError, TypeError) as exc:
        reason = getattr(exc, "original", exc)
        advice = ("; for a Python int that does not fit the other operand's dtype, cast that tensor first "
                  "(x.astype('int64') or 'float32')" if isinstance(reason, OverflowError) else "")
        raise DTypeError(op, f"an operand cannot be a tensor: {reason}{advice}",
                         [t.describe() if isinstance(t, Tensor) else repr(t) for t in inputs], _location()) from None
    if opdef.promote and len(tensors) > 1:
        try:
            tensors = _promote(tensors)
        except TypeError as exc:  # dtypes with no common type (uint64 with int64)
            raise DTypeError(op, str(exc), [t.describe() for t in tensors], _location()) from None
    try:
        full = opdef.check_attrs(attrs)
        ttype = opdef.infer([t.type for t in tensors], **full)
        if opdef.check_values is not None:
            opdef.check_values(tensors, **full)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise _error_class(exc)(op, str(msg), [t.describe() for t in tensors], _location()) from None
    return Tensor(op, tuple(tensors), full, tuple(ttype.shape), np.dtype(ttype.dtype), name, _location())


def _coerce_inputs(inputs: Sequence, promote: bool):
    like = next((t for t in inputs if isinstance(t, Tensor)), None)
    return [as_tensor(v, like if promote else None) for v in inputs]


def _promote(tensors):
    target = tensors[0].dtype
    for t in tensors[1:]:
        target = dtypes.promote_types(target, t.dtype)
    return [t if t.dtype == target else _cast(t, target) for t in tensors]


def _cast(t: Tensor, dtype) -> Tensor:
    if t.op == "constant":  # fold casts of literals right away
        return constant(t.attrs["value"].astype(dtype), dtype)
    return apply("cast", t, dtype=dtype)


def toposort(outputs: Sequence[Tensor]) -> list:
    """Nodes reachable from ``outputs`` in dependency order (inputs first)."""
    order, seen = [], set()
    stack = [(t, False) for t in reversed(list(outputs))]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node.id in seen:
            continue
        seen.add(node.id)
        stack.append((node, True))
        for inp in reversed(node.inputs):
            if inp.id not in seen:
                stack.append((inp, False))
    return order


def dims_in(shape) -> set:
    """Names of the symbolic dims in a shape."""
    names = set()
    for d in shape:
        if isinstance(d, Dim):
            names |= d.names()
    return names

