"""ONNX translators of the neural-network ops: convolutions and their gradients, pooling, normalization.

Average pools are separable: ``out = A_h @ x @ A_w.T`` with the averaging matrices of
:mod:`rustyasg.core.ops.window_geometry` (the same ones the reference uses), so every variant
(``ceil_mode``, ``count_include_pad``, ``divisor_override``, adaptive) is two MatMuls, and the
gradient is the transposed pair. Max pools gather each window (positions from the same module),
mask the padding with ``-inf`` and reduce; their indices and gradient scatter through the
argmax, so all max-pool variants share one construction.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from rustyasg.core.ops.window_geometry import (adaptive_avg_matrix, adaptive_positions, avg_pool_matrix,
                                               conv_transpose_output_size, pool_positions)

from .ops_reduce import reduce


# --- convolutions ----------------------------------------------------------------------------------
def _conv_attrs(a):
    (ph, pw) = a["padding"]
    return dict(strides=list(a["stride"]), pads=[ph, pw, ph, pw], dilations=list(a["dilation"]), group=a["groups"])


def conv2d(b, node):
    return b.op("Conv", *node.inputs, **_conv_attrs(node.attrs))


def conv2d_backward_input(b, node):
    """The input gradient is the transposed convolution, padded out to ``input_size``."""
    g, w = node.inputs
    a = node.attrs
    kernel = node.input_shapes[1][2:]
    natural = [conv_transpose_output_size(n, k, s, p, d, 0)
               for n, k, s, p, d in zip(node.input_shapes[0][2:], kernel, a["stride"], a["padding"], a["dilation"])]
    extra = [want - got for want, got in zip(a["input_size"], natural)]
    # The rows/columns past the natural size: first uncropped from the end padding, then zeros
    # (positions no window reads). ONNX's output_padding would do it but must stay below the stride.
    end_pads = [max(p - e, 0) for p, e in zip(a["padding"], extra)]
    zeros = [max(e - p, 0) for p, e in zip(a["padding"], extra)]
    attrs = _conv_attrs(a)
    attrs["pads"] = list(a["padding"]) + end_pads
    out = b.op("ConvTranspose", g, w, **attrs)
    if not any(zeros):
        return out
    return b.op("Pad", out, b.ints([0, 0, 0, 0, 0, 0] + zeros), b.const(0, node.dtype))


def conv2d_backward_weight(b, node):
    """The weight gradient as one grouped convolution of the input by the output gradient.

    With ``x`` viewed as ``(Ci, G*N, H, W)`` and ``g`` as ``(G*Co, N, OH, OW)``, a convolution
    with ``group=G``, strides = the dilation and dilations = the stride gives ``(Ci, G*Co, >=KH, >=KW)``.
    """
    g, x = node.inputs
    a = node.attrs
    groups = a["groups"]
    n, cin_total, h, w = node.input_shapes[1]
    _, cout_total, oh, ow = node.input_shapes[0]
    ci, co = cin_total // groups, cout_total // groups
    xv = b.op("Reshape", x, b.shape((n, groups, ci, h, w)))
    xv = b.op("Reshape", b.op("Transpose", xv, perm=[2, 1, 0, 3, 4]), b.shape((ci, groups * n, h, w)))
    gv = b.op("Reshape", g, b.shape((n, groups, co, oh, ow)))
    gv = b.op("Reshape", b.op("Transpose", gv, perm=[1, 2, 0, 3, 4]), b.shape((groups * co, n, oh, ow)))
    (ph, pw) = a["padding"]
    full = b.op("Conv", xv, gv, strides=list(a["dilation"]), dilations=list(a["stride"]),
                pads=[ph, pw, ph, pw], group=groups)
    kh, kw = a["kernel_size"]
    cropped = b.op("Slice", full, b.ints([0, 0]), b.ints([kh, kw]), b.ints([2, 3]))
    return b.op("Transpose", cropped, perm=[1, 0, 2, 3])


# --- average pools: two MatMuls ----------------------------------------------------------------------
def _avg_matrices(hw, a):
    if "output_size" in a:
        return tuple(adaptive_avg_matrix(n, o) for n, o in zip(hw, a["output_size"]))
    override = a["divisor_override"]
    divisors = (0.0, 0.0) if override is None else (1.0, float(override))  # divide once, on the width axis
    return tuple(avg_pool_matrix(n, k, s, p, a["ceil_mode"], a["count_include_pad"], dv)
                 for n, k, s, p, dv in zip(hw, a["kernel_size"], a["stride"], a["padding"], divisors))


def avg_pool(b, node):
    ah, aw = _avg_matrices(node.input_shapes[0][2:], node.attrs)
    rows = b.op("MatMul", node.inputs[0], b.const(aw.T.astype(node.dtype)))
    return b.op("MatMul", b.const(ah.astype(node.dtype)), rows)


def avg_pool_backward(b, node):
    a = {k: v for k, v in node.attrs.items() if k != "input_size"}
    ah, aw = _avg_matrices(node.attrs["input_size"], a)
    rows = b.op("MatMul", node.inputs[0], b.const(aw.astype(node.dtype)))
    return b.op("MatMul", b.const(ah.T.astype(node.dtype)), rows)


# --- max pools: gathered windows -------------------------------------------------------------------
def _max_geometry(hw, a):
    if "output_size" in a:
        return tuple(adaptive_positions(n, o) for n, o in zip(hw, a["output_size"]))
    return tuple(pool_positions(n, k, s, p, d, a["ceil_mode"])
                 for n, k, s, p, d, in zip(hw, a["kernel_size"], a["stride"], a["padding"], a["dilation"]))


def _windows(b, x, shape, a):
    """``(windows (N, C, OH, OW, KH*KW), flat input index of each slot, inside)``: ``inside``
    (OH, OW, KH*KW) is False on padding slots, which hold a clipped position's value."""
    n, c, h, w = shape
    (hp, hv), (wp, wv) = _max_geometry((h, w), a)
    oh, kh = hp.shape
    ow, kw = wp.shape
    rows = b.op("Gather", x, b.const(hp.reshape(-1).astype(np.int64)), axis=2)
    win = b.op("Gather", rows, b.const(wp.reshape(-1).astype(np.int64)), axis=3)
    win = b.op("Reshape", win, b.shape((n, c, oh, kh, ow, kw)))
    win = b.op("Transpose", win, perm=[0, 1, 2, 4, 3, 5])
    win = b.op("Reshape", win, b.shape((n, c, oh, ow, kh * kw)))
    valid = (hv[:, None, :, None] & wv[None, :, None, :]).reshape(oh, ow, kh * kw)
    flat = (hp[:, None, :, None] * w + wp[None, :, None, :]).reshape(oh, ow, kh * kw).astype(np.int64)
    return win, flat, valid


