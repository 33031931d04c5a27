"""Source ops whose values depend only on shapes: dim_size, zeros_like, ones_like.

These are usually folded to constants by the core; when they are too large to
fold they fill their buffer each call.

Example:
    >>> import numpy as np
    >>> from rustyasg.core.program import Instr
    >>> out = np.empty(2)
    >>> KERNELS["ones_like"](Instr(1, "ones_like", (0,), {}, (2,), out.dtype), []).bound([None, out])(); out
    array([1., 1.])
"""

from __future__ import annotations

import functools
import math


from rustyasg.core.shapes import normalize_axes

from .protocol import Impl


def _fill(value_of):
    def build(ins, args):
        value = value_of(ins, args)
        return Impl(bind=lambda x, out: functools.partial(out.fill, value), label="fill")
    return build


def _dim_size(ins, args):
    shape = args[0].shape
    return ins.dtype.type(math.prod(shape[a] for a in normalize_axes(ins.attrs["axis"], len(shape))))


KERNELS = {
    "dim_size": _fill(_dim_size),
    "zeros_like": _fill(lambda ins, args: 0),
    "ones_like": _fill(lambda ins, args: 1),
}
