"""bfloat16 <-> float32 conversion kernels: bfloat16 is stored as 16-bit words, computed as float32.

numba has no bfloat16 type. A bfloat16 is the upper half of a float32, so widening is a
16-bit shift of the word, and narrowing rounds the float32's bits to nearest-even before
dropping the lower half (NaN stays a quiet NaN, as ``ml_dtypes`` converts). The cpu
backend's ``cpu_float16`` rewrite computes every bfloat16 instruction in float32 between
casts; a cast runs alone with :func:`from_bfloat16` / :func:`to_bfloat16`, or inside a
fused kernel, which loads bfloat16 operands with :func:`bf16_to_f32`, carries rounded values
as float32 (:func:`round_bf16`) and stores with :func:`f32_to_bf16` (one conversion each way).

Example:
    >>> import numpy as np, ml_dtypes
    >>> x = np.array([1.0, -2.5, 3.14159, np.inf, np.nan], np.float32)
    >>> b = np.empty(5, ml_dtypes.bfloat16); to_bfloat16(x, b)
    >>> bool(np.array_equal(b.view(np.uint16)[:4], x[:4].astype(ml_dtypes.bfloat16).view(np.uint16)))
    True
    >>> w = np.empty(5, np.float32); from_bfloat16(b, w); w[:4].tolist(), bool(np.isnan(w[4]))
    ([1.0, -2.5, 3.140625, inf], True)
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..jit import elementwise_jit, helper_jit


@intrinsic
def _as_float32(typingctx, bits):
    """The float32 whose bits are the uint32 ``bits`` (an LLVM bitcast: free, vectorizes)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


@intrinsic
def _as_uint32(typingctx, value):
    """The bits of the float32 ``value`` as a uint32."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


@helper_jit
def bf16_to_f32(word):
    """float32 value of the bfloat16 16-bit ``word`` (exact)."""
    return _as_float32(np.uint32(word) << np.uint32(16))


@helper_jit
def f32_to_bf16(value):
    """16-bit word of ``value`` rounded to bfloat16, to nearest-even; NaN stays a quiet NaN."""
    b = _as_uint32(np.float32(value))
    nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    rounded = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return np.uint16(((b >> np.uint32(16)) | np.uint32(0x0040)) if nan else rounded)


@helper_jit
def round_bf16(value):
    """``value`` rounded to bfloat16, kept as float32 (what fused kernels carry in registers).

    :func:`f32_to_bf16` then :func:`bf16_to_f32`, but without leaving 32-bit lanes: the rounded
    word keeps its place in the upper half and the lower half is cleared, so a chain of rounded
    operations vectorizes with no 16-bit narrowing and widening between them (5x faster in a
    GELU-backward kernel of fifteen rounded operations).
    """
    b = _as_uint32(np.float32(value))
    nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    rounded = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    quiet = (b | np.uint32(0x00400000)) & np.uint32(0xFFFF0000)
    return _as_float32(quiet if nan else rounded)


@elementwise_jit
def _widen(words, out):
    for i in range(words.size):
        out[i] = bf16_to_f32(words[i])


@elementwise_jit
def _narrow(values, out):
    for i in range(values.size):
        out[i] = f32_to_bf16(values[i])


def _flat(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(dtype)


def from_bfloat16(x: np.ndarray, out: np.ndarray) -> None:
    """Write bfloat16 ``x`` widened into ``out`` (float32 of the same shape, or any dtype through float32)."""
    if out.dtype == np.float32 and out.flags.c_contiguous:
        _widen(_flat(x, np.uint16), out.reshape(-1))
        return
    wide = np.empty(x.shape, np.float32)
    _widen(_flat(x, np.uint16), wide.reshape(-1))
    np.copyto(out, wide, casting="unsafe")


def to_bfloat16(x: np.ndarray, out: np.ndarray) -> None:
    """Write ``x`` (float32, or any dtype through float32) rounded to bfloat16 into ``out``."""
    src = x if x.dtype == np.float32 else x.astype(np.float32)
    if out.flags.c_contiguous:
        _narrow(_flat(src, np.float32), out.reshape(-1).view(np.uint16))
        return
    words = np.empty(x.shape, np.uint16)
    _narrow(_flat(src, np.float32), words.reshape(-1))
    np.copyto(out, words.view(out.dtype))


# --- float16 as 16-bit words: the same scheme (numba has no float16 arrays either) -------------------
@helper_jit
def f16_to_f32(word):
    """float32 value of the IEEE half-precision 16-bit ``word`` (exact; subnormals, inf, NaN).

    Branch-light (selects, so loops vectorize): the exponent and mantissa move into place and
    the exponent is rebased; inf/NaN get the rest of the float32 exponent; subnormals are
    renormalised by one float subtraction (F. Giesen's half_to_float).
    """
    h = np.uint32(word)
    o = (h & np.uint32(0x7FFF)) << np.uint32(13)
    exp = o & np.uint32(0x0F800000)
    o = o + np.uint32(112 << 23)
    o = o + np.uint32(112 << 23) if exp == np.uint32(0x0F800000) else o
    sub = _as_float32(o + np.uint32(1 << 23)) - _as_float32(np.uint32(113 << 23))
    o = _as_uint32(sub) if exp == np.uint32(0) else o
    return _as_float32(o | ((h & np.uint32(0x8000)) << np.uint32(16)))


@helper_jit
def f32_to_f16(value):
    """16-bit word of ``value`` rounded to IEEE half precision, to nearest-even (numpy's results).

    Branch-light (F. Giesen's float_to_half_fast3_rtne): overflow goes to inf, NaN stays a
    quiet NaN, subnormals round by one float addition of a magic number, normal numbers by
    integer rounding of the mantissa.
    """
    f = _as_uint32(np.float32(value))
    sign = f & np.uint32(0x80000000)
    f = f ^ sign
    big = np.uint32(0x7E00) if f > np.uint32(0x7F800000) else np.uint32(0x7C00)
    magic = np.uint32(((127 - 15) + (23 - 10) + 1) << 23)
    small = _as_uint32(_as_float32(f) + _as_float32(magic)) - magic
    odd = (f >> np.uint32(13)) & np.uint32(1)
    normal = (f + np.uint32(((15 - 127) << 23) & 0xFFFFFFFF) + np.uint32(0xFFF) + odd) >> np.uint32(13)
    o = big if f >= np.uint32((127 + 16) << 23) else (small if f < np.uint32(113 << 23) else normal)
    return np.uint16(o | (sign >> np.uint32(16)))


@helper_jit
def round_f16(value):
    """``value`` rounded to float16, kept as float32."""
    return f16_to_f32(f32_to_f16(value))


#: How generated kernels load, round and store each 16-bit float (helper names, imported by them).
WORD_CODECS = {"bfloat16": ("bf16_to_f32", "round_bf16", "f32_to_bf16"),
               "float16": ("f16_to_f32", "round_f16", "f32_to_f16")}