def _selected(b, node, x, shape):
    """``(windows, slot)``: the slot (keepdims on axis 4) that PyTorch's scan takes in each window. It
    takes an element when ``v > best or isnan(v)``: the last NaN wins when there are NaNs, else the
    first maximum inside the input (ArgMax, ReduceMax and MaxPool need not see NaN). As a score per
    slot ``j`` of ``K``: ``K + j`` for a NaN, ``K - 1 - j`` for a maximum, -1 for the rest, and its ArgMax."""
    win, flat, inside = _windows(b, x, shape, node.attrs)
    k = flat.shape[-1]
    slot = np.arange(k, dtype=np.float32)
    # padding is -inf only for the maximum: the values are gathered from win, whose signed zeros
    # a Where would not keep in onnxruntime
    masked = win if inside.all() else b.op("Where", b.const(inside), win, b.const(-np.inf, node.input_dtypes[-1]))
    hit = b.op("And", b.op("Equal", win, b.op("ReduceMax", masked, b.ints([4]), keepdims=1)), b.const(inside))
    nan = b.op("And", b.op("IsNaN", win), b.const(inside))
    top_or_pad = b.op("Where", hit, b.const(k - 1 - slot), b.const(np.full(k, -1.0, np.float32)))
    score = b.op("Where", nan, b.const(k + slot), top_or_pad)
    return win, flat, b.op("ArgMax", score, axis=4, keepdims=1)


def _argmax_index(b, node, x, shape):
    """Flat ``h*W + w`` index of the element each window selects (:func:`_selected`), ``(N, C, OH, OW)``."""
    win, flat, k = _selected(b, node, x, shape)
    table = b.op("Expand", b.const(flat), b.op("Shape", win))
    return b.op("Squeeze", b.op("GatherElements", table, k, axis=4), b.ints([4])), win


