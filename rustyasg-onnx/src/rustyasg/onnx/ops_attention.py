"""ONNX translators of the fused attention ops, spelled out in Einsum, Where, Exp and reductions.

``attention``, ``attention_lse`` and ``attention_backward`` follow their references in
:mod:`rustyasg.core.ops.attention`. One deliberate difference: a non-finite value under a
masked-out key is multiplied by a zero weight here (ONNX has no excluded product), so a NaN
there reaches the output; with finite operands the results are the reference's.
"""

from __future__ import annotations

import numpy as np

from .ops_reduce import reduce

_SCORES = "...ie,...je->...ij"


def _scores(b, node, q, k, dtype):
    """``scale * q @ k^T`` with the masked keys at -inf, and the bool mask (None: all allowed)."""
    s = b.op("Mul", b.op("Einsum", q, k, equation=_SCORES), b.const(node.attrs["scale"], dtype))
    allowed = None
    if node.attrs["causal"]:
        L, S = node.input_shapes[0][-2], node.input_shapes[1][-2]
        if not (isinstance(L, int) and isinstance(S, int)):
            raise ValueError("causal attention exports with concrete lengths only")
        allowed = b.initializer(np.tril(np.ones((L, S), bool)))
    n = {"attention": 3, "attention_lse": 2, "attention_backward": 6}[node.op]
    if len(node.inputs) > n:
        keep = b.op("Unsqueeze", node.inputs[n], b.ints([-2]))
        allowed = keep if allowed is None else b.op("And", allowed, keep)
    if allowed is not None:
        s = b.op("Where", allowed, s, b.const(-np.inf, dtype))
    return s, allowed


def _as(b, x, have, want):
    from .builder import onnx_dtype

    return x if np.dtype(have) == np.dtype(want) else b.op("Cast", x, to=onnx_dtype(want))


def attention(b, node):
    q, k, v = node.inputs[:3]
    s, _ = _scores(b, node, q, k, node.dtype)
    e = b.op("Exp", b.op("Sub", s, reduce(b, "ReduceMax", s, (node.rank - 1,), True)))
    p = b.op("Div", e, reduce(b, "ReduceSum", e, (node.rank - 1,), True))
    return b.op("Einsum", p, v, equation="...ij,...je->...ie")


def attention_lse(b, node):
    q, k = node.inputs[:2]
    dtype = node.input_dtypes[0]
    s, _ = _scores(b, node, q, k, dtype)
    m = reduce(b, "ReduceMax", s, (node.rank - 1,), True)
    # A row with no allowed key has max -inf: shift by 0 there, so log(0) gives -inf, not NaN.
    m = b.op("Where", b.op("Equal", m, b.const(-np.inf, dtype)), b.const(0.0, dtype), m)
    total = reduce(b, "ReduceSum", b.op("Exp", b.op("Sub", s, m)), (node.rank - 1,), True)
    lse = b.op("Squeeze", b.op("Add", b.op("Log", total), m), b.ints([-1]))
    return _as(b, lse, dtype, node.dtype)


def attention_backward(b, node):
    q, k, v, dout, lse, delta = node.inputs[:6]
    dtype = node.input_dtypes[0]
    s, allowed = _scores(b, node, q, k, dtype)
    row = [b.op("Unsqueeze", _as(b, t, node.input_dtypes[i], dtype), b.ints([-1])) for i, t in ((4, lse), (5, delta))]
    p = b.op("Exp", b.op("Sub", s, row[0]))
    zero = b.const(0.0, dtype)
    if allowed is not None:
        p = b.op("Where", allowed, p, zero)
    ds = b.op("Mul", p, b.op("Sub", b.op("Einsum", dout, v, equation=_SCORES), row[1]))
    if allowed is not None:
        ds = b.op("Where", allowed, ds, zero)
    scale = b.const(node.attrs["scale"], dtype)
    wrt = node.attrs["wrt"]
    if wrt == "q":
        return b.op("Mul", b.op("Einsum", ds, k, equation="...ij,...je->...ie"), scale)
    if wrt == "k":
        return b.op("Mul", b.op("Einsum", ds, q, equation="...ij,...ie->...je"), scale)
    return b.op("Einsum", p, dout, equation="...ij,...ie->...je")


TRANSLATORS = {"attention": attention, "attention_lse": attention_lse, "attention_backward": attention_backward}
