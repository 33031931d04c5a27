"""Float -> integer conversions in generated kernels, with the core's rule (PyTorch on x86).

LLVM leaves a float -> integer conversion of an out-of-range value undefined, and its vector
code saturates narrow targets (300.0 -> int8 127) where the scalar instruction gives the
"integer indefinite" value. The core (``rustyasg.core.backend_api.FLOAT_TO_INT_VIA``)
defines it: truncation toward zero; NaN, +-inf and out-of-range values give the minimum of int32
(for int32 and narrower targets, then wrapped to their bits) or of int64 (int64 and uint32).
:func:`to_int32` and :func:`to_int64` guard the conversion so it is always defined; on
integers they wrap (keep the low bits), as numpy's casts do.

Example:
    >>> import numba, numpy as np
    >>> @numba.njit
    ... def narrow(x, out):
    ...     for i in range(x.size):
    ...         out[i] = np.int8(to_int32(x[i]))
    >>> out = np.empty(4, np.int8); narrow(np.array([300.0, -2.7, np.nan, 1e10], np.float32), out)
    >>> out.tolist()
    [44, -2, 0, 0]
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from rustyasg.core.backend_api import FLOAT_TO_INT_VIA, float_to_int


def _python(x, dtype):
    x = np.asarray(x)
    return (float_to_int(x, dtype) if x.dtype.kind == "f" else x.astype(dtype))[()]


def to_int32(x):
    """``x`` as int32 by the core's rule (compiled in numba kernels; see the module docstring).

    >>> int(to_int32(float("nan"))), int(to_int32(-2.7)), int(to_int32(2 ** 33 + 5))
    (-2147483648, -2, 5)
    """
    return _python(x, np.int32)


def to_int64(x):
    """``x`` as int64 by the core's rule (compiled in numba kernels; see the module docstring).

    >>> int(to_int64(1e19)), int(to_int64(-2.7))
    (-9223372036854775808, -2)
    """
    return _python(x, np.int64)


def _guarded(lo: float, make):
    def impl(x):
        if x >= lo and x < -lo:  # False for NaN
            return make(x)
        return make(lo)
    return impl


@overload(to_int32, inline="always")
def _to_int32(x):
    if isinstance(x, types.Float):
        return _guarded(-2147483648.0, np.int32)
    return lambda x: np.int32(x)


@overload(to_int64, inline="always")
def _to_int64(x):
    if isinstance(x, types.Float):
        return _guarded(-9223372036854775808.0, np.int64)
    return lambda x: np.int64(x)


#: Target dtype -> the conversion its value goes through (the core's ``FLOAT_TO_INT_VIA``).
VIA = {target.name: f"to_{via.name}" for target, via in FLOAT_TO_INT_VIA.items()}
