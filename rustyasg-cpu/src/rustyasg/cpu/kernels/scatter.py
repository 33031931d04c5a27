"""numba kernel of ``scatter_reduce`` (assign, sum, prod, mean, amax, amin; ``include_self``).

One pass over the index in C order with a per-target hit count (a scratch buffer):
the count says whether a target still holds ``x``'s value (replaced by the first
``src`` value unless ``include_self``) and divides the sum for ``mean``. The flat
addressing is that of ``gather``/``scatter_add`` (:func:`.indexing.base_offsets`).

Example:
    >>> import numpy as np
    >>> out, cnt = np.empty(3), np.empty(3, np.int64)
    >>> scatter_reduce_flat(np.zeros(3), np.array([0, 2, 0]), np.array([1., 2., 3.]), np.zeros(3, np.int64),
    ...                     1, 3, MODES["amax"], False, False, out, cnt)
    >>> out
    array([3., 0., 2.])
"""

from __future__ import annotations

import functools
import math

from ..jit import kernel_jit
from .indexing import _checked_index, base_offsets
from .protocol import Impl

MODES = {"assign": 0, "sum": 1, "prod": 2, "mean": 3, "amax": 4, "amin": 5}


@kernel_jit
def scatter_reduce_flat(x, idx, src, base, stride, n, mode, include_self, integer, out, count):
    for k in range(x.shape[0]):
        out[k] = x[k]
        count[k] = 0
    for m in range(idx.shape[0]):
        t = base[m] + _checked_index(idx[m], n, "scatter_reduce: index out of range") * stride
        v = src[m]
        if mode == 0 or (count[t] == 0 and not include_self):
            out[t] = v
        elif mode == 1 or mode == 3:
            out[t] += v
        elif mode == 2:
            out[t] *= v
        elif mode == 4:
            if v != v or v > out[t]:  # NaN propagates, as in PyTorch
                out[t] = v
        elif v != v or v < out[t]:
            out[t] = v
        count[t] += 1
    if mode == 3:
        for k in range(out.shape[0]):
            if count[k] > 0:
                c = count[k] + (1 if include_self else 0)
                if integer:
                    out[k] = out[k] // c
                else:
                    out[k] = out[k] / c


def _scatter_reduce(ins, args):
    x, idx, src = args
    shape = tuple(x.shape) or (1,)
    ax = ins.attrs["axis"] % len(shape)
    base = base_offsets(shape, tuple(idx.shape) or (1,), ax)
    stride, n = math.prod(shape[ax + 1:]), shape[ax]
    mode, include_self = MODES[ins.attrs["reduce"]], bool(ins.attrs["include_self"])
    integer = x.dtype.kind in "iub"

    def bind(xa, ia, sa, out, count):
        return functools.partial(scatter_reduce_flat, xa.reshape(-1), ia.reshape(-1), sa.reshape(-1), base, stride,
                                 n, mode, include_self, integer, out.reshape(-1), count)

    return Impl(bind=bind, contiguous=True, scratch=(((max(math.prod(shape), 1),), "int64"),),
                label="numba.scatter_reduce_flat")


KERNELS = {"scatter_reduce": _scatter_reduce}