def max_pool(b, node):
    win, _, k = _selected(b, node, node.inputs[0], node.input_shapes[0])
    return b.op("Squeeze", b.op("GatherElements", win, k, axis=4), b.ints([4]))


def max_pool_indices(b, node):
    idx, _ = _argmax_index(b, node, node.inputs[0], node.input_shapes[0])
    return idx


def max_pool_backward(b, node):
    """Scatter-add ``g`` onto each window's argmax (the first maximum, as the reference)."""
    g, x = node.inputs
    n, c, h, w = node.input_shapes[1]
    idx, _ = _argmax_index(b, node, x, node.input_shapes[1])
    idx = b.op("Reshape", idx, b.shape((n, c, node.input_shapes[0][2] * node.input_shapes[0][3])))
    gv = b.op("Reshape", g, b.shape((n, c, node.input_shapes[0][2] * node.input_shapes[0][3])))
    zeros = b.op("ConstantOfShape", b.shape((n, c, h * w)), value=numpy_helper.from_array(np.zeros(1, node.dtype)))
    out = b.op("ScatterElements", zeros, idx, gv, axis=2, reduction="add")
    return b.op("Reshape", out, b.shape(node.shape))


# --- normalization ---------------------------------------------------------------------------------
def _norm_layout(node):
    """(statistic axes, parameter view shape) of a norm op (operand 0, x or g, has x's shape)."""
    rank, shape, a = node.rank, node.input_shapes[0], node.attrs
    if "normalized_ndim" in a:
        k = a["normalized_ndim"]
        return tuple(range(rank - k, rank)), tuple(shape[rank - k:])
    ax = a["axis"] % rank
    return tuple(i for i in range(rank) if i != ax), (shape[ax],) + (1,) * (rank - ax - 1)


def _normalized(b, x, axes, eps, dtype):
    """``((x - mean) * r, r)`` with ``r = 1 / sqrt(biased var + eps)`` over ``axes``."""
    centered = b.op("Sub", x, reduce(b, "ReduceMean", x, axes, True))
    var = reduce(b, "ReduceMean", b.op("Mul", centered, centered), axes, True)
    r = b.op("Reciprocal", b.op("Sqrt", b.op("Add", var, b.const(eps, dtype))))
    return b.op("Mul", centered, r), r


def _view(b, t, view):
    return b.op("Reshape", t, b.shape(view))


def layer_norm(b, node):
    x, gamma, beta = node.inputs
    return b.op("LayerNormalization", x, gamma, beta, axis=-node.attrs["normalized_ndim"],
                epsilon=float(node.attrs["eps"]))


def batch_norm(b, node):
    x, gamma, beta = node.inputs
    axes, view = _norm_layout(node)
    xh, _ = _normalized(b, x, axes, node.attrs["eps"], node.dtype)
    return b.op("Add", b.op("Mul", xh, _view(b, gamma, view)), _view(b, beta, view))


def norm_backward(b, node):
    """``dx = r * (a - mean(a) - xh * mean(a * xh))`` with ``a = g * gamma``."""
    g, x, gamma = node.inputs
    axes, view = _norm_layout(node)
    xh, r = _normalized(b, x, axes, node.attrs["eps"], node.dtype)
    a = b.op("Mul", g, _view(b, gamma, view))
    inner = b.op("Sub", b.op("Sub", a, reduce(b, "ReduceMean", a, axes, True)),
                 b.op("Mul", xh, reduce(b, "ReduceMean", b.op("Mul", a, xh), axes, True)))
    return b.op("Mul", r, inner)


TRANSLATORS = {
    "conv2d": conv2d, "conv2d_backward_input": conv2d_backward_input, "conv2d_backward_weight": conv2d_backward_weight,
    "avg_pool2d": avg_pool, "adaptive_avg_pool2d": avg_pool,
    "avg_pool2d_backward": avg_pool_backward, "adaptive_avg_pool2d_backward": avg_pool_backward,
    "max_pool2d": max_pool, "adaptive_max_pool2d": max_pool,
    "max_pool2d_indices": max_pool_indices, "adaptive_max_pool2d_indices": max_pool_indices,
    "max_pool2d_backward": max_pool_backward, "adaptive_max_pool2d_backward": max_pool_backward,
    "layer_norm": layer_norm, "batch_norm": batch_norm,
    "layer_norm_backward": norm_backward, "batch_norm_backward": norm_backward,
}
