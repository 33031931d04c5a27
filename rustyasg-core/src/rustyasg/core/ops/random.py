"""Counter-based random numbers: the same seed gives the same numbers on every backend.

Each draw hashes ``(seed, salt, element index)`` with 32-bit integer arithmetic
only (the ``lowbias32`` mixer), which numpy, numba and WGSL all compute
identically. ``seed`` is a tensor (usually an RNG state variable advanced each
step); ``salt`` separates independent draws in one graph.

What is promised across backends: the 24-bit uniforms underneath every draw are
bit-identical. The scaling (``low + (high - low) * u``) and Box-Muller's
``sqrt``/``log``/``cos`` run at the backend's precision: the reference and cpu
compute them in float64 (uniform draws there are bit-identical too), wgpu in
float32 (uniform values agree to float32 rounding; normal ones to about 1e-5 relative, as
float32's ``log(1 - u)`` for ``u`` near 0 amplifies the rounding).

Example:
    >>> import rustyasg.core as rg
    >>> seed = rg.constant(7, "int64")
    >>> rg.random_uniform(seed, shape=(2, 3)).shape
    (2, 3)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType, as_float, as_int, as_ints
from ..shapes import normalize_shape
from ._define import defop

GOLDEN = 0x9E3779B9
M1, M2 = 0x7FEB352D, 0x846CA68B


def hash32(x: np.ndarray) -> np.ndarray:
    """lowbias32 integer mixer on uint32 (wrapping arithmetic)."""
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(M1)
    x ^= x >> np.uint32(15)
    x *= np.uint32(M2)
    x ^= x >> np.uint32(16)
    return x


def stream_key(seed: int, salt: int) -> np.uint32:
    """32-bit key of one draw: ``hash32(lo ^ hash32(hi + salt * GOLDEN))`` of the 64-bit seed."""
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    lo, hi = s & 0xFFFFFFFF, s >> 32
    inner = hash32(np.array([(hi + salt * GOLDEN) & 0xFFFFFFFF], np.uint32))[0]
    return hash32(np.array([lo ^ int(inner)], np.uint32))[0]


def uniform_bits(seed: int, salt: int, n: int, offset: int = 0) -> np.ndarray:
    """``n`` uniform floats in [0, 1) with 24 random bits each."""
    idx = np.arange(offset, offset + n, dtype=np.uint64).astype(np.uint32)
    bits = hash32(idx * np.uint32(GOLDEN) ^ stream_key(seed, salt))
    return (bits >> np.uint32(8)).astype(np.float64) * (1.0 / 16777216.0)


def _uniform_ref(seed, shape, salt, low, high, dtype):
    n = int(np.prod(shape))
    u = uniform_bits(int(np.asarray(seed)), salt, n).reshape(shape)
    return (low + (high - low) * u).astype(dtype)


def _normal_ref(seed, shape, salt, mean, std, dtype):
    n = int(np.prod(shape))
    u = uniform_bits(int(np.asarray(seed)), salt, 2 * n)
    u1, u2 = u[0::2], u[1::2]
    z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
    return (mean + std * z).reshape(shape).astype(dtype)


def _random_infer(ts, shape, dtype, **_):
    if ts[0].dtype not in (dtypes.int32, dtypes.int64) or ts[0].shape != ():
        raise TypeError(f"seed must be an int32/int64 scalar, got {ts[0].dtype}{ts[0].shape}")
    if not dtypes.is_floating(dtype):
        raise TypeError(f"random draws are floating point, not {dtype}")
    return TensorType(normalize_shape(shape), dtype)


_SEED = InputSpec((), dtype="int64", low=0, high=1 << 40, differentiable=False)
_COMMON = {"shape": Attr(as_ints), "salt": Attr(as_int, 0), "dtype": Attr(dtypes.as_dtype, dtypes.float32)}

random_uniform = defop("random_uniform", infer=_random_infer, reference=_uniform_ref,
                       grad=lambda g, y, seed, **_: (None,), kind="random",
                       attrs={**_COMMON, "low": Attr(as_float, 0.0), "high": Attr(as_float, 1.0)},
                       examples=(Example((_SEED,), {"shape": (4, 5), "salt": 3, "dtype": dtypes.float64,
                                                    "low": -1.0, "high": 2.0}, check_grad=False),),
                       doc="Uniform draws in ``[low, high)`` from ``(seed, salt)``.")
random_normal = defop("random_normal", infer=_random_infer, reference=_normal_ref,
                      grad=lambda g, y, seed, **_: (None,), kind="random",
                      attrs={**_COMMON, "mean": Attr(as_float, 0.0), "std": Attr(as_float, 1.0)},
                      examples=(Example((_SEED,), {"shape": (3, 4), "salt": 1, "dtype": dtypes.float64,
                                                   "mean": 0.5, "std": 2.0}, check_grad=False),),
                      doc="Normal draws (Box-Muller over two uniform streams) from ``(seed, salt)``.")
