"""Elementwise ops: unary math, activations, binary arithmetic, comparisons, where, cast.

Each op is one row of a table: name, float64 reference, gradient rule, and the
input domain the conformance kit samples. Binary ops broadcast with numpy's rules
and promote dtypes with :mod:`rustyasg.core.dtypes`; the gradient of a
broadcast operand is summed back to its shape by autograd.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((4,), name="x")
    >>> rg.sigmoid(x).op
    'sigmoid'
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType, as_float
from ..shapes import broadcast_shapes
from ._define import defop

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def erf_ref(x):
    return np.asarray(_erf(np.asarray(x, np.float64)), np.float64)  # frompyfunc gives a bare float on 0-d


def _float_result(types, **_):
    t = types[0]
    dt = t.dtype if dtypes.is_floating(t.dtype) else dtypes.DEFAULT_FLOAT
    return TensorType(t.shape, dt)


def _same_result(types, **_):
    return types[0]


def _bool_result(types, **_):
    return TensorType(types[0].shape, dtypes.bool_)


def _numeric_only(types, **_):
    if types[0].dtype == dtypes.bool_:
        raise TypeError("needs a numeric operand, got bool")
    return types[0]


# Domains for the conformance kit.
ANY = InputSpec((3, 4))
POSITIVE = InputSpec((3, 4), low=0.2, high=2.0)
KINKED = InputSpec((3, 4), low=-2.0, high=2.0, away_from=(0.0,), margin=0.05)


def _u(name, ref, grad, doc, *, infer=_float_result, domain=ANY, attrs=None, example_attrs=None,
       differentiable=True):
    ex = Example((domain,), example_attrs or {}, check_grad=differentiable)
    return defop(name, infer=infer, reference=ref, grad=grad, doc=doc, kind="elementwise",
                 attrs=attrs, examples=(ex,))


# --- unary -------------------------------------------------------------------
neg = _u("neg", np.negative, lambda g, y, x: (-g,), "Elementwise negation, ``-x``.", infer=_numeric_only)
abs = _u("abs", np.abs, lambda g, y, x: (g * sign(x),), "Absolute value.", infer=_numeric_only, domain=KINKED)
sign = _u("sign", np.sign, lambda g, y, x: (None,), "Sign (-1, 0, 1); zero gradient.",
          infer=_numeric_only, differentiable=False)
exp = _u("exp", np.exp, lambda g, y, x: (g * y,), "Exponential.")
log = _u("log", np.log, lambda g, y, x: (g / x,), "Natural logarithm.", domain=POSITIVE)
log1p = _u("log1p", np.log1p, lambda g, y, x: (g / (x + 1.0),), "``log(1 + x)``, accurate near 0.", domain=POSITIVE)
expm1 = _u("expm1", np.expm1, lambda g, y, x: (g * (y + 1.0),), "``exp(x) - 1``, accurate near 0.")
sqrt = _u("sqrt", np.sqrt, lambda g, y, x: (g * 0.5 / y,), "Square root.", domain=POSITIVE)
rsqrt = _u("rsqrt", lambda x: 1.0 / np.sqrt(x), lambda g, y, x: (g * -0.5 * y / x,),
           "Reciprocal square root ``1/sqrt(x)``.", domain=POSITIVE)
square = _u("square", np.square, lambda g, y, x: (g * 2.0 * x,), "``x * x``.", infer=_numeric_only)
reciprocal = _u("reciprocal", np.reciprocal, lambda g, y, x: (-g * y * y,), "``1 / x``.", domain=POSITIVE)
sin = _u("sin", np.sin, lambda g, y, x: (g * cos(x),), "Sine.")
cos = _u("cos", np.cos, lambda g, y, x: (-g * sin(x),), "Cosine.")
tanh = _u("tanh", np.tanh, lambda g, y, x: (g * (1.0 - y * y),), "Hyperbolic tangent.")
erf = _u("erf", erf_ref, lambda g, y, x: (g * (2.0 / math.sqrt(math.pi)) * exp(-x * x),), "Gauss error function.")
sigmoid = _u("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)), lambda g, y, x: (g * y * (1.0 - y),),
             "Logistic sigmoid ``1 / (1 + exp(-x))``.")
relu = _u("relu", lambda x: np.maximum(x, 0.0), lambda g, y, x: (where(x > 0, g, 0.0),),
          "Rectified linear unit ``max(x, 0)``.", infer=_numeric_only, domain=KINKED)
leaky_relu = _u("leaky_relu", lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
                lambda g, y, x, negative_slope: (where(x > 0, g, g * negative_slope),),
                "Leaky ReLU: ``x if x > 0 else negative_slope * x``.", domain=KINKED,
                attrs={"negative_slope": Attr(as_float, 0.01)}, example_attrs={"negative_slope": 0.1})
elu = _u("elu", lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
         lambda g, y, x, alpha: (where(x > 0, g, g * (y + alpha)),),
         "ELU: ``x if x > 0 else alpha * (exp(x) - 1)``.", domain=KINKED,
         attrs={"alpha": Attr(as_float, 1.0)}, example_attrs={"alpha": 0.7})
gelu = _u("gelu", lambda x: 0.5 * x * (1.0 + erf_ref(x / _SQRT2)),
          lambda g, y, x: (g * (0.5 * (1.0 + erf(x * (1 / _SQRT2))) + x * exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))),),
          "GELU, exact form ``x * Phi(x)``.")


def _gelu_tanh_ref(x):
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))


def _gelu_tanh_grad(g, y, x):
    # one op, as PyTorch's gelu_backward: under autocast its 16-bit result is rounded once, not
    # after each of the dozen products and sums of the derivative
    return (gelu_tanh_grad(g, x),)


gelu_tanh = _u("gelu_tanh", _gelu_tanh_ref, _gelu_tanh_grad, "GELU, tanh approximation (``approximate='tanh'``).")


silu = _u("silu", lambda x: x / (1.0 + np.exp(-x)),
          lambda g, y, x: (g * sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x))),), "SiLU / Swish: ``x * sigmoid(x)``.")


def _softplus_ref(x, beta, threshold):
    bx = beta * x
    return np.where(bx > threshold, x, np.logaddexp(0.0, bx) / beta)


softplus = _u("softplus", _softplus_ref,
              lambda g, y, x, beta, threshold: (where(x * beta > threshold, g, g * sigmoid(x * beta)),),
              "Softplus ``log(1 + exp(beta*x)) / beta``; linear above ``threshold`` as in PyTorch.",
              attrs={"beta": Attr(as_float, 1.0), "threshold": Attr(as_float, 20.0)},
              example_attrs={"beta": 1.5, "threshold": 20.0})


def _opt_float(v):
    return None if v is None else float(v)


def _clamp_ref(x, min, max):  # noqa: A002 - PyTorch's names
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    return np.clip(x, lo, hi)


def _clamp_grad(g, y, x, min, max):  # noqa: A002
    keep = None
    if min is not None:
        keep = x >= min
    if max is not None:
        keep = (x <= max) if keep is None else logical_and(keep, x <= max)
    return (g if keep is None else where(keep, g, 0.0),)


clamp = _u("clamp", _clamp_ref, _clamp_grad, "Clamp into ``[min, max]`` (either bound may be None).",
           infer=_numeric_only, attrs={"min": Attr(_opt_float, None), "max": Attr(_opt_float, None)},
           domain=InputSpec((3, 4), low=-2, high=2, away_from=(-0.5, 0.5)), example_attrs={"min": -0.5, "max": 0.5})
floor = _u("floor", np.floor, lambda g, y, x: (None,), "Round down; zero gradient.", infer=_same_result,
           differentiable=False)
ceil = _u("ceil", np.ceil, lambda g, y, x: (None,), "Round up; zero gradient.", infer=_same_result,
          differentiable=False)
round = _u("round", np.round, lambda g, y, x: (None,), "Round half to even; zero gradient.", infer=_same_result,
           differentiable=False)
logical_not = _u("logical_not", np.logical_not, None, "Boolean not.", infer=_bool_result, differentiable=False)
isnan = _u("isnan", np.isnan, None, "True where NaN.", infer=_bool_result, differentiable=False)


def _cast_infer(types, dtype):
    return TensorType(types[0].shape, dtype)


def _cast_grad(g, y, x, dtype):
    return (g.astype(x.dtype) if dtypes.is_floating(x.dtype) else None,)


#: Float -> integer conversion as PyTorch on x86 (C's cvtt* instructions): truncation toward zero;
#: NaN, +-inf and values outside the range give the range's minimum ("integer indefinite"), of
#: int32 for int32 and narrower targets (then wrapped to the target's bits), of int64 for int64 and
#: uint32. numpy leaves out-of-range conversions undefined (platform-dependent); every backend
#: follows this rule instead.
FLOAT_TO_INT_VIA = {np.dtype(d): np.dtype(w) for d, w in (
    ("int8", "int32"), ("uint8", "int32"), ("int16", "int32"), ("uint16", "int32"), ("int32", "int32"),
    ("uint32", "int64"), ("int64", "int64"))}


def float_to_int(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` (floats) converted to the integer ``dtype`` by :data:`FLOAT_TO_INT_VIA`'s rule.

    >>> float_to_int(np.array([300.0, -2.7, np.nan, 1e10]), np.int8).tolist()
    [44, -2, 0, 0]
    """
    dtype = np.dtype(dtype)
    via = FLOAT_TO_INT_VIA.get(dtype)
    if via is None:
        return x.astype(dtype)
    info = np.iinfo(via)
    with np.errstate(invalid="ignore"):
        inside = (x >= float(info.min)) & (x < -float(info.min))
        wide = np.where(inside, np.trunc(np.where(inside, x, 0)), info.min).astype(via)
    return wide.astype(dtype)


