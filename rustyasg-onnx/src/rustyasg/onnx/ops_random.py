"""ONNX translators of the counter-based random ops: the same bits as every other backend.

The draw is ``lowbias32`` hashing of ``(seed, salt, element index)`` (see
:mod:`rustyasg.core.ops.random`). ONNX has the integer ops it needs; the 32-bit wrapping
products are computed in uint64 and masked, so the exported model reproduces the reference's
numbers exactly.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from rustyasg.core.ops.random import GOLDEN, M1, M2

MASK32 = 0xFFFFFFFF


def _u64(b, value):
    return b.const(np.array(value, np.uint64))


def _mul32(b, x, k):
    return b.op("BitwiseAnd", b.op("Mul", x, _u64(b, k)), _u64(b, MASK32))


def _shr_xor(b, x, bits):
    return b.op("BitwiseXor", x, b.op("BitShift", x, _u64(b, bits), direction="RIGHT"))


def hash32(b, x):
    """lowbias32 of uint64 values below 2**32."""
    x = _shr_xor(b, x, 16)
    x = _mul32(b, x, M1)
    x = _shr_xor(b, x, 15)
    x = _mul32(b, x, M2)
    return _shr_xor(b, x, 16)


def uniform_bits(b, seed, salt: int, count):
    """``count`` (a 1-element int64 tensor) uniform doubles in [0, 1) with 24 random bits each."""
    s = b.op("Cast", seed, to=TensorProto.UINT64)
    lo = b.op("BitwiseAnd", s, _u64(b, MASK32))
    hi = b.op("BitShift", s, _u64(b, 32), direction="RIGHT")
    inner = hash32(b, b.op("BitwiseAnd", b.op("Add", hi, _u64(b, (salt * GOLDEN) & MASK32)), _u64(b, MASK32)))
    key = hash32(b, b.op("BitwiseXor", lo, inner))
    n = b.op("Reshape", count, b.ints([]))
    idx = b.op("Cast", b.op("Range", b.const(np.array(0, np.int64)), n, b.const(np.array(1, np.int64))),
               to=TensorProto.UINT64)
    idx = b.op("BitwiseAnd", idx, _u64(b, MASK32))  # the reference wraps indices to 32 bits
    bits = hash32(b, b.op("BitwiseXor", _mul32(b, idx, GOLDEN), key))
    top = b.op("BitShift", bits, _u64(b, 8), direction="RIGHT")
    return b.op("Mul", b.op("Cast", top, to=TensorProto.DOUBLE), b.const(1.0 / 16777216.0, np.float64))


def _finish(b, node, values):
    return b.op("Cast", b.op("Reshape", values, b.shape(node.shape)), to=_dt(node.dtype))


def _dt(dtype):
    from .builder import onnx_dtype

    return onnx_dtype(dtype)


def random_uniform(b, node):
    a = node.attrs
    u = uniform_bits(b, node.inputs[0], a["salt"], b.numel(node.shape))
    scaled = b.op("Add", b.const(float(a["low"]), np.float64), b.op("Mul", u, b.const(a["high"] - a["low"], np.float64)))
    return _finish(b, node, scaled)


def random_normal(b, node):
    """Box-Muller over interleaved pairs of uniforms, as the reference."""
    a = node.attrs
    n = b.numel(node.shape)
    u = uniform_bits(b, node.inputs[0], a["salt"], b.op("Mul", n, b.ints([2])))
    pairs = b.op("Reshape", u, b.ints([-1, 2]))
    u1 = b.op("Squeeze", b.op("Slice", pairs, b.ints([0]), b.ints([1]), b.ints([1])), b.ints([1]))
    u2 = b.op("Squeeze", b.op("Slice", pairs, b.ints([1]), b.ints([2]), b.ints([1])), b.ints([1]))
    radius = b.op("Sqrt", b.op("Mul", b.const(-2.0, np.float64), b.op("Log", b.op("Sub", b.const(1.0, np.float64), u1))))
    z = b.op("Mul", radius, b.op("Cos", b.op("Mul", b.const(2.0 * np.pi, np.float64), u2)))
    out = b.op("Add", b.const(float(a["mean"]), np.float64), b.op("Mul", b.const(float(a["std"]), np.float64), z))
    return _finish(b, node, out)


TRANSLATORS = {"random_uniform": random_uniform, "random_normal": random_normal}
