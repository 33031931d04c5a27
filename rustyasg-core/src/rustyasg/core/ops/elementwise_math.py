"""More elementwise math: trigonometric and hyperbolic functions, logarithms and exponentials in
other bases, rounding toward zero, IEEE predicates and the two-operand functions PyTorch has
(``atan2``, ``hypot``, ``copysign``, ``fmod``, ``logaddexp``).

Each op is one row of the elementwise table (:mod:`.elementwise_table`), declared with
:func:`~.elementwise_table.define_elementwise`: its float64 reference, its gradient (PyTorch's
formula), a numba expression and a WGSL expression. WGSL expressions that need care at the edges
(``sinh`` near 0, ``asinh`` of a large negative number, ``hypot`` with an infinite operand) call
helper functions of the wgpu backend (``name_{S}(...)``).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((3,), name="x")
    >>> f = rg.function([x], rg.atan2(x, 1.0) + rg.log2(rg.exp2(x)), backend="reference")
    >>> np.round(f(np.array([0.0, 1.0, -1.0], np.float32)), 4)
    array([ 0.    ,  1.7854, -1.7854], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..registry import Example, InputSpec, TensorType
from ..shapes import broadcast_shapes
from .elementwise import _bool_result, exp, rsqrt, where
from .elementwise_table import CHEAP, COMPARE, HEAVY, define_elementwise

__all__ = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2",
           "trunc", "frac", "isinf", "isfinite", "hardsigmoid", "hardswish", "atan2", "hypot", "copysign", "fmod", "logaddexp"]

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _float_binary(types, **_):
    a, b = types
    dt = a.dtype if dtypes.is_floating(a.dtype) else dtypes.DEFAULT_FLOAT
    return TensorType(broadcast_shapes(a.shape, b.shape), dt)


def _numeric_binary(types, **_):
    a, b = types
    if a.dtype == dtypes.bool_:
        raise TypeError("needs numeric operands, got bool; cast them first")
    return TensorType(broadcast_shapes(a.shape, b.shape), a.dtype)


def _numeric_unary(types, **_):
    if types[0].dtype == dtypes.bool_:
        raise TypeError("needs a numeric operand, got bool; cast it first")
    return types[0]


def _ex(*specs, grad=True):
    return (Example(tuple(specs), check_grad=grad),)


_ANY = InputSpec((3, 4), low=-2.0, high=2.0)
_UNIT = InputSpec((3, 4), low=-0.9, high=0.9)
_POS = InputSpec((3, 4), low=0.2, high=3.0)
_ABOVE1 = InputSpec((3, 4), low=1.2, high=3.0)
_F = dict(cast_inputs=True, cost=HEAVY)  # float math: integer operands become the float result first


def _fmod_numba(args, dtype, attrs):
    a, b = args
    if dtype.kind == "f":
        return f"np.fmod({a}, {b})"
    return f"(np.sign({a}) * (abs({a}) % abs({b})))"  # numba's integer np.fmod is wrong for negatives


def _trunc_numba(args, dtype, attrs):
    return f"np.trunc({args[0]})" if dtype.kind == "f" else args[0]


# --- unary -----------------------------------------------------------------------------------------
tan = define_elementwise("tan", np.tan, lambda g, y, x: (g * (1.0 + y * y),), "Tangent.",
                         numba="math.tan({0})", wgsl="tan_{S}({0})", examples=_ex(_UNIT), **_F)
asin = define_elementwise("asin", np.arcsin, lambda g, y, x: (g * rsqrt(1.0 - x * x),),
                          "Inverse sine (``torch.asin``); NaN outside [-1, 1].",
                          numba="math.asin({0})", wgsl="asin_{S}({0})", examples=_ex(_UNIT), **_F)
acos = define_elementwise("acos", np.arccos, lambda g, y, x: (-g * rsqrt(1.0 - x * x),),
                          "Inverse cosine (``torch.acos``); NaN outside [-1, 1].",
                          numba="math.acos({0})", wgsl="acos_{S}({0})", examples=_ex(_UNIT), **_F)
atan = define_elementwise("atan", np.arctan, lambda g, y, x: (g / (1.0 + x * x),), "Inverse tangent.",
                          numba="math.atan({0})", wgsl="atan_{S}({0})", examples=_ex(_ANY), **_F)
sinh = define_elementwise("sinh", np.sinh, lambda g, y, x: (g * cosh(x),), "Hyperbolic sine.",
                          numba="math.sinh({0})", wgsl="sinh_{S}({0})", examples=_ex(_ANY), **_F)
cosh = define_elementwise("cosh", np.cosh, lambda g, y, x: (g * sinh(x),), "Hyperbolic cosine.",
                          numba="math.cosh({0})", wgsl="cosh_{S}({0})", examples=_ex(_ANY), **_F)
asinh = define_elementwise("asinh", np.arcsinh, lambda g, y, x: (g * rsqrt(x * x + 1.0),),
                           "Inverse hyperbolic sine.", numba="math.asinh({0})", wgsl="asinh_{S}({0})",
                           examples=_ex(_ANY), **_F)
acosh = define_elementwise("acosh", np.arccosh, lambda g, y, x: (g * rsqrt(x * x - 1.0),),
                           "Inverse hyperbolic cosine; NaN below 1.", numba="math.acosh({0})",
                           wgsl="acosh_{S}({0})", examples=_ex(_ABOVE1), **_F)
atanh = define_elementwise("atanh", np.arctanh, lambda g, y, x: (g / (1.0 - x * x),),
                           "Inverse hyperbolic tangent; +-inf at +-1, NaN beyond.", numba="math.atanh({0})",
                           wgsl="atanh_{S}({0})", examples=_ex(_UNIT), **_F)
log2 = define_elementwise("log2", np.log2, lambda g, y, x: (g / (x * _LN2),), "Base-2 logarithm.",
                          numba="math.log2({0})", wgsl="log2({0})", examples=_ex(_POS), **_F)
log10 = define_elementwise("log10", np.log10, lambda g, y, x: (g / (x * _LN10),), "Base-10 logarithm.",
                           numba="math.log10({0})", wgsl="(log2({0}) * 0.30102999566398120)",
                           examples=_ex(_POS), **_F)
exp2 = define_elementwise("exp2", np.exp2, lambda g, y, x: (g * y * _LN2,), "``2 ** x``.",
                          numba="np.exp2({0})", wgsl="exp2({0})", examples=_ex(_ANY), **_F)
trunc = define_elementwise("trunc", np.trunc, lambda g, y, x: (None,), "Round toward zero; zero gradient.",
                           numba=_trunc_numba, wgsl="trunc({0})", infer=_numeric_unary,
                           examples=_ex(_ANY, grad=False), exact_ints=True)
frac = define_elementwise("frac", lambda x: x - np.trunc(x), lambda g, y, x: (g,),
                          "Fractional part ``x - trunc(x)`` (sign of ``x``); gradient 1 as in PyTorch.",
                          numba="{0} - np.trunc({0})", wgsl="({0} - trunc({0}))", infer=_numeric_unary,
                          examples=(Example((InputSpec((3, 4), low=-3, high=3, away_from=(-2, -1, 0, 1, 2)),)),),
                          cost=CHEAP)


# --- activations with PyTorch's gradient at the kinks ------------------------------------------------
def _hardsigmoid_grad(g, y, x):
    return (where((x > -3.0) & (x < 3.0), g * (1.0 / 6.0), 0.0),)


def _hardswish_grad(g, y, x):  # PyTorch: 0 up to -3, x/3 + 1/2 strictly between, 1 from 3 on
    return (where(x <= -3.0, 0.0, where(x < 3.0, g * (x * (1.0 / 3.0) + 0.5), g)),)


_KINKS = (Example((InputSpec((3, 4), low=-5.0, high=5.0, away_from=(-3.0, 3.0), margin=0.1),)),)
hardsigmoid = define_elementwise(
    "hardsigmoid", lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), _hardsigmoid_grad,
    "``clamp(x / 6 + 1/2, 0, 1)`` (``torch.nn.functional.hardsigmoid``).",
    numba="({T}(0) if {0} <= {T}(-3) else ({T}(1) if {0} >= {T}(3) else {0} / {T}(6) + {T}(0.5)))",
    wgsl="select(select({0} / 6.0 + 0.5, {T}(1.0), {0} >= {T}(3.0)), {T}(0.0), {0} <= {T}(-3.0))",
    examples=_KINKS, **_F)
hardswish = define_elementwise(
    "hardswish", lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0, _hardswish_grad,
    "``x * clamp(x + 3, 0, 6) / 6`` (``torch.nn.functional.hardswish``).",
    # x * 0 below -3, as PyTorch's x * clamp(x + 3, 0, 6) / 6: -0 for negatives, NaN for -inf
    numba="({0} * {T}(0) if {0} <= {T}(-3) else ({0} if {0} >= {T}(3) else {0} * ({0} + {T}(3)) / {T}(6)))",
    wgsl="select(select({0} * ({0} + 3.0) / 6.0, {0}, {0} >= {T}(3.0)), "
         "select({T}(-0.0), {T}(f32_from_bits(0x7fc00000u)), isinf_{S}({0})), {0} <= {T}(-3.0))",
    examples=_KINKS, **_F)

_P = dict(predicate=True, nan=COMPARE, infer=_bool_result)
isinf = define_elementwise("isinf", np.isinf, None, "True where +-inf.", numba="(abs({0}) == np.inf)",
                           wgsl="select({T}(0.0), {T}(1.0), isinf_{S}({0}))", examples=_ex(_ANY, grad=False), **_P)
isfinite = define_elementwise("isfinite", np.isfinite, None, "True where neither NaN nor +-inf.",
                              numba="(abs({0}) < np.inf)", wgsl="select({T}(0.0), {T}(1.0), isfinite_{S}({0}))",
                              examples=_ex(_ANY, grad=False), **_P)


# --- binary ----------------------------------------------------------------------------------------
def _atan2_grad(g, y, a, b):
    r2 = a * a + b * b
    return (g * b / r2, -g * a / r2)


def _copysign_grad(g, y, a, b):
    zero = a == 0.0  # PyTorch: the ratio result / a, 0 where a is 0
    return (where(zero, 0.0, g * y / where(zero, 1.0, a)), None)


def _logaddexp_ref(a, b):
    with np.errstate(invalid="ignore"):
        return np.logaddexp(a, b)


_BIN = (InputSpec((3, 4), low=-2.0, high=2.0), InputSpec((4,), low=-2.0, high=2.0))
atan2 = define_elementwise("atan2", np.arctan2, _atan2_grad, "Angle of ``(b, a)`` in ``(-pi, pi]``: ``atan2(a, b)``.",
                           arity=2, numba="math.atan2({0}, {1})", wgsl="atan2_{S}({0}, {1})", infer=_float_binary,
                           examples=_ex(*_BIN), **_F)
hypot = define_elementwise("hypot", np.hypot, lambda g, y, a, b: (g * a / y, g * b / y),
                           "``sqrt(a**2 + b**2)`` without overflow; inf if either is inf.", arity=2,
                           numba="math.hypot({0}, {1})", wgsl="hypot_{S}({0}, {1})", infer=_float_binary,
                           examples=_ex(*_BIN), **_F)
copysign = define_elementwise("copysign", np.copysign, _copysign_grad, "``|a|`` with the sign of ``b``.", arity=2,
                              numba="math.copysign({0}, {1})",
                              wgsl="bitcast<{T}>((bitcast<{U}>({0}) & {U}(0x7fffffffu)) | "
                                   "(bitcast<{U}>({1}) & {U}(0x80000000u)))",
                              infer=_float_binary,
                              examples=_ex(InputSpec((3, 4), low=-2, high=2, away_from=(0.0,)),
                                           InputSpec((4,), low=-2, high=2, away_from=(0.0,))), **_F)
fmod = define_elementwise("fmod", np.fmod, lambda g, y, a, b: (g, -g * trunc(a / b)),
                          "C's ``fmod``: the remainder of ``a / b`` rounded toward zero (sign of ``a``).", arity=2,
                          numba=_fmod_numba, wgsl="fmod_{S}({0}, {1})", infer=_numeric_binary,
                          examples=_ex(InputSpec((3, 4), low=-3.0, high=3.0),
                                       InputSpec((4,), low=0.7, high=0.9), grad=False),
                          cost=HEAVY, exact_ints=True)
logaddexp = define_elementwise(
    "logaddexp", _logaddexp_ref, lambda g, y, a, b: (g * exp(a - y), g * exp(b - y)),
    "``log(exp(a) + exp(b))`` without overflow.", arity=2,
    numba="(({0} + {T}(0.6931471805599453)) if {0} == {1} else (({0} if {0} > {1} or {0} != {0} else {1}) "
          "+ {log1p}({exp}(-abs({0} - {1})))))",
    wgsl="logaddexp_{S}({0}, {1})", infer=_float_binary, examples=_ex(*_BIN), **_F)