def _cast_ref(x, dtype):
    if np.asarray(x).dtype.kind == "f" and np.dtype(dtype).kind in "iu":
        return float_to_int(np.asarray(x), dtype)
    return x.astype(dtype)


cast = defop("cast", infer=_cast_infer, reference=_cast_ref, grad=_cast_grad,
             attrs={"dtype": Attr(dtypes.as_dtype)}, kind="elementwise",
             doc="Convert to ``dtype``; the gradient is cast back.",
             examples=(Example((ANY,), {"dtype": dtypes.float32}, check_grad=False, rtol=1e-6),))


# --- binary --------------------------------------------------------------------
def _broadcast_infer(types, **_):
    return TensorType(broadcast_shapes(types[0].shape, types[1].shape), types[0].dtype)


def _compare_infer(types, **_):
    return TensorType(broadcast_shapes(types[0].shape, types[1].shape), dtypes.bool_)


def _numeric_binary(types, **_):
    if types[0].dtype == dtypes.bool_:
        raise TypeError("arithmetic on bool tensors; cast them first")
    return _broadcast_infer(types)


BCAST = (InputSpec((3, 4)), InputSpec((4,)))


def _b(name, ref, grad, doc, *, infer=_numeric_binary, inputs=BCAST, differentiable=True):
    return defop(name, infer=infer, reference=ref, grad=grad, doc=doc, kind="elementwise", num_inputs=2,
                 promote=True, examples=(Example(inputs, check_grad=differentiable),))


