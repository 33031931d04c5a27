"""ONNX translators of the core's wider math, bitwise, scan and sort ops (opset 18).

Direct ONNX ops where ONNX has one (``Tan``, ``Asinh``, ``HardSwish``, ``CumSum``, ``TopK`` ...);
small compositions where it does not (``atan2``, ``logaddexp``, shifts of signed integers). Scans
ONNX has no operator for (``cumprod``, the running arg-max) are unrolled along their axis, which
must then have a static size. ``bitcast`` exports from int32 to float32 (the bits decoded with
integer arithmetic); the other direction has no ONNX form before opset 24 and is refused.
"""

from __future__ import annotations

import math

import numpy as np

from .ops_elementwise import _direct
from .translate import OnnxExportError

DIRECT = {"tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
          "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "isinf": "IsInf", "hardswish": "HardSwish"}


def _c(b, node, value, dtype=None):
    return b.const(value, dtype if dtype is not None else node.dtype)


def _scaled_log(base):
    def translate(b, node):
        return b.op("Div", b.op("Log", node.inputs[0]), _c(b, node, math.log(base)))
    return translate


def exp2(b, node):
    return b.op("Exp", b.op("Mul", node.inputs[0], _c(b, node, math.log(2.0))))


def _trunc(b, x, dtype):
    if np.dtype(dtype).kind != "f":
        return x
    return b.op("Where", b.op("Less", x, b.const(0.0, dtype)), b.op("Ceil", x), b.op("Floor", x))


def trunc(b, node):
    return _trunc(b, node.inputs[0], node.dtype)


def frac(b, node):
    x = node.inputs[0]
    return b.op("Sub", x, _trunc(b, x, node.dtype))


def isfinite(b, node):
    x = node.inputs[0]
    if node.input_dtypes[0].kind != "f":
        return b.op("Not", b.op("Equal", x, b.op("Add", x, b.const(1, node.input_dtypes[0]))))
    return b.op("Not", b.op("Or", b.op("IsInf", x), b.op("IsNaN", x)))


def atan2(b, node):
    a, d = node.inputs
    zero = _c(b, node, 0.0)
    r = b.op("Atan", b.op("Div", a, d))
    turn = b.op("Where", b.op("GreaterOrEqual", a, zero), _c(b, node, math.pi), _c(b, node, -math.pi))
    r = b.op("Where", b.op("Less", d, zero), b.op("Add", r, turn), r)
    both_zero = b.op("And", b.op("Equal", a, zero), b.op("Equal", d, zero))
    return b.op("Where", both_zero, zero, r)


def hypot(b, node):
    a, d = node.inputs
    return b.op("Sqrt", b.op("Add", b.op("Mul", a, a), b.op("Mul", d, d)))


def copysign(b, node):
    a, d = node.inputs
    mag = b.op("Abs", a)
    return b.op("Where", b.op("Less", d, _c(b, node, 0.0)), b.op("Neg", mag), mag)


def fmod(b, node):
    return b.op("Mod", *node.inputs, fmod=1)


def logaddexp(b, node):
    a, d = node.inputs
    tail = b.op("Log", b.op("Add", _c(b, node, 1.0), b.op("Exp", b.op("Neg", b.op("Abs", b.op("Sub", a, d))))))
    return b.op("Add", b.op("Max", a, d), tail)


def hardsigmoid(b, node):
    return b.op("HardSigmoid", node.inputs[0], alpha=1.0 / 6.0, beta=0.5)


def _bitwise(int_op, bool_op):
    def translate(b, node):
        return b.op(bool_op if node.dtype == np.bool_ else int_op, *node.inputs)
    return translate


def _shift(left):
    def translate(b, node):
        a, n = node.inputs
        dt = node.dtype
        bits = dt.itemsize * 8
        big = b.op("Or", b.op("GreaterOrEqual", n, b.const(bits - 1, dt)), b.op("Less", n, b.const(0, dt)))
        power = b.op("Pow", b.const(2, dt), b.op("Clip", n, b.const(0, dt), b.const(bits - 2, dt)))
        if left:
            shifted = b.op("Mul", a, power)
            top = b.op("Mul", b.op("Mul", a, b.op("Pow", b.const(2, dt), b.const(bits - 2, dt))), b.const(2, dt))
            over = b.op("Where", b.op("Equal", n, b.const(bits - 1, dt)), top, b.const(0, dt))
        else:  # arithmetic: floor division by 2**n
            shifted = b.op("Div", b.op("Sub", a, b.op("Mod", a, power, fmod=0)), power)
            over = b.op("Where", b.op("Less", a, b.const(0, dt)), b.const(-1, dt), b.const(0, dt))
        return b.op("Where", big, over, shifted)
    return translate


def bitcast(b, node):
    src, dst = node.input_dtypes[0], node.dtype
    if (src, dst) != (np.dtype(np.int32), np.dtype(np.float32)):
        raise OnnxExportError(f"bitcast {src} -> {dst} has no ONNX operator before opset 24 "
                              "(int32 -> float32 is exported, decoded from the bits)")
    x = node.inputs[0]
    i32, f32 = np.int32, np.float32
    low = b.op("BitwiseAnd", x, b.const(0x7FFFFFFF, i32))
    exponent = b.op("Cast", b.op("Div", low, b.const(1 << 23, i32)), to=1)
    mantissa = b.op("Div", b.op("Cast", b.op("BitwiseAnd", x, b.const(0x7FFFFF, i32)), to=1), b.const(2.0 ** 23, f32))
    normal = b.op("Mul", b.op("Add", mantissa, b.const(1.0, f32)),
                  b.op("Pow", b.const(2.0, f32), b.op("Sub", exponent, b.const(127.0, f32))))
    tiny = b.op("Mul", mantissa, b.const(2.0 ** -126, f32))
    special = b.op("Where", b.op("Equal", mantissa, b.const(0.0, f32)), b.const(np.inf, f32), b.const(np.nan, f32))
    value = b.op("Where", b.op("Equal", exponent, b.const(0.0, f32)), tiny,
                 b.op("Where", b.op("Equal", exponent, b.const(255.0, f32)), special, normal))
    return b.op("Where", b.op("Less", x, b.const(0, i32)), b.op("Neg", value), value)


# --- scans ---------------------------------------------------------------------------------------
def _axis(node):
    rank = node.rank
    return node.attrs["axis"] % rank if rank else 0


def _static_length(node, what):
    if not node.rank:
        return 1
    n = node.input_shapes[0][_axis(node)]
    if not isinstance(n, (int, np.integer)):
        raise OnnxExportError(f"{what} along a symbolic axis has no ONNX form (it is unrolled): give the axis a size")
    return int(n)


def _steps(b, node, what):
    """The operand's slices along the axis (kept as size-1 axes)."""
    n = _static_length(node, what)
    x = node.inputs[0]
    if not node.rank:
        return x, [x], 0
    ax = _axis(node)
    parts = b.op("Split", x, b.ints([1] * n), axis=ax, outputs=n) if n > 1 else [x]
    return x, (parts if isinstance(parts, list) else [parts]), ax


def cumsum(b, node):
    if not node.rank:
        return b.op("Identity", node.inputs[0])
    x = node.inputs[0]
    if node.input_dtypes[0] != node.dtype:
        x = b.op("Cast", x, to=_onnx(node.dtype))
    return b.op("CumSum", x, b.const(np.int64(_axis(node))))


def _onnx(dtype):
    from .builder import onnx_dtype

    return onnx_dtype(dtype)


def cumprod(b, node):
    _, parts, ax = _steps(b, node, "cumprod")
    if node.input_dtypes[0] != node.dtype:
        parts = [b.op("Cast", p, to=_onnx(node.dtype)) for p in parts]
    running, outs = None, []
    for p in parts:
        running = p if running is None else b.op("Mul", running, p)
        outs.append(running)
    return outs[0] if len(outs) == 1 else b.op("Concat", *outs, axis=ax)


def logcumsumexp(b, node):
    x = node.inputs[0]
    if not node.rank:
        return b.op("Identity", x)
    ax = _axis(node)
    m = b.op("ReduceMax", x, b.ints([ax]), keepdims=1)
    m = b.op("Where", b.op("IsInf", m), _c(b, node, 0.0), m)
    total = b.op("CumSum", b.op("Exp", b.op("Sub", x, m)), b.const(np.int64(ax)))
    return b.op("Add", b.op("Log", total), m)


def _running_index(better):
    def translate(b, node):
        _, parts, ax = _steps(b, node, node.op)
        best, index, outs = None, None, []
        for r, p in enumerate(parts):
            here = b.const(np.int64(r))
            if best is None:
                best, index = p, b.op("Mul", b.op("Cast", p, to=_onnx(np.int64)), b.const(np.int64(0)))
            else:
                take = b.op(better, p, best)
                if node.input_dtypes[0].kind == "f":
                    take = b.op("Or", take, b.op("IsNaN", p))
                best = b.op("Where", take, p, best)
                index = b.op("Where", take, here, index)
            outs.append(index)
        return outs[0] if len(outs) == 1 else b.op("Concat", *outs, axis=ax)
    return translate


def argsort(b, node):
    n = _static_length(node, "argsort")
    if not node.rank:
        return b.op("Mul", b.op("Cast", node.inputs[0], to=_onnx(np.int64)), b.const(np.int64(0)))
    _, indices = b.op("TopK", node.inputs[0], b.ints([n]), axis=_axis(node),
                      largest=int(bool(node.attrs["descending"])), sorted=1, outputs=2)
    return indices


TRANSLATORS = {op: _direct(onnx_op) for op, onnx_op in DIRECT.items()}
TRANSLATORS.update({
    "log2": _scaled_log(2.0), "log10": _scaled_log(10.0), "exp2": exp2, "trunc": trunc, "frac": frac,
    "isfinite": isfinite, "atan2": atan2, "hypot": hypot, "copysign": copysign, "fmod": fmod, "logaddexp": logaddexp,
    "hardsigmoid": hardsigmoid,
    "bitwise_and": _bitwise("BitwiseAnd", "And"), "bitwise_or": _bitwise("BitwiseOr", "Or"),
    "bitwise_xor": _bitwise("BitwiseXor", "Xor"), "bitwise_not": lambda b, node: b.op(
        "Not" if node.dtype == np.bool_ else "BitwiseNot", node.inputs[0]),
    "bitwise_left_shift": _shift(True), "bitwise_right_shift": _shift(False), "bitcast": bitcast,
    "cumsum": cumsum, "cumprod": cumprod, "logcumsumexp": logcumsumexp,
    "cummax_indices": _running_index("GreaterOrEqual"), "cummin_indices": _running_index("LessOrEqual"),
    "argsort": argsort,
})
