"""Static shapes with optional symbolic dimensions.

A dimension is an ``int`` or a :class:`Dim`: a named size unknown until run
time, such as the batch size. Dims support the arithmetic reshapes need
(products with ints and other dims, exact division), so
``x.reshape(B * T, C)`` stays symbolic. When a compiled function is called,
the concrete input shapes bind each name to an int and the graph is
specialised (see :func:`substitute`).

Example:
    >>> B = Dim("B")
    >>> (B * 4) // 2
    Dim(2*B)
    >>> substitute((B * 4, 3), {"B": 8})
    (32, 3)
"""

from __future__ import annotations

import math
import operator
from typing import Iterable, Mapping, Sequence, Tuple, Union


class Dim:
    """A symbolic dimension: ``coef * prod(name ** power)``."""

    __slots__ = ("coef", "factors")

    def __init__(self, name: str | None = None, *, coef: int = 1, factors=None):
        if name is not None:
            factors = ((name, 1),)
        self.coef = int(coef)
        self.factors = tuple(sorted(factors or ()))

    @staticmethod
    def _make(coef: int, factors: dict) -> "DimLike":
        items = tuple(sorted((n, p) for n, p in factors.items() if p))
        if not items:
            return int(coef)
        return Dim(coef=coef, factors=items)

    def _fdict(self) -> dict:
        return dict(self.factors)

    def __mul__(self, other):
        if isinstance(other, Dim):
            f = self._fdict()
            for n, p in other.factors:
                f[n] = f.get(n, 0) + p
            return Dim._make(self.coef * other.coef, f)
        if isinstance(other, int):
            if other == 0:
                return 0
            return Dim._make(self.coef * other, self._fdict())
        return NotImplemented

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if isinstance(other, int):
            if self.coef % other:
                raise ValueError(f"{self} is not divisible by {other}")
            return Dim._make(self.coef // other, self._fdict())
        if isinstance(other, Dim):
            f = self._fdict()
            for n, p in other.factors:
                if f.get(n, 0) < p:
                    raise ValueError(f"{self} is not divisible by {other}")
                f[n] -= p
            if self.coef % other.coef:
                raise ValueError(f"{self} is not divisible by {other}")
            return Dim._make(self.coef // other.coef, f)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, Dim) and other.factors == self.factors:
            return Dim._make(self.coef + other.coef, self._fdict())
        if other == 0:
            return self
        raise ValueError(f"cannot add symbolic dimensions {self} and {other}; "
                         "give the dimension a concrete size")

    __radd__ = __add__

    def __sub__(self, other):
        """``self - other`` where both are multiples of the same product (``2*n - n`` is ``n``).

        >>> Dim("n") * 3 - Dim("n")
        Dim(2*n)
        """
        if isinstance(other, Dim) and other.factors == self.factors:
            return Dim._make(self.coef - other.coef, self._fdict())
        if other == 0:
            return self
        raise ValueError(f"cannot subtract {other} from symbolic dimension {self}; "
                         "give the dimension a concrete size")

    def __eq__(self, other):
        return isinstance(other, Dim) and self.coef == other.coef and self.factors == other.factors

    def __hash__(self):
        return hash((self.coef, self.factors))

    def names(self) -> set:
        return {n for n, _ in self.factors}

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        value = self.coef
        for n, p in self.factors:
            if n not in bindings:
                raise KeyError(n)
            value *= bindings[n] ** p
        return value

    def __repr__(self):
        return f"Dim({self})"

    def __str__(self):
        body = "*".join(n if p == 1 else f"{n}^{p}" for n, p in self.factors)
        return body if self.coef == 1 else f"{self.coef}*{body}"


DimLike = Union[int, Dim]
Shape = Tuple[DimLike, ...]


def is_static(shape: Sequence[DimLike]) -> bool:
    """True when every dimension is a concrete int."""
    return all(isinstance(d, int) for d in shape)


def size_of(shape: Sequence[DimLike]) -> DimLike:
    """Number of elements (symbolic if any dimension is)."""
    total: DimLike = 1
    for d in shape:
        total = total * d
    return total


def normalize_shape(shape: Iterable) -> Shape:
    """Turn a user shape into a tuple of ints and Dims; strings name symbolic dims.

    >>> normalize_shape(("B", 3))
    (Dim(B), 3)
    """
    if isinstance(shape, (int, Dim, str)):
        shape = (shape,)
    out = []
    for d in shape:
        if isinstance(d, str):
            out.append(Dim(d))
        elif isinstance(d, Dim):
            out.append(d)
        else:
            d = int(d)
            if d < 0:
                raise ValueError(f"negative dimension {d} in shape {tuple(shape)}")
            out.append(d)
    return tuple(out)


def format_shape(shape: Sequence[DimLike]) -> str:
    """``(B, 3)`` style text for error messages."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


#: Names of dims created for ``None`` in ``rustyasg.input`` shapes: anonymous, so two of
#: them may stand for the same run-time size (every batch input gets its own).
ANONYMOUS_DIMS: set = set()


def _anonymous(d) -> bool:
    return isinstance(d, Dim) and len(d.factors) == 1 and d.coef == 1 and d.factors[0][0] in ANONYMOUS_DIMS


def same_dim(a: DimLike, b: DimLike) -> bool:
    """Equal dims, or two symbolic dims of which one is anonymous (checked again at call time)."""
    return a == b or (isinstance(a, Dim) and isinstance(b, Dim) and (_anonymous(a) or _anonymous(b)))


def same_shape(a: Sequence[DimLike], b: Sequence[DimLike]) -> bool:
    """Equal ranks and :func:`same_dim` on every axis (two ``None`` batch dims agree).

    >>> same_shape((Dim("B"), 3), (Dim("B"), 3)), same_shape((2, 3), (3, 2))
    (True, False)
    """
    return len(a) == len(b) and all(same_dim(x, y) for x, y in zip(a, b))


def broadcast_shapes(*shapes: Sequence[DimLike]) -> Shape:
    """numpy broadcasting over static or symbolic shapes; raises ValueError on mismatch.

    Two different symbolic dims broadcast only if one is anonymous (from ``None``): they are
    assumed equal, and the assumption is checked when the graph is specialised to concrete
    shapes at call time. Differently named dims ("B" vs "T") are a mistake caught now.
    """
    ndim = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(ndim):
        dim: DimLike = 1
        for s in shapes:
            k = axis - (ndim - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1:
                continue
            if dim == 1:
                dim = d
            elif dim != d and same_dim(dim, d):
                dim = d if _anonymous(dim) else dim  # keep the named one
            elif dim != d:
                raise ValueError("shapes " + " and ".join(format_shape(s) for s in shapes)
                                 + f" do not broadcast (axis {axis - ndim}: {dim} vs {d})")
        result.append(dim)
    return tuple(result)


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    """Map a possibly negative axis into ``range(ndim)``.

    A 0-d tensor accepts axis 0 and -1, as PyTorch does (both name the tensor itself).

    >>> normalize_axis(-1, 3), normalize_axis(-1, 0)
    (2, 0)
    """
    axis = operator.index(axis)  # 0.5 is refused, never truncated
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        valid = f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}]"
        raise ValueError(f"{what} {axis} is out of range for a tensor of rank {ndim} (valid: {valid})")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int) -> Tuple[int, ...]:
    """``None`` means all axes; ints and sequences are normalised and sorted.

    Repeated axes are a mistake (numpy and PyTorch refuse them too). On a 0-d tensor
    axis 0 / -1 names the tensor itself, so there is no axis left to reduce.

    >>> normalize_axes((-1, 0), 3), normalize_axes(0, 0), normalize_axes(None, 2)
    ((0, 2), (), (0, 1))
    """
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (tuple, list)):
        axis = (axis,)
    axes = [normalize_axis(a, ndim) for a in axis]
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {tuple(axis)} names the same axis more than once")
    return tuple(sorted(axes)) if ndim else ()


def substitute(value, bindings: Mapping[str, int]):
    """Replace every Dim inside a (nested) attribute value by its bound int."""
    if isinstance(value, Dim):
        return value.evaluate(bindings)
    if isinstance(value, tuple):
        return tuple(substitute(v, bindings) for v in value)
    if isinstance(value, list):
        return [substitute(v, bindings) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, bindings) for k, v in value.items()}
    return value


def bind_dims(declared: Sequence[DimLike], actual: Sequence[int], bindings: dict, what: str) -> None:
    """Bind the symbolic dims of ``declared`` from a concrete ``actual`` shape (in place)."""
    if len(declared) != len(actual):
        raise ValueError(f"{what}: expected rank {len(declared)} shape {format_shape(declared)}, "
                         f"got shape {tuple(actual)}")
    for d, a in zip(declared, actual):
        if isinstance(d, int):
            if d != a:
                raise ValueError(f"{what}: expected shape {format_shape(declared)}, got {tuple(actual)}")
        elif len(d.factors) == 1 and d.factors[0][1] == 1:
            name = d.factors[0][0]
            if a % d.coef:
                raise ValueError(f"{what}: dimension {d} cannot be {a}")
            value = a // d.coef
            if bindings.setdefault(name, value) != value:
                raise ValueError(f"{what}: dimension {name} is {bindings[name]} elsewhere but {value} here "
                                 f"(shape {tuple(actual)})")
    for d, a in zip(declared, actual):  # compound dims are checked once simple ones are bound
        if isinstance(d, Dim) and not (len(d.factors) == 1 and d.factors[0][1] == 1):
            try:
                v = d.evaluate(bindings)
            except KeyError as e:
                raise ValueError(f"{what}: cannot infer dimension {e.args[0]} from compound {d}") from None
            if v != a:
                raise ValueError(f"{what}: dimension {d} = {v} but got {a}")


def prod(values) -> int:
    return int(math.prod(values))