def _bool_closed_binary(types, **_):
    # PyTorch: bool + bool and bool * bool stay bool (or, and); only subtraction of bools is refused.
    return _broadcast_infer(types)


add = _b("add", np.add, lambda g, y, a, b: (g, g), "``a + b`` with broadcasting (logical or on bools, as PyTorch).",
         infer=_bool_closed_binary)
sub = _b("sub", np.subtract, lambda g, y, a, b: (g, -g), "``a - b`` with broadcasting.")
mul = _b("mul", np.multiply, lambda g, y, a, b: (g * b, g * a),
         "``a * b`` with broadcasting (logical and on bools, as PyTorch).", infer=_bool_closed_binary)


def _div_infer(types, **_):
    t = _numeric_binary(types)
    return TensorType(t.shape, t.dtype if dtypes.is_floating(t.dtype) else dtypes.DEFAULT_FLOAT)


div = _b("div", np.true_divide, lambda g, y, a, b: (g / b, -g * y / b), "``a / b`` (true division).",
         infer=_div_infer, inputs=(InputSpec((3, 4)), InputSpec((4,), low=0.5, high=2.0)))


def _pow_grad(g, y, a, b):
    # d/da a**0 is 0 everywhere, also at a = 0 where a**-1 is inf (PyTorch masks it the same way).
    return (where(b == 0, 0.0, g * b * a ** (b - 1.0)), g * y * log(where(a > 0, a, 1.0)))


pow = _b("pow", np.power, _pow_grad, "``a ** b``; the exponent's gradient uses ``log(a)`` (a > 0).",
         inputs=(InputSpec((3, 4), low=0.5, high=2.0), InputSpec((4,), low=-1.5, high=1.5)))


def _max_grad(g, y, a, b):
    # PyTorch splits the gradient evenly between tied operands.
    half = g * 0.5
    return (where(a > b, g, where(a == b, half, 0.0)), where(b > a, g, where(a == b, half, 0.0)))


def _min_grad(g, y, a, b):
    half = g * 0.5
    return (where(a < b, g, where(a == b, half, 0.0)), where(b < a, g, where(a == b, half, 0.0)))


maximum = _b("maximum", np.maximum, _max_grad, "Elementwise maximum (ties share the gradient).")
minimum = _b("minimum", np.minimum, _min_grad, "Elementwise minimum (ties share the gradient).")
mod = _b("mod", np.mod, lambda g, y, a, b: (g, -g * floor(a / b)),
         "Remainder with the sign of the divisor (numpy/PyTorch ``%``).",
         inputs=(InputSpec((3, 4), low=0.1, high=3.0), InputSpec((4,), low=0.7, high=0.9)), differentiable=False)
floor_divide = _b("floor_divide", np.floor_divide, lambda g, y, a, b: (None, None), "``a // b``; zero gradient.",
                  differentiable=False)

