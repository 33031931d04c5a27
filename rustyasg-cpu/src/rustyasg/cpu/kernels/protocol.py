"""What a CPU kernel is: a builder called once per instruction at compile time.

A kernel registered for op ``X`` is ``build(ins, args) -> Impl``: ``ins`` is the
:class:`~rustyasg.core.program.Instr` (concrete shape, dtype, attrs), ``args``
the instructions of its operands. Everything that depends only on shapes is
decided here, so the run loop does no per-node Python work beyond one call.
The returned :class:`Impl` says how the instruction executes:

- ``view(*inputs) -> ndarray | None``: the result is a view of an input (reshape,
  transpose, slice); no buffer, no run-time work. ``None`` means "not possible for
  these strides" and ``run`` is used instead.
- ``run(*inputs, out, *scratch)``: writes the result into the preallocated ``out``
  (numpy ufuncs fit as they are: ``np.add(a, b, out)``).
- ``bind(*inputs, out, *scratch) -> callable()``: optional; precomputes views of the
  bound arrays once and returns the zero-argument callable the run loop calls.
- ``scratch``: ``(shape, dtype)`` temporaries the memory planner provides.
- ``contiguous``: the kernel needs C-contiguous inputs (the executor copies a
  strided view into a buffer first), except where ``reads_strided(k, array)`` says
  that input ``k`` is read in that layout as it is.

Elementwise ops register an :class:`Elementwise` instead: a scalar formula that
the fusion code generator inlines into a loop, so plugins' elementwise ops fuse
with the built-in ones.

Example:
    >>> import numpy as np
    >>> impl = Impl(run=np.add)
    >>> out = np.empty(2); _ = impl.bound([np.ones(2), np.ones(2), out])(); out
    array([2., 2.])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

#: Result or operand size (elements) up to which an op running alone takes numpy instead of a
#: generated numba loop: the loop saves microseconds at these sizes but costs ~0.1-0.2 s of numba
#: compile on a cold start, where a small op is often the only user of its loop (a classifier's
#: row sums, bias gradients and ReLU gradient; measured in benchmarks/cpu/NOTES.md).
SMALL_ALONE = 8192


@dataclass
class Impl:
    """How one instruction runs (see the module docstring)."""

    run: Optional[Callable] = None
    bind: Optional[Callable] = None
    view: Optional[Callable] = None
    scratch: Tuple[Tuple[tuple, Any], ...] = ()
    contiguous: bool = False
    reads_strided: Optional[Callable] = None  # with ``contiguous``: (input index, array) -> read as it is
    elementwise: bool = False  # reads operands element-for-element (may write in place)
    label: str = ""

    def bound(self, arrays: Sequence[np.ndarray]) -> Callable[[], Any]:
        """The zero-argument callable that executes this instruction on ``arrays``."""
        if self.bind is not None:
            return self.bind(*arrays)
        return functools.partial(self.run, *arrays)


@dataclass(frozen=True)
class Elementwise:
    """An elementwise op given as a scalar formula for generated numba code.

    ``template`` is a ``str.format`` pattern: ``{0}``, ``{1}``... are the operands,
    ``{T}`` the result dtype's constructor (``np.float32``), ``{exp}``, ``{tanh}``,
    ``{erf}``, ``{sigmoid}`` the fastest implementation for that dtype, and each float
    attribute appears by name as a typed literal. ``formula`` replaces ``template`` when
    text substitution is not enough. ``cast_inputs`` converts integer operands to the
    result dtype first (``exp`` of an int64 tensor computes in float32).
    ``numpy`` is a ufunc-style ``f(*inputs, out)`` used when the op runs alone on
    operands of one dtype, where numpy's SIMD loops are already the fastest way.

    >>> Elementwise("{0} + {1}").render(["a", "b"], np.dtype("float32"), {})
    'a + b'
    """

    template: str = ""
    numpy: Optional[Callable] = None
    cast_inputs: bool = False
    formula: Optional[Callable[..., str]] = None
    predicate: bool = False  # the result is bool computed from same-dtype operands
    alone: Optional[Callable] = None  # builder used when the op is not fused (e.g. a view)

    def render(self, args: Sequence[str], dtype: np.dtype, attrs: Mapping[str, Any], libm: bool = False) -> str:
        """The numba expression for one element, given operand expressions. ``libm``: call the
        float64 functions (``math.exp`` ...) for float32 too, as a group of scalars does: the
        float32 helpers pay for themselves in SIMD loops, and each costs a compile."""
        from .fastmath import FAST

        if self.formula is not None:
            return self.formula(args, np.dtype(dtype), attrs)
        dtype = np.dtype(dtype)
        tname = f"np.{dtype.name}" if dtype.kind != "b" else "np.bool_"
        names = {k: (v[0] if dtype == np.float32 and not libm else v[1]) for k, v in FAST.items()}
        lits = {k: literal(v, dtype) for k, v in attrs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return self.template.format(*args, T=tname, **names, **lits)


def in_order(first, second):
    """Zero-argument call running ``first()`` then ``second()`` (a bound step made of two calls)."""
    def run():
        first()
        second()
    return run


def literal(value, dtype) -> str:
    """Source text of ``value`` as a scalar of ``dtype`` (exact: repr round-trips)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "True" if value else "False"
    if dtype.kind == "f":
        v = float(value)
        if v != v:
            return f"np.{dtype.name}(np.nan)"
        if v in (float("inf"), float("-inf")):
            return f"np.{dtype.name}({'-' if v < 0 else ''}np.inf)"
        return f"np.{dtype.name}({v!r})"
    return f"np.{dtype.name}({int(value)})"


@dataclass(frozen=True)
class Reduction:
    """A reduction the fusion generator can accumulate inside a fused loop.

    ``combine`` is ``sum`` or ``max``/``min``; ``mean`` divides by the count at the end.
    Alone, it runs as a generated loop too (measured 2-7x faster than numpy's reduce on
    bias-gradient and row-sum shapes); ``build`` is the numpy fallback for mixed dtypes
    and empty operands. Kernels are data: :func:`rustyasg.cpu.fused.build_kernel` is
    where every kind of kernel is turned into an :class:`Impl`.
    """

    combine: str
    build: Callable
    mean: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
