"""ONNX translators of reductions (sum, mean, max, min, prod, var, logsumexp, arg*, softmax, sum_to, dim_size)."""

from __future__ import annotations

from .builder import onnx_dtype


def norm_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, an int or a tuple) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis)) if ndim else ()


def reduce(b, onnx_op: str, x: str, axes: tuple, keepdims: bool) -> str:
    if not axes:  # ONNX reduces everything when given no axes: reducing nothing is the identity
        return b.op("Identity", x)
    return b.op(onnx_op, x, b.ints(axes), keepdims=int(keepdims))


def _reduction(onnx_op):
    def translate(b, node):
        axes = norm_axes(node.attrs["axis"], node.rank)
        return reduce(b, onnx_op, node.inputs[0], axes, node.attrs["keepdims"])
    return translate


def count(b, node, axes, dtype) -> str:
    """How many elements the reduction over ``axes`` averages, as a scalar of ``dtype``."""
    n = b.numel([node.input_shapes[0][a] for a in axes])
    return b.op("Cast", b.op("Reshape", n, b.ints([])), to=onnx_dtype(dtype))


def var(b, node):
    x = node.inputs[0]
    axes = norm_axes(node.attrs["axis"], node.rank)
    centered = b.op("Sub", x, reduce(b, "ReduceMean", x, axes, True))
    total = reduce(b, "ReduceSum", b.op("Mul", centered, centered), axes, node.attrs["keepdims"])
    n = b.op("Sub", count(b, node, axes, node.dtype), b.const(float(node.attrs["correction"]), node.dtype))
    return b.op("Div", total, n)


def logsumexp(b, node):
    x = node.inputs[0]
    axes = norm_axes(node.attrs["axis"], node.rank)
    m = reduce(b, "ReduceMax", x, axes, True)
    out = b.op("Add", b.op("Log", reduce(b, "ReduceSum", b.op("Exp", b.op("Sub", x, m)), axes, True)), m)
    if node.attrs["keepdims"] or not axes:
        return out
    return b.op("Squeeze", out, b.ints(axes))


def _arg(onnx_op):
    def translate(b, node):
        x, axis = node.inputs[0], node.attrs["axis"]
        if axis is None or node.rank == 0:
            flat = b.op(onnx_op, b.op("Reshape", x, b.ints([-1])), axis=0, keepdims=0)
            return b.op("Reshape", flat, b.ints([1] * node.rank if node.attrs["keepdims"] else []))
        return b.op(onnx_op, x, axis=axis % node.rank, keepdims=int(node.attrs["keepdims"]))
    return translate


def softmax(b, node):
    return b.op("Softmax", node.inputs[0], axis=node.attrs["axis"] % node.rank)


def log_softmax(b, node):
    return b.op("LogSoftmax", node.inputs[0], axis=node.attrs["axis"] % node.rank)


def sum_to(b, node):
    """Sum a broadcast value back to ``shape``: drop leading axes, keep size-1 axes."""
    src, target = node.input_shapes[0], tuple(node.shape)
    lead = len(src) - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, t in enumerate(target) if t == 1 and src[lead + i] != 1)
    summed = reduce(b, "ReduceSum", node.inputs[0], axes, True)
    return b.op("Reshape", summed, b.shape(target))


def dim_size(b, node):
    axes = norm_axes(node.attrs["axis"], node.rank)
    return count(b, node, axes, node.dtype)


TRANSLATORS = {
    "sum": _reduction("ReduceSum"), "mean": _reduction("ReduceMean"), "max": _reduction("ReduceMax"),
    "min": _reduction("ReduceMin"), "prod": _reduction("ReduceProd"), "var": var, "logsumexp": logsumexp,
    "argmax": _arg("ArgMax"), "argmin": _arg("ArgMin"), "softmax": softmax, "log_softmax": log_softmax,
    "sum_to": sum_to, "dim_size": dim_size,
}