_CMP = (InputSpec((3, 4)), InputSpec((4,)))
equal = _b("equal", np.equal, None, "``a == b``.", infer=_compare_infer, inputs=_CMP, differentiable=False)
not_equal = _b("not_equal", np.not_equal, None, "``a != b``.", infer=_compare_infer, inputs=_CMP, differentiable=False)
less = _b("less", np.less, None, "``a < b``.", infer=_compare_infer, inputs=_CMP, differentiable=False)
less_equal = _b("less_equal", np.less_equal, None, "``a <= b``.", infer=_compare_infer, inputs=_CMP,
                differentiable=False)
greater = _b("greater", np.greater, None, "``a > b``.", infer=_compare_infer, inputs=_CMP, differentiable=False)
greater_equal = _b("greater_equal", np.greater_equal, None, "``a >= b``.", infer=_compare_infer, inputs=_CMP,
                   differentiable=False)


def _gelu_tanh_slope(x, sig=None, exp_=np.exp):
    # With s = sigmoid(2z) = (1 + tanh(z)) / 2 the derivative is s + 2 x s (1 - s) z'. Far out s is
    # exactly 0 or 1, where 1 - tanh(z)**2 would keep a float32 tanh's last ulp (times x**3).
    k = 2 * _SQRT_2_OVER_PI
    z2 = k * (x + 0.044715 * x * x * x)
    s = sig(z2) if sig is not None else 1.0 / (1.0 + exp_(-z2))
    dz2 = k * (1.0 + 3 * 0.044715 * x * x)
    return s, s * (1.0 - s), dz2


def _gelu_tanh_grad_ref(g, x):
    with np.errstate(over="ignore"):
        s, t, dz2 = _gelu_tanh_slope(np.asarray(x, np.float64))
    return g * (s + x * t * dz2)


def _gelu_tanh_grad_grad(gy, y, g, x):
    # d/dx of s + x t z2' with t = s (1 - s), t' = t (1 - 2 s) z2', z2'' = 6 k c x
    s, t, dz2 = _gelu_tanh_slope(x, sig=sigmoid)
    slope2 = 2.0 * t * dz2 + x * t * (1.0 - 2.0 * s) * dz2 * dz2 + x * t * (6 * 2 * _SQRT_2_OVER_PI * 0.044715) * x
    return gelu_tanh_grad(gy, x), gy * g * slope2


gelu_tanh_grad = _b("gelu_tanh_grad", _gelu_tanh_grad_ref, _gelu_tanh_grad_grad,
                    "``g * gelu_tanh'(x)``: the gradient of :func:`gelu_tanh` as one op (PyTorch's gelu_backward).",
                    infer=_broadcast_infer, inputs=(InputSpec((3, 4)), InputSpec((3, 4))))


def _logical_infer(types, **_):
    return TensorType(broadcast_shapes(types[0].shape, types[1].shape), dtypes.bool_)


_BOOLS = (InputSpec((3, 4), dtype="bool"), InputSpec((4,), dtype="bool"))
logical_and = _b("logical_and", np.logical_and, None, "Boolean and.", infer=_logical_infer, inputs=_BOOLS,
                 differentiable=False)
logical_or = _b("logical_or", np.logical_or, None, "Boolean or.", infer=_logical_infer, inputs=_BOOLS,
                differentiable=False)


# --- where ---------------------------------------------------------------------
def _where_infer(types, **_):
    cond, a, b = types
    if cond.dtype != dtypes.bool_:
        raise TypeError(f"condition must be bool, got {cond.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"branches have different dtypes {a.dtype} and {b.dtype}")
    return TensorType(broadcast_shapes(cond.shape, a.shape, b.shape), a.dtype)


_where_op = defop("where", infer=_where_infer, reference=lambda c, a, b: np.where(c, a, b),
                  grad=lambda g, y, c, a, b: (None, where(c, g, 0.0), where(c, 0.0, g)),
                  doc="Select ``a`` where ``cond`` else ``b``, broadcasting all three.", kind="elementwise",
                  num_inputs=3,
                  examples=(Example((InputSpec((3, 4), dtype="bool"), InputSpec((3, 4)), InputSpec((4,))),),))


def where(cond, a, b, name=None):
    """``a`` where ``cond`` is true, else ``b``; scalars adopt the other branch's dtype.

    >>> import rustyasg.core as rg
    >>> x = rg.input((3,), name="x")
    >>> rg.where(x > 0, x, 0.0).dtype
    dtype('float32')
    """
    from ..graph import Tensor, as_tensor, _promote

    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a, b = as_tensor(a, like), as_tensor(b, like)
    a, b = _promote([a, b])
    return _where_op(as_tensor(cond), a, b, name=name)


