"""Counter-based random draws (uniform, normal) in numba.

The same ``lowbias32`` hash of ``(seed, salt, index)`` as the core's reference
(:mod:`rustyasg.core.backend_api`), so a seed gives identical numbers on every
backend. Integer arithmetic is done in uint64 and masked to 32 bits, which
reproduces the reference's wrapping uint32 products exactly.

Example:
    >>> import numpy as np
    >>> out = np.empty(3); uniform_kernel(np.array(7, np.int64).reshape(1), 1, 0.0, 1.0, out)
    >>> bool(((out >= 0) & (out < 1)).all())
    True
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rustyasg.core.backend_api import GOLDEN, M1, M2

from ..jit import kernel_jit
from .protocol import Impl

MASK = 0xFFFFFFFF


@kernel_jit
def _hash32(x):
    x = x & np.uint64(MASK)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(M1)) & np.uint64(MASK)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(M2)) & np.uint64(MASK)
    x ^= x >> np.uint64(16)
    return x


@kernel_jit
def _stream_key(seed, salt):
    s = np.uint64(seed)
    lo = s & np.uint64(MASK)
    hi = s >> np.uint64(32)
    inner = _hash32((hi + np.uint64(salt) * np.uint64(GOLDEN)) & np.uint64(MASK))
    return _hash32(lo ^ inner)


@kernel_jit
def _bits(i, key):
    h = _hash32(((np.uint64(i) & np.uint64(MASK)) * np.uint64(GOLDEN) & np.uint64(MASK)) ^ key)
    return np.float64(h >> np.uint64(8)) * (1.0 / 16777216.0)


@kernel_jit
def uniform_kernel(seed, salt, low, high, out):
    key = _stream_key(seed[0], salt)
    for i in range(out.shape[0]):
        out[i] = low + (high - low) * _bits(i, key)


@kernel_jit
def normal_kernel(seed, salt, mean, std, out):
    key = _stream_key(seed[0], salt)
    for i in range(out.shape[0]):
        u1 = _bits(2 * i, key)
        u2 = _bits(2 * i + 1, key)
        out[i] = mean + std * (math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2))


def _draw(kernel, a, b):
    def build(ins, args):
        attrs = ins.attrs
        lo, hi = attrs[a], attrs[b]

        def bind(seed, out):
            return functools.partial(kernel, seed.reshape(1), attrs["salt"], lo, hi, out.reshape(-1))

        return Impl(bind=bind, contiguous=True, label=f"numba.{kernel.__name__}")
    return build


KERNELS = {
    "random_uniform": _draw(uniform_kernel, "low", "high"),
    "random_normal": _draw(normal_kernel, "mean", "std"),
}
