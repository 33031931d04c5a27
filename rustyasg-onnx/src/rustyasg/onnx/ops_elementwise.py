"""ONNX translators of the elementwise ops: direct ONNX ops from tables, composites as small functions."""

from __future__ import annotations

import math

import numpy as np

from .builder import onnx_dtype

#: RustyASG op -> ONNX op with the same semantics (operands already share a dtype).
DIRECT = {
    "abs": "Abs", "ceil": "Ceil", "cos": "Cos", "erf": "Erf", "exp": "Exp", "floor": "Floor", "log": "Log",
    "neg": "Neg", "reciprocal": "Reciprocal", "relu": "Relu", "round": "Round", "sigmoid": "Sigmoid",
    "sign": "Sign", "sin": "Sin", "sqrt": "Sqrt", "tanh": "Tanh", "identity": "Identity",
    "stop_gradient": "Identity", "isnan": "IsNaN",
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max", "minimum": "Min",
    "equal": "Equal", "greater": "Greater", "greater_equal": "GreaterOrEqual", "less": "Less",
    "less_equal": "LessOrEqual", "where": "Where", "matmul": "MatMul",
}


def _direct(onnx_op):
    def translate(b, node):
        return b.op(onnx_op, *node.inputs)
    translate.__name__ = f"to_{onnx_op}"
    return translate


def _c(b, node, value):
    """A scalar constant in the result's dtype."""
    return b.const(value, node.dtype)


def expm1(b, node):
    return b.op("Sub", b.op("Exp", node.inputs[0]), _c(b, node, 1.0))


def log1p(b, node):
    return b.op("Log", b.op("Add", node.inputs[0], _c(b, node, 1.0)))


def rsqrt(b, node):
    return b.op("Reciprocal", b.op("Sqrt", node.inputs[0]))


def square(b, node):
    x = node.inputs[0]
    return b.op("Mul", x, x)


def gelu(b, node):
    x = node.inputs[0]
    phi = b.op("Add", _c(b, node, 1.0), b.op("Erf", b.op("Mul", x, _c(b, node, 1.0 / math.sqrt(2.0)))))
    return b.op("Mul", b.op("Mul", x, _c(b, node, 0.5)), phi)


def gelu_tanh(b, node):
    x = node.inputs[0]
    cube = b.op("Mul", b.op("Mul", x, x), x)
    inner = b.op("Mul", _c(b, node, math.sqrt(2.0 / math.pi)), b.op("Add", x, b.op("Mul", cube, _c(b, node, 0.044715))))
    return b.op("Mul", b.op("Mul", x, _c(b, node, 0.5)), b.op("Add", _c(b, node, 1.0), b.op("Tanh", inner)))


def gelu_tanh_grad(b, node):
    g, x = node.inputs
    z2 = b.op("Mul", _c(b, node, 2 * math.sqrt(2.0 / math.pi)),
              b.op("Add", x, b.op("Mul", b.op("Mul", b.op("Mul", x, x), x), _c(b, node, 0.044715))))
    s = b.op("Sigmoid", z2)
    dz2 = b.op("Mul", _c(b, node, 2 * math.sqrt(2.0 / math.pi)),
               b.op("Add", _c(b, node, 1.0), b.op("Mul", b.op("Mul", x, x), _c(b, node, 3 * 0.044715))))
    slope = b.op("Add", s, b.op("Mul", b.op("Mul", x, b.op("Mul", s, b.op("Sub", _c(b, node, 1.0), s))), dz2))
    return b.op("Mul", g, slope)


def silu(b, node):
    x = node.inputs[0]
    return b.op("Mul", x, b.op("Sigmoid", x))


def softplus(b, node):
    x = node.inputs[0]
    beta, threshold = node.attrs["beta"], node.attrs["threshold"]
    bx = b.op("Mul", x, _c(b, node, beta))
    soft = b.op("Div", b.op("Softplus", bx), _c(b, node, beta))
    return b.op("Where", b.op("Greater", bx, _c(b, node, threshold)), x, soft)


def elu(b, node):
    return b.op("Elu", node.inputs[0], alpha=float(node.attrs["alpha"]))


def leaky_relu(b, node):
    return b.op("LeakyRelu", node.inputs[0], alpha=float(node.attrs["negative_slope"]))


def clamp(b, node):
    lo, hi = node.attrs["min"], node.attrs["max"]
    return b.op("Clip", node.inputs[0], None if lo is None else _c(b, node, lo), None if hi is None else _c(b, node, hi))


def mod(b, node):
    a, d = node.inputs
    if node.dtype.kind in "iu":
        return b.op("Mod", a, d, fmod=0)  # integer Mod takes the divisor's sign, as numpy does
    return b.op("Sub", a, b.op("Mul", b.op("Floor", b.op("Div", a, d)), d))


def floor_divide(b, node):
    a, d = node.inputs
    if node.dtype.kind in "iu":
        return b.op("Div", b.op("Sub", a, b.op("Mod", a, d, fmod=0)), d)
    return b.op("Floor", b.op("Div", a, d))


def _logical(onnx_op):
    def translate(b, node):
        args = [x if dt == np.bool_ else b.op("Cast", x, to=onnx_dtype(np.bool_))
                for x, dt in zip(node.inputs, node.input_dtypes)]  # numpy's logical ops take any dtype
        return b.op(onnx_op, *args)
    return translate


def not_equal(b, node):
    return b.op("Not", b.op("Equal", *node.inputs))


def cast(b, node):
    return b.op("Cast", node.inputs[0], to=onnx_dtype(node.attrs["dtype"]))


def one_hot(b, node):
    classes = b.const(np.arange(node.attrs["num_classes"], dtype=node.input_dtypes[0]))
    hit = b.op("Equal", b.op("Unsqueeze", node.inputs[0], b.ints([-1])), classes)
    return b.op("Cast", hit, to=onnx_dtype(node.dtype))


def _filled(value):
    def translate(b, node):
        fill = np.full((1,), value, dtype=node.dtype)
        return b.op("ConstantOfShape", b.shape(node.shape), value=_tensor(fill))
    return translate


def _tensor(arr):
    from onnx import numpy_helper

    return numpy_helper.from_array(arr)


TRANSLATORS = {op: _direct(onnx_op) for op, onnx_op in DIRECT.items()}
TRANSLATORS.update({
    "expm1": expm1, "log1p": log1p, "rsqrt": rsqrt, "square": square, "gelu": gelu, "gelu_tanh": gelu_tanh,
    "gelu_tanh_grad": gelu_tanh_grad,
    "silu": silu, "softplus": softplus, "elu": elu, "leaky_relu": leaky_relu, "clamp": clamp, "mod": mod,
    "floor_divide": floor_divide, "not_equal": not_equal,
    "logical_not": _logical("Not"), "logical_and": _logical("And"), "logical_or": _logical("Or"), "cast": cast, "one_hot": one_hot,
    "zeros_like": _filled(0), "ones_like": _filled(1),
})
