"""The elementwise op table: how every backend computes each elementwise op, one row per op.

An op's *meaning* is its declaration (:mod:`.elementwise`: shape/dtype rule, float64
numpy reference, gradient). Its row here says how a backend computes one element: the
arity and attribute order, a numba expression (the cpu backend inlines it into fused
loops), a WGSL expression (the wgpu backend's fused kernels), the numpy ufunc a lone op
may use, the cost class, the dtype rules a backend needs (integer operands converted to
the float result, bool results, exact integer arithmetic) and the NaN semantics, which
are always numpy's: every backend is tested against the reference on NaN, +-inf and 0.

Backends render rows through :func:`subscribe`, so a row added later (a plugin's op, a
test's) reaches every installed backend; :func:`define_elementwise` declares an op and its
row in one call.

Template placeholders. numba: ``{0}``, ``{1}``... the operands, ``{T}`` the result dtype's
constructor, ``{exp}``/``{tanh}``/``{erf}``/``{sigmoid}``/``{log}``/``{log1p}``/``{expm1}`` the backend's fastest version for
that dtype, each attribute by name as a typed literal; a callable ``formula(args, dtype,
attrs)`` where text is not enough. WGSL: ``{0}``... the operands followed by the attributes
in ``attrs`` order, ``{T}`` the value type (``f32`` or ``vec4<f32>``), ``{S}`` the helper
suffix, ``{U}`` the matching u32 type; ``name_{S}(...)`` calls a backend helper function.

Example:
    >>> ROWS["relu"].numba, ROWS["relu"].wgsl
    ('({T}(0) if {0} < {T}(0) else {0})', 'select({0}, {T}(0.0), {0} < {T}(0.0))')
    >>> ROWS["exp"].cost, ROWS["add"].cost
    (8, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

#: Cost classes (relative work per element): a backend splits or weighs kernels by them.
CHEAP, HEAVY = 1, 8
#: NaN semantics (all numpy's): a NaN operand gives NaN; comparisons with NaN are False
#: (``!=`` True); bool/integer-valued ops take their operand's NaN through numpy's rule.
PROPAGATE, COMPARE = "propagate", "compare"


@dataclass(frozen=True)
class EwRow:
    """How backends compute one elementwise op (see the module docstring)."""

    name: str
    arity: int
    numba: Union[str, Callable, None] = None
    wgsl: Optional[str] = None
    attrs: Tuple[str, ...] = ()
    ufunc: Optional[Callable] = None
    cost: int = CHEAP
    nan: str = PROPAGATE
    cast_inputs: bool = False   # integer operands are converted to the (float) result dtype first
    predicate: bool = False     # a bool result computed from same-dtype operands
    exact_ints: bool = False    # exact on integer operands (no detour through floats)


ROWS: Dict[str, EwRow] = {}
_listeners: List[Callable[[EwRow], None]] = []


def add_row(row: EwRow) -> EwRow:
    """Add (or replace) ``row`` and hand it to every subscribed backend."""
    ROWS[row.name] = row
    for fn in list(_listeners):
        fn(row)
    return row


def subscribe(fn: Callable[[EwRow], None]) -> None:
    """Call ``fn(row)`` for every row now and for every row added later (a backend's renderer)."""
    _listeners.append(fn)
    for row in list(ROWS.values()):
        fn(row)


def define_elementwise(name: str, reference: Callable, grad: Optional[Callable], doc: str, *, arity: int = 1,
                       numba=None, wgsl: Optional[str] = None, cost: int = CHEAP, infer: Optional[Callable] = None,
                       plugin: str = "rustyasg.core", examples=(), **row) -> Callable:
    """Declare a float elementwise op and its table row in one call; returns its builder.

    >>> import numpy as np, rustyasg.core as rg
    >>> cube = define_elementwise("cube_demo", lambda x: x ** 3, lambda g, y, x: (g * 3.0 * x * x,),
    ...                           "x cubed", numba="{0} * {0} * {0}", wgsl="({0} * {0} * {0})")
    >>> x = rg.input((2,), name="x")
    >>> rg.function([x], cube(x), backend="reference")(np.array([2.0, -1.0], np.float32))
    array([ 8., -1.], dtype=float32)
    """
    from ..registry import Example, InputSpec
    from ._define import defop
    from .elementwise import _broadcast_infer, _float_result

    if not examples:
        examples = (Example(tuple(InputSpec((3, 4)) for _ in range(arity)), check_grad=grad is not None),)
    infer = infer or (_float_result if arity == 1 else _broadcast_infer)
    build = defop(name, infer=infer, reference=reference, grad=grad, doc=doc, kind="elementwise", num_inputs=arity,
                  promote=arity > 1, examples=examples, plugin=plugin)
    add_row(EwRow(name, arity, numba, wgsl, cost=cost, **row))
    return build


# --- numpy loops a lone op may use (out= must be the last argument) ------------------------------
def _relu_np(x, out):
    return np.maximum(x, 0, out=out)


def _where_np(c, a, b, out):
    np.copyto(out, b)
    np.copyto(out, a, where=np.broadcast_to(c, out.shape))


# --- numba formulas -----------------------------------------------------------------------------
#: numpy's maximum/minimum for one element: a NaN on either side wins (Python's max/min and
#: ``a if a > b else b`` drop it: every comparison with NaN is False).
MAXIMUM = "({0} if ({0} > {1} or {0} != {0}) else {1})"
MINIMUM = "({0} if ({0} < {1} or {0} != {0}) else {1})"


def _literal(value, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return f"np.{dtype.name}({int(value)})"
    v = float(value)
    text = repr(v) if np.isfinite(v) else ("np.nan" if v != v else ("-np.inf" if v < 0 else "np.inf"))
    return f"np.{dtype.name}({text})"


def _clamp(args, dtype, attrs):
    x = args[0]
    if attrs.get("min") is not None:
        x = MAXIMUM.format(x, _literal(attrs["min"], dtype))
    if attrs.get("max") is not None:
        x = MINIMUM.format(x, _literal(attrs["max"], dtype))
    return x


def _cast(args, dtype, attrs):
    if dtype.kind == "b":
        return f"({args[0]} != 0)"
    return f"np.{dtype.name}({args[0]})"


_CMP_WGSL = "select({T}(0.0), {T}(1.0), %s)"
# Drivers fold a >= a, a == a to true and a != a to false (inexact algebra): NaN is tested by
# its bits, so a comparison of a value with itself stays numpy's.
_NOT_NAN = "& !isnan_{S}({0})"


def _row(name, arity, numba, wgsl, ufunc=None, **kw):
    return add_row(EwRow(name, arity, numba, wgsl, ufunc=ufunc, **kw))


_X = dict(exact_ints=True)
_F = dict(cast_inputs=True, cost=HEAVY)
_P = dict(predicate=True, exact_ints=True, nan=COMPARE)
# unary arithmetic
_row("neg", 1, "-{0}", "(-{0})", np.negative, **_X)
_row("abs", 1, "abs({0})", "abs({0})", np.absolute, **_X)
_row("sign", 1, "np.sign({0})", "select(sign({0}), {0}, isnan_{S}({0}))", np.sign, **_X)
_row("square", 1, "{0} * {0}", "({0} * {0})", np.square, **_X)
_row("reciprocal", 1, "{T}(1) / {0}", "({T}(1.0) / {0})", np.reciprocal, **_F)
_row("floor", 1, "np.floor({0})", "floor({0})", np.floor, **_X)
_row("ceil", 1, "np.ceil({0})", "ceil({0})", np.ceil, **_X)
_row("round", 1, "np.rint({0})", "round({0})", np.rint, **_X)
_row("clamp", 1, _clamp, None, attrs=("min", "max"), **_X)  # wgpu: maximum/minimum steps (a bound may be None)
_row("cast", 1, _cast, "{0}", **_X)
_row("identity", 1, "{0}", "{0}", **_X)
_row("stop_gradient", 1, "{0}", "{0}", **_X)
# transcendental
_row("exp", 1, "{exp}({0})", "exp({0})", np.exp, **_F)
_row("log", 1, "{log}({0})", "log({0})", np.log, **_F)
_row("log1p", 1, "{log1p}({0})", "log1p_{S}({0})", np.log1p, **_F)
_row("expm1", 1, "{expm1}({0})", "expm1_{S}({0})", np.expm1, **_F)
_row("sqrt", 1, "math.sqrt({0})", "sqrt({0})", np.sqrt, **_F)
_row("rsqrt", 1, "{T}(1) / math.sqrt({0})", "inverseSqrt({0})", **_F)
_row("sin", 1, "math.sin({0})", "sin({0})", np.sin, **_F)
_row("cos", 1, "math.cos({0})", "cos({0})", np.cos, **_F)
_row("tanh", 1, "{tanh}({0})", "tanh_{S}({0})", np.tanh, **_F)
_row("erf", 1, "{erf}({0})", "erf_{S}({0})", **_F)
# activations
_row("sigmoid", 1, "{sigmoid}({0})", "({T}(1.0) / ({T}(1.0) + exp(-{0})))", **_F)
_row("relu", 1, "({T}(0) if {0} < {T}(0) else {0})", "select({0}, {T}(0.0), {0} < {T}(0.0))", _relu_np, **_X)
_row("leaky_relu", 1, "({0} if {0} > {T}(0) else {0} * {negative_slope})", "select({0} * {1}, {0}, {0} > {T}(0.0))",
     attrs=("negative_slope",), cast_inputs=True)
_row("elu", 1, "({0} if {0} > {T}(0) else {alpha} * ({exp}({0}) - {T}(1)))",
     "select({1} * expm1_{S}(select({0}, {T}(0.0), {0} > {T}(0.0))), {0}, {0} > {T}(0.0))", attrs=("alpha",), **_F)
_row("gelu", 1, "{T}(0.5) * {0} * ({T}(1) + {erf}({0} * {T}(0.7071067811865476)))",
     "({0} * 0.5 * ({T}(1.0) + erf_{S}({0} * 0.7071067811865476)))", **_F)
# numba: 0.5 * (1 + tanh(z)) == sigmoid(2z), exactly 0 or 1 far out where 1 + tanh(z) would keep
# the approximation's last ulp (times a large x).
#: The tanh-GELU's gate s = sigmoid(z2), z2 = 2 sqrt(2/pi) (x + 0.044715 x^3): gelu_tanh(x) = x * s.
GELU_TANH_GATE = "{sigmoid}({T}(1.5957691216057308) * ({0} + {T}(0.044715) * {0} * {0} * {0}))"
#: g * gelu_tanh'(x) from g ({0}), x ({1}) and the gate s ({2}): s + x s (1 - s) z2'.
GELU_TANH_GRAD_GATED = ("{0} * ({2} + {1} * {2} * ({T}(1) - {2}) * {T}(1.5957691216057308) * "
                        "({T}(1) + {T}(0.134145) * {1} * {1}))")
_row("gelu_tanh", 1, "{0} * " + GELU_TANH_GATE,
     "({0} * 0.5 * ({T}(1.0) + tanh_{S}(0.7978845608028654 * ({0} + 0.044715 * {0} * {0} * {0}))))", **_F)
_row("silu", 1, "{0} * {sigmoid}({0})", "({0} / ({T}(1.0) + exp(-{0})))", **_F)
# g * gelu_tanh'(x), the gate computed from x (LLVM computes the three identical sigmoids once)
_row("gelu_tanh_grad", 2, GELU_TANH_GRAD_GATED.replace("{2}", GELU_TANH_GATE.replace("{0}", "{1}")),
     "gelu_tanh_grad_{S}({0}, {1})", **_F)
_row("softplus", 1, "({0} if {beta} * {0} > {threshold} else {log1p}({exp}({beta} * {0})) / {beta})",
     "softplus_{S}({0}, {1}, {2})", attrs=("beta", "threshold"), **_F)
# binary arithmetic
_row("add", 2, "{0} + {1}", "({0} + {1})", np.add, **_X)
_row("sub", 2, "{0} - {1}", "({0} - {1})", np.subtract, **_X)
_row("mul", 2, "{0} * {1}", "({0} * {1})", np.multiply, **_X)
_row("div", 2, "{0} / {1}", "({0} / {1})", np.true_divide, **_F)
_row("pow", 2, "{0} ** {1}", "pow_{S}({0}, {1})", np.power, cost=HEAVY)
_row("maximum", 2, MAXIMUM, "select({1}, {0}, ({0} > {1}) | isnan_{S}({0}))", np.maximum, **_X)
_row("minimum", 2, MINIMUM, "select({1}, {0}, ({0} < {1}) | isnan_{S}({0}))", np.minimum, **_X)
_row("mod", 2, "{0} % {1}", "mod_{S}({0}, {1})", np.remainder, cost=HEAVY, exact_ints=True)
_row("floor_divide", 2, "{0} // {1}", "floordiv_{S}({0}, {1})", np.floor_divide, **_X)
# predicates (bool results; the WGSL fused kernel carries them as 1.0 / 0.0)
_row("equal", 2, "({0} == {1})", _CMP_WGSL % ("({0} == {1}) " + _NOT_NAN), np.equal, **_P)
_row("not_equal", 2, "({0} != {1})", _CMP_WGSL % "({0} != {1}) | isnan_{S}({0}) | isnan_{S}({1})", np.not_equal,
     **_P)
_row("less", 2, "({0} < {1})", _CMP_WGSL % "{0} < {1}", np.less, **_P)
_row("less_equal", 2, "({0} <= {1})", _CMP_WGSL % ("({0} <= {1}) " + _NOT_NAN), np.less_equal, **_P)
_row("greater", 2, "({0} > {1})", _CMP_WGSL % "{0} > {1}", np.greater, **_P)
_row("greater_equal", 2, "({0} >= {1})", _CMP_WGSL % ("({0} >= {1}) " + _NOT_NAN), np.greater_equal, **_P)
_row("logical_and", 2, "({0} and {1})", _CMP_WGSL % "({0} != {T}(0.0)) & ({1} != {T}(0.0))", np.logical_and, **_P)
_row("logical_or", 2, "({0} or {1})", _CMP_WGSL % "({0} != {T}(0.0)) | ({1} != {T}(0.0))", np.logical_or, **_P)
_row("logical_not", 1, "(not {0})", _CMP_WGSL % "{0} == {T}(0.0)", np.logical_not, **_P)
# Integers are never NaN; numba's math.isnan only types floats, and x != x is exact without 'nnan'.
_row("isnan", 1, "({0} != {0})", _CMP_WGSL % "isnan_{S}({0})", np.isnan, predicate=True, nan=COMPARE)
_row("where", 3, "({1} if {0} else {2})", "select({2}, {1}, {0} != {T}(0.0))", _where_np, **_X)
