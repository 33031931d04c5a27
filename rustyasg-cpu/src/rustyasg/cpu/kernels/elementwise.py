"""Elementwise ops: one scalar formula per op, as a table.

The fusion code generator inlines these formulas into one loop per fused group;
an op that runs alone uses numpy's ufunc (``numpy`` column) when its operands
share the result's dtype, otherwise a one-op generated kernel.

Example:
    >>> KERNELS["relu"].template
    '({T}(0) if {0} < {T}(0) else {0})'
"""

from __future__ import annotations

import numpy as np

from .protocol import Elementwise, Impl, literal

E = Elementwise


def _relu_np(x, out):
    return np.maximum(x, 0, out=out)


def _where_np(c, a, b, out):
    np.copyto(out, b)
    np.copyto(out, a, where=np.broadcast_to(c, out.shape))


# NaN semantics are numpy's: maximum/minimum/clamp/relu propagate a NaN operand. Python's
# max/min and ``x if x > 0 else 0`` do not (every comparison with NaN is false).
MAXIMUM = "({0} if ({0} > {1} or {0} != {0}) else {1})"
MINIMUM = "({0} if ({0} < {1} or {0} != {0}) else {1})"


def _clamp(args, dtype, attrs):
    x = args[0]
    lo, hi = attrs.get("min"), attrs.get("max")
    if lo is not None:
        x = MAXIMUM.format(x, literal(lo, dtype))
    if hi is not None:
        x = MINIMUM.format(x, literal(hi, dtype))
    return x


def _cast_alone(ins, args):
    """Casts from or to float16 (which numba cannot compute on) run as numpy copies."""
    if np.float16 not in (ins.dtype, args[0].dtype):
        return None
    return Impl(run=lambda x, out: np.copyto(out, x, casting="unsafe"), elementwise=True, label="numpy.cast")


def _cast(args, dtype, attrs):
    if dtype.kind == "b":
        return f"({args[0]} != 0)"
    return f"np.{dtype.name}({args[0]})"


def _isnan(args, dtype, attrs):
    # Integer operands are never NaN; math.isnan only types floats.
    return f"({args[0]} != {args[0]})"


KERNELS = {
    # unary arithmetic
    "neg": E("-{0}", np.negative),
    "abs": E("abs({0})", np.absolute),
    "sign": E("np.sign({0})", np.sign),
    "square": E("{0} * {0}", np.square),
    "reciprocal": E("{T}(1) / {0}", np.reciprocal, cast_inputs=True),
    "floor": E("np.floor({0})", np.floor),
    "ceil": E("np.ceil({0})", np.ceil),
    "round": E("np.rint({0})", np.rint),
    "clamp": E(formula=_clamp),
    "cast": E(formula=_cast, alone=_cast_alone),
    "identity": E("{0}"),
    "stop_gradient": E("{0}"),
    # transcendental (fast float32 versions from fastmath)
    "exp": E("{exp}({0})", np.exp, cast_inputs=True),
    "log": E("math.log({0})", np.log, cast_inputs=True),
    "log1p": E("math.log1p({0})", np.log1p, cast_inputs=True),
    "expm1": E("math.expm1({0})", np.expm1, cast_inputs=True),
    "sqrt": E("math.sqrt({0})", np.sqrt, cast_inputs=True),
    "rsqrt": E("{T}(1) / math.sqrt({0})", cast_inputs=True),
    "sin": E("math.sin({0})", np.sin, cast_inputs=True),
    "cos": E("math.cos({0})", np.cos, cast_inputs=True),
    "tanh": E("{tanh}({0})", np.tanh, cast_inputs=True),
    "erf": E("{erf}({0})", cast_inputs=True),
    # activations
    "sigmoid": E("{sigmoid}({0})", cast_inputs=True),
    "relu": E("({T}(0) if {0} < {T}(0) else {0})", _relu_np),
    "leaky_relu": E("({0} if {0} > {T}(0) else {0} * {negative_slope})", cast_inputs=True),
    "elu": E("({0} if {0} > {T}(0) else {alpha} * ({exp}({0}) - {T}(1)))", cast_inputs=True),
    "gelu": E("{T}(0.5) * {0} * ({T}(1) + {erf}({0} * {T}(0.7071067811865476)))", cast_inputs=True),
    # 0.5 * (1 + tanh(z)) == sigmoid(2z): exactly 0 or 1 far out, where 1 + tanh(z) would keep
    # the approximation's last ulp (times a large x).
    "gelu_tanh": E("{0} * {sigmoid}({T}(1.5957691216057308) * ({0} + {T}(0.044715) * {0} * {0} * {0}))",
                   cast_inputs=True),
    "silu": E("{0} * {sigmoid}({0})", cast_inputs=True),
    "softplus": E("({0} if {beta} * {0} > {threshold} else math.log1p({exp}({beta} * {0})) / {beta})",
                  cast_inputs=True),
    # binary arithmetic
    "add": E("{0} + {1}", np.add),
    "sub": E("{0} - {1}", np.subtract),
    "mul": E("{0} * {1}", np.multiply),
    "div": E("{0} / {1}", np.true_divide, cast_inputs=True),
    "pow": E("{0} ** {1}", np.power),
    "maximum": E(MAXIMUM, np.maximum),
    "minimum": E(MINIMUM, np.minimum),
    "mod": E("{0} % {1}", np.remainder),
    "floor_divide": E("{0} // {1}", np.floor_divide),
    # predicates
    "equal": E("({0} == {1})", np.equal, predicate=True),
    "not_equal": E("({0} != {1})", np.not_equal, predicate=True),
    "less": E("({0} < {1})", np.less, predicate=True),
    "less_equal": E("({0} <= {1})", np.less_equal, predicate=True),
    "greater": E("({0} > {1})", np.greater, predicate=True),
    "greater_equal": E("({0} >= {1})", np.greater_equal, predicate=True),
    "logical_and": E("({0} and {1})", np.logical_and, predicate=True),
    "logical_or": E("({0} or {1})", np.logical_or, predicate=True),
    "logical_not": E("(not {0})", np.logical_not, predicate=True),
    "isnan": E(formula=_isnan, numpy=np.isnan, predicate=True),
    "where": E("({1} if {0} else {2})", _where_np),
}
