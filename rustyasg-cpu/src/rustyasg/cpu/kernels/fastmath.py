"""Vectorizable float32 versions of exp, tanh, erf and friends.

numba calls libm for ``math.exp``/``math.tanh``, one element at a time, which
LLVM cannot vectorize (no SVML here): ``math.tanh`` costs ~15 ns per element,
50x more than numpy's SIMD loop. These are branch-free polynomial/rational
approximations that LLVM turns into AVX code inside fused kernels. They are
accurate to a few float32 ulp; float64 kernels keep using ``math.*``.

Example:
    >>> import numpy as np
    >>> abs(float(exp32(np.float32(1.0))) - 2.718281828) < 1e-6
    True
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..jit import helper_jit

F = np.float32


@intrinsic
def _bits_to_f32(typingctx, bits):
    """Reinterpret int32 bits as a float32 (builds 2**n for exp)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def _f32_to_bits(typingctx, x):
    """Reinterpret a float32 as its int32 bits (the exponent and mantissa for log)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@helper_jit
def exp32(x):
    """e**x: Cody-Waite range reduction and a degree-6 polynomial (Cephes expf).

    The exponent ``n`` stays a float32 until it becomes the int32 bits of ``2**n``:
    ``math.floor`` would give an int64, and without AVX-512 there is no vector
    float-to-int64 conversion, so LLVM ran the whole loop one element at a time
    (2.7x slower on an AMD EPYC with AVX2, measured; the same results to the bit).
    """
    xc = min(max(x, F(-104.0)), F(88.72283))
    fn = np.floor(xc * F(1.4426950408889634) + F(0.5))
    r = xc - fn * F(0.693359375) - fn * F(-2.12194440e-4)
    p = F(1.9875691500e-4)
    p = p * r + F(1.3981999507e-3)
    p = p * r + F(8.3334519073e-3)
    p = p * r + F(4.1665795894e-2)
    p = p * r + F(1.6666665459e-1)
    p = p * r + F(5.0000001201e-1)
    p = p * r * r + r + F(1.0)
    # 2**n as two factors: n reaches 128 just below float32's overflow, past the largest exponent.
    fh = np.floor(fn * F(0.5))
    y = p * _bits_to_f32((np.int32(fh) + np.int32(127)) << np.int32(23))
    y = y * _bits_to_f32((np.int32(fn - fh) + np.int32(127)) << np.int32(23))
    y = F(0.0) if x < F(-104.0) else y   # exp(-inf) must be exactly 0 (attention masks)
    y = F(np.inf) if x >= F(88.72283935546875) else y   # numpy's float32 overflow
    return y if x == x else x               # NaN passes through


@helper_jit
def tanh32(x):
    """tanh: a [13/6] rational approximation on [-7.9, 7.9] (Eigen's float tanh), +-1 where float32's
    correctly rounded tanh is."""
    xc = min(max(x, F(-7.90531110763549805)), F(7.90531110763549805))
    x2 = xc * xc
    p = F(-2.76076847742355e-16)
    p = p * x2 + F(2.00018790482477e-13)
    p = p * x2 + F(-8.60467152213735e-11)
    p = p * x2 + F(5.12229709037114e-08)
    p = p * x2 + F(1.48572235717979e-05)
    p = p * x2 + F(6.37261928875436e-04)
    p = p * x2 + F(4.89352455891786e-03)
    p = p * xc
    q = F(1.19825839466702e-06)
    q = q * x2 + F(1.18534705686654e-04)
    q = q * x2 + F(2.26843463243900e-03)
    q = q * x2 + F(4.89352518554385e-03)
    y = p / q
    # Past 9.01084 float32's tanh rounds to +-1 (where the rational stops at 1 - 2.4e-7): exact, so
    # that far out the gradient 1 - tanh(x)**2 is exactly 0, as in torch. 10-20% slower in a loop.
    y = np.copysign(F(1.0), x) if abs(x) >= F(9.01084) else y
    return x if abs(x) < F(0.0004) else y


@helper_jit
def erf32(x):
    """erf: an odd [13/8] rational approximation on [-4, 4] (Eigen's float erf)."""
    xc = min(max(x, F(-4.0)), F(4.0))
    x2 = xc * xc
    p = F(-2.72614225801306e-10)
    p = p * x2 + F(2.77068142495902e-08)
    p = p * x2 + F(-2.10102402082508e-06)
    p = p * x2 + F(-5.69250639462346e-05)
    p = p * x2 + F(-7.34990630326855e-04)
    p = p * x2 + F(-2.95459980854025e-03)
    p = p * x2 + F(-1.60960333262415e-02)
    p = p * xc
    q = F(-1.45660718464996e-05)
    q = q * x2 + F(-2.13374055278905e-04)
    q = q * x2 + F(-1.68282697438203e-03)
    q = q * x2 + F(-7.37332916720468e-03)
    q = q * x2 + F(-1.42647390514189e-02)
    return p / q


@helper_jit
def sigmoid32(x):
    """1 / (1 + e**-x)."""
    return F(1.0) / (F(1.0) + exp32(-x))


@helper_jit
def sigmoid64(x):
    """1 / (1 + e**-x) in float64 (exact libm exp)."""
    return 1.0 / (1.0 + math.exp(-x))


@helper_jit
def log32(x):
    """Natural log: exponent and mantissa from the bits, a degree-9 polynomial (Cephes logf).

    Subnormals are scaled by 2**23 first; 0 gives -inf, negatives and NaN give NaN, +inf
    gives +inf, like numpy.
    """
    tiny = x < F(1.17549435e-38)
    xs = x * F(8388608.0) if tiny else x   # subnormals: into the normal range
    bits = _f32_to_bits(xs)
    e = F(((bits >> np.int32(23)) & np.int32(0xFF)) - np.int32(126)) - (F(23.0) if tiny else F(0.0))
    m = _bits_to_f32((bits & np.int32(0x007FFFFF)) | np.int32(0x3F000000))   # mantissa in [0.5, 1)
    low = m < F(0.707106781186547524)
    e = e - F(1.0) if low else e
    m = (m + m - F(1.0)) if low else (m - F(1.0))
    z = m * m
    y = F(7.0376836292e-2)
    y = y * m + F(-1.1514610310e-1)
    y = y * m + F(1.1676998740e-1)
    y = y * m + F(-1.2420140846e-1)
    y = y * m + F(1.4249322787e-1)
    y = y * m + F(-1.6668057665e-1)
    y = y * m + F(2.0000714765e-1)
    y = y * m + F(-2.4999993993e-1)
    y = y * m + F(3.3333331174e-1)
    y = y * m * z
    y = y + e * F(-2.12194440e-4) - F(0.5) * z
    r = m + y + e * F(0.693359375)
    r = F(-np.inf) if x == F(0.0) else r
    r = x if x == F(np.inf) else r
    return r if x >= F(0.0) else F(np.nan)   # negatives, and NaN (comparisons fail)


@helper_jit
def log1p32(x):
    """log(1 + x), accurate near 0: ``log(u) * x / (u - 1)`` with ``u = 1 + x`` corrects the
    rounding of ``1 + x`` (Goldberg, *What every computer scientist should know...*, Thm 4)."""
    u = F(1.0) + x
    d = u - F(1.0)
    r = log32(u) * (x / d)
    r = x if d == F(0.0) else r      # |x| below half an ulp of 1: log1p(x) = x
    return u if u == F(np.inf) else r   # +inf (x / d would be inf / inf); -1 -> -inf, < -1 -> NaN from log32


@helper_jit
def expm1_32(x):
    """e**x - 1: for ``|x| < 0.5`` its Taylor series to ``x**8`` (truncation below 2e-8 of the
    result), beyond it ``exp(x) - 1``, which loses at most 1.5 bits there."""
    p = F(2.48015873015873e-05)
    p = p * x + F(1.984126984126984e-04)
    p = p * x + F(1.388888888888889e-03)
    p = p * x + F(8.333333333333333e-03)
    p = p * x + F(4.166666666666667e-02)
    p = p * x + F(1.666666666666667e-01)
    p = p * x + F(0.5)
    small = x * (F(1.0) + p * x)   # a product keeps the sign of -0.0
    big = exp32(x) - F(1.0)        # both computed, then selected: the loop stays vectorized
    return small if abs(x) < F(0.5) else big


#: Name in generated source -> (float32 function, float64 function) of the same maths.
FAST = {
    "exp": ("exp32", "math.exp"),
    "tanh": ("tanh32", "math.tanh"),
    "erf": ("erf32", "math.erf"),
    "sigmoid": ("sigmoid32", "sigmoid64"),
    "log": ("log32", "math.log"),
    "log1p": ("log1p32", "math.log1p"),
    "expm1": ("expm1_32", "math.expm1"),
}
