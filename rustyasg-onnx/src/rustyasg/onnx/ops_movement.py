"""ONNX translators of movement ops: reshape, transpose, slicing, padding, indexing and scatters."""

from __future__ import annotations

import numpy as np

from rustyasg.core.shapes import Dim, is_static

from .builder import INT64_MAX, INT64_MIN
from .translate import OnnxExportError


def reshape(b, node):
    return b.op("Reshape", node.inputs[0], b.shape(node.shape))


def transpose(b, node):
    return b.op("Transpose", node.inputs[0], perm=[a % node.rank for a in node.attrs["axes"]])


def broadcast_to(b, node):
    return b.op("Expand", node.inputs[0], b.shape(node.shape))


def concat(b, node):
    return b.op("Concat", *node.inputs, axis=node.attrs["axis"] % len(node.shape))


def _slice_bounds(starts, stops, steps):
    """ONNX Slice starts/ends/axes/steps for Python slices (``None`` ends by the step's sign)."""
    out = ([], [], [], [])
    for axis, (a, e, s) in enumerate(zip(starts, stops, steps)):
        if (a in (None, 0)) and e is None and s == 1:
            continue
        out[0].append((0 if s > 0 else INT64_MAX) if a is None else a)
        out[1].append((INT64_MAX if s > 0 else INT64_MIN) if e is None else e)
        out[2].append(axis)
        out[3].append(s)
    return out


def slice_(b, node):
    starts, ends, axes, steps = _slice_bounds(node.attrs["starts"], node.attrs["stops"], node.attrs["steps"])
    if not axes:
        return b.op("Identity", node.inputs[0])
    return b.op("Slice", node.inputs[0], b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps))


def slice_grad(b, node):
    """Zeros of the source shape with the gradient written where the slice read."""
    g, shape = node.inputs[0], tuple(node.shape)
    starts, stops, steps = node.attrs["starts"], node.attrs["stops"], node.attrs["steps"]
    if all(s == 1 for s in steps):  # a contiguous block: pad around it
        before, after = [], []
        for d, a, e in zip(shape, starts, stops):
            if isinstance(d, Dim):
                before.append(0), after.append(0)
                continue
            lo, hi, _ = slice(a, e, 1).indices(d)
            hi = max(hi, lo)
            before.append(lo), after.append(d - hi)
        return b.op("Pad", g, b.ints(before + after), b.const(0, node.dtype))
    if not is_static(shape):
        raise OnnxExportError(f"slice_grad: a strided slice's gradient (steps {tuple(steps)}) exports only with "
                              f"static shapes, got {shape}; export with a concrete batch size")
    flat = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    where = flat[tuple(slice(a, e, s) for a, e, s in zip(starts, stops, steps))].reshape(-1)
    zeros = b.const(np.zeros(flat.size, node.dtype))
    out = b.op("ScatterElements", zeros, b.const(where), b.op("Reshape", g, b.ints([-1])), axis=0)
    return b.op("Reshape", out, b.ints(shape))


def pad(b, node):
    widths = node.attrs["pad_width"]
    pads = list(widths[0::2]) + list(widths[1::2])
    return b.op("Pad", node.inputs[0], b.ints(pads), b.const(node.attrs["value"], node.dtype))


def flip(b, node):
    axes = [a % node.rank for a in node.attrs["axes"]] if node.attrs["axes"] is not None else list(range(node.rank))
    if not axes:
        return b.op("Identity", node.inputs[0])
    n = len(axes)
    return b.op("Slice", node.inputs[0], b.ints([-1] * n), b.ints([INT64_MIN] * n), b.ints(axes), b.ints([-1] * n))


def take(b, node):
    return b.op("Gather", node.inputs[0], node.inputs[1], axis=node.attrs["axis"] % node.rank)


def take_grad(b, node):
    """Scatter-add the rows of ``g`` into ``size`` zero rows along ``axis``."""
    g, idx = node.inputs
    out_rank = len(node.shape)
    ax = node.attrs["axis"] % out_rank
    idx_rank = len(node.input_shapes[1])
    gshape = node.input_shapes[0]
    rows = gshape[:ax] + (b_numel_dim(gshape[ax:ax + idx_rank]),) + gshape[ax + idx_rank:]
    g3 = b.op("Reshape", g, b.shape(rows))
    flat_idx = b.op("Reshape", idx, b.ints([1] * ax + [-1] + [1] * (out_rank - ax - 1)))
    full_idx = b.op("Expand", flat_idx, b.shape(rows))
    zeros = b.op("ConstantOfShape", b.shape(node.shape), value=_zero(node.dtype))
    return b.op("ScatterElements", zeros, full_idx, g3, axis=ax, reduction="add")


def b_numel_dim(dims):
    """The product of ``dims`` as one (possibly symbolic) dimension."""
    out = 1
    for d in dims:
        out = d * out
    return out


def _zero(dtype):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.zeros((1,), dtype))


def _as_1d(b, node, fn):
    """Run ``fn`` on 1-D views of 0-d operands (ONNX element gathers need rank >= 1)."""
    if node.rank:
        return fn(node.inputs)
    views = [b.op("Reshape", x, b.ints([1])) for x in node.inputs]
    return b.op("Reshape", fn(views), b.ints([]))


def gather(b, node):
    axis = node.attrs["axis"] % max(node.rank, 1)
    return _as_1d(b, node, lambda xs: b.op("GatherElements", *xs, axis=axis))


def scatter_add(b, node):
    axis = node.attrs["axis"] % max(node.rank, 1)
    return _as_1d(b, node, lambda xs: b.op("ScatterElements", *xs, axis=axis, reduction="add"))


TRANSLATORS = {
    "reshape": reshape, "transpose": transpose, "broadcast_to": broadcast_to, "concat": concat, "slice": slice_,
    "slice_grad": slice_grad, "pad": pad, "flip": flip, "take": take, "take_grad": take_grad, "gather": gather,
    "scatter_add": scatter_add,
}
