"""The op registry: every op declared once, with everything the framework needs to know.

An :class:`OpDef` carries the op's name, attribute schema, shape+dtype rule,
gradient rule (a VJP built from graph ops), float64 numpy reference, docstring
and conformance examples. The registry is a dict keyed by name so plugins can
add ops through the ``rustyasg_register_ops`` hook.

Example:
    >>> from rustyasg.core.registry import OPS
    >>> OPS["exp"].reference(np.array([0.0]))
    array([1.])
"""

from __future__ import annotations

import warnings
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: a converter/validator and a default (``REQUIRED`` if none)."""

    convert: Callable[[Any], Any] = lambda v: v
    default: Any = REQUIRED
    doc: str = ""


@dataclass(frozen=True)
class TensorType:
    """Shape and dtype of a symbolic value (shape entries are ints or Dims)."""

    shape: Tuple[Any, ...]
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class InputSpec:
    """How the conformance kit draws a random operand of an op.

    ``low``/``high`` bound a uniform draw (ints for integer dtypes); ``away_from``
    keeps values at least ``margin`` away from points where the op is not smooth
    (so finite differences are meaningful); ``differentiable`` says whether the
    gradient with respect to this operand is checked.
    """

    shape: Tuple[Any, ...]
    dtype: Any = "float64"
    low: float = -1.0
    high: float = 1.0
    away_from: Tuple[float, ...] = ()
    margin: float = 0.05
    differentiable: bool = True
    generator: Optional[Callable[[np.random.Generator], np.ndarray]] = None
    #: A float operand the kit never feeds narrower than this (float32 statistics such as a
    #: saved log-sum-exp stay float32 when the example runs in float16).
    at_least: Optional[str] = None


@dataclass(frozen=True)
class Example:
    """A conformance case: operand specs and attributes."""

    inputs: Tuple[InputSpec, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    check_grad: bool = True
    rtol: float = 1e-5
    atol: float = 1e-6


@dataclass
class OpDef:
    """Everything about one op.

    - ``infer(types, **attrs) -> TensorType``: shape+dtype rule; raises ValueError/TypeError
      with a plain message, which the builder turns into an error naming the op and file:line.
    - ``reference(*arrays, **attrs) -> ndarray``: the float64 semantic oracle.
    - ``grad(g, out, inputs, **attrs) -> sequence``: one gradient (a graph tensor) or ``None``
      per input; ``out`` is the op's own output node. ``None`` as the whole rule means the
      op is not differentiable.
    - ``kind``: 'elementwise', 'reduce', 'scan', 'movement', 'linalg', 'nn', 'random', 'source', 'other';
      backends use it to decide fusion.
    - ``num_inputs``: exact arity, or ``None`` for variadic ops (concat).
    - ``check_values(tensors, **attrs)``: optional build-time check of constant operands'
      values (an index out of range); raises ValueError/IndexError like ``infer``.
    - ``precision``: what mixed precision does with the op (see :data:`PRECISIONS`):
      ``"low"`` (run in float16/bfloat16), ``"float32"`` (keep float32) or ``"follow"`` (the
      operands' precision); ``None`` takes the default of the op's ``kind``
      (:data:`DEFAULT_PRECISION`). :func:`precision_of` gives the effective policy.
    - ``schedule``: ``"program"`` (run in program order among ready work), ``"asap"`` (run
      as soon as its operands exist: ops that start asynchronous work, such as an overlapped
      all-reduce) or ``"late"`` (run when nothing else is ready: ops that wait for that work).
    """

    name: str
    infer: Callable[..., TensorType]
    reference: Callable[..., np.ndarray]
    grad: Optional[Callable[..., Sequence[Any]]] = None
    attrs: Mapping[str, Attr] = field(default_factory=dict)
    doc: str = ""
    kind: str = "other"
    num_inputs: Optional[int] = 1
    examples: Sequence[Example] = ()
    promote: bool = False
    plugin: str = "rustyasg.core"
    check_values: Optional[Callable[..., None]] = None
    precision: Optional[str] = None
    schedule: str = "program"

    def check_attrs(self, given: Mapping[str, Any]) -> Dict[str, Any]:
        """Validate and complete attributes against the schema."""
        unknown = set(given) - set(self.attrs)
        if unknown:
            raise KeyError(f"unknown attribute(s) {sorted(unknown)}; {self.name} takes {sorted(self.attrs) or 'none'}")
        out = {}
        for key, spec in self.attrs.items():
            if key in given:
                out[key] = spec.convert(given[key])
            elif spec.default is REQUIRED:
                raise KeyError(f"missing required attribute {key!r}")
            else:
                out[key] = spec.default
        return out


#: Mixed-precision policies an op may declare (``OpDef.precision``).
PRECISIONS = ("low", "float32", "follow")

#: The policy of an op that declares none, by ``kind``: products run low, reductions stay float32,
#: everything else follows its operands (PyTorch autocast's lower-precision / float32 / promote lists).
DEFAULT_PRECISION = {"linalg": "low", "reduce": "float32"}


def precision_of(op: str, overrides: Optional[Mapping[str, str]] = None) -> str:
    """The mixed-precision policy of ``op``: ``overrides``, else its declaration, else its kind's default.

    >>> precision_of("matmul"), precision_of("softmax"), precision_of("relu")
    ('low', 'float32', 'follow')
    >>> precision_of("matmul", {"matmul": "float32"})
    'float32'
    """
    if overrides and op in overrides:
        policy = overrides[op]
    else:
        opdef = OPS.get(op)
        if opdef is None:
            return "follow"
        policy = opdef.precision or DEFAULT_PRECISION.get(opdef.kind, "follow")
    if policy not in PRECISIONS:
        raise ValueError(f"precision policy of {op!r} is {policy!r}; expected one of {PRECISIONS}")
    return policy


class OpOverrideWarning(UserWarning):
    """A plugin replaced an op that another distribution declared (see :meth:`OpRegistry.override`)."""


@dataclass(frozen=True)
class Override:
    """One op taken over from another distribution: who had it, who has it now, and why."""

    op: str
    previous: str
    plugin: str
    reason: str


class OpRegistry(Dict[str, OpDef]):
    """Dict of op name -> :class:`OpDef`; refuses silent redefinition.

    ``register(opdef, replace=True)`` replaces an op of the *same* distribution (``OpDef.plugin``),
    e.g. when a plugin module is loaded again. Taking over another distribution's op (a core op,
    another plugin's) is never silent: it needs :meth:`override`, which warns and is listed in
    :attr:`overrides` and by ``rustyasg plugins``.

    >>> reg = OpRegistry()
    >>> mine = reg.register(OpDef("twice", infer=lambda ts: ts[0], reference=lambda x: 2 * x, plugin="pkg-a"))
    >>> reg.register(OpDef("twice", infer=lambda ts: ts[0], reference=lambda x: x + x, plugin="pkg-b"),
    ...              replace=True)
    Traceback (most recent call last):
    ValueError: op 'twice' is registered by pkg-a; pkg-b may not replace it with replace=True, which only replaces an op of the same distribution: to take over another distribution's op, call registry.override(opdef, reason=...)
    """

    def __init__(self) -> None:
        super().__init__()
        self.overrides: Dict[str, Override] = {}

    def register(self, opdef: OpDef, *, replace: bool = False) -> OpDef:
        """Add ``opdef``; ``replace`` allows redefining an op that ``opdef``'s own distribution declared."""
        existing = self.get(opdef.name)
        if existing is not None and existing is not opdef:
            if existing.plugin != opdef.plugin and replace:
                raise ValueError(
                    f"op {opdef.name!r} is registered by {existing.plugin}; {opdef.plugin} may not replace it "
                    f"with replace=True, which only replaces an op of the same distribution: to take over "
                    f"another distribution's op, call registry.override(opdef, reason=...)")
            if not replace:
                raise ValueError(f"op {opdef.name!r} is already registered by {existing.plugin}")
        self[opdef.name] = opdef
        return opdef

    def override(self, opdef: OpDef, *, reason: str) -> OpDef:
        """Replace another distribution's op with ``opdef``: warns, and is listed in :attr:`overrides`.

        Every backend then uses the new declaration (reference, shape and gradient rules);
        register kernels that agree with it, or the conformance kit will report the difference.
        ``reason`` says why, for the person reading the warning or ``rustyasg plugins``.

        >>> import warnings
        >>> reg = OpRegistry()
        >>> _ = reg.register(OpDef("twice", infer=lambda ts: ts[0], reference=lambda x: 2 * x, plugin="pkg-a"))
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = reg.override(OpDef("twice", infer=lambda ts: ts[0], reference=lambda x: x + x, plugin="pkg-b"),
        ...                      reason="exact in float16")
        >>> reg.overrides["twice"].previous, str(caught[0].message)
        ('pkg-a', 'pkg-b overrides op twice of pkg-a: exact in float16')
        """
        if not reason or not str(reason).strip():
            raise ValueError("override needs a reason: say why the op is replaced")
        existing = self.get(opdef.name)
        if existing is None or existing.plugin == opdef.plugin:
            return self.register(opdef, replace=True)  # nothing of another distribution is replaced
        previous = self.overrides[opdef.name].previous if opdef.name in self.overrides else existing.plugin
        self.overrides[opdef.name] = Override(opdef.name, previous, opdef.plugin, str(reason))
        warnings.warn(f"{opdef.plugin} overrides op {opdef.name} of {existing.plugin}: {reason}",
                      OpOverrideWarning, stacklevel=2)
        self[opdef.name] = opdef
        return opdef


class KernelRegistry:
    """Per-backend tables of op name -> kernel (whatever object the backend understands)."""

    def __init__(self) -> None:
        self._tables: Dict[str, Dict[str, Any]] = {}

    def register(self, backend: str, op: str, kernel: Any) -> None:
        self._tables.setdefault(backend, {})[op] = kernel

    def table(self, backend: str) -> Dict[str, Any]:
        return self._tables.setdefault(backend, {})

    def backends_for(self, op: str) -> List[str]:
        return sorted(b for b, t in self._tables.items() if op in t)


@dataclass(order=True)
class PassDef:
    """A graph rewrite ``fn(program) -> program`` with an ordering position."""

    position: float
    name: str = field(compare=False)
    fn: Callable[[Any], Any] = field(compare=False)
    backends: Optional[Tuple[str, ...]] = field(default=None, compare=False)


class PassRegistry(Dict[str, PassDef]):
    """Dict of pass name -> :class:`PassDef`; :meth:`ordered` gives them by position."""

    def register(self, name: str, fn: Callable[[Any], Any], position: float,
                 backends: Optional[Iterable[str]] = None) -> None:
        self[name] = PassDef(position, name, fn, tuple(backends) if backends else None)

    def ordered(self, backend: str | None = None) -> List[PassDef]:
        return [p for p in sorted(self.values()) if p.backends is None or backend in p.backends]


OPS = OpRegistry()
KERNELS = KernelRegistry()
PASSES = PassRegistry()


# Attribute converters shared by the op families.
def as_int(v: Any) -> int:
    """An integer attribute; a float such as 0.5 is refused, never truncated."""
    return operator.index(v)


def as_float(v: Any) -> float:
    return float(v)


def as_bool(v: Any) -> bool:
    return bool(v)


def as_ints(v: Any) -> Tuple[Any, ...]:
    """Integers (or Dims / dim names, for shapes); one int becomes a 1-tuple; a bare string is refused."""
    if isinstance(v, (int, np.integer)):
        return (int(v),)
    if isinstance(v, str):
        raise TypeError(f"expected a sequence of ints, got the string {v!r}")
    return tuple(int(x) if isinstance(x, (int, np.integer)) else _not_float(x) for x in v)


def _not_float(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        raise TypeError(f"expected ints, got the float {x!r}")
    return x


def as_opt_ints(v: Any) -> Optional[Tuple[Any, ...]]:
    return None if v is None else as_ints(v)


def as_pair(v: Any) -> Tuple[int, int]:
    """An int or a pair of ints -> pair (conv/pool hyper-parameters)."""
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    pair = tuple(int(x) for x in v)
    if len(pair) != 2:
        raise ValueError(f"expected an int or a pair, got {pair}")
    return (pair[0], pair[1])


def as_str(v: Any) -> str:
    return str(v)
