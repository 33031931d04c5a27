"""Reductions: sum/mean/max/min/prod/var/argmax/argmin through numpy's reduce loops,
softmax/log_softmax/logsumexp through numba (:mod:`.rowwise`), and sum_to.

sum, mean, max, min and sum_to are :class:`~.protocol.Reduction` kernels: when
their operand is computed by a fused group they are accumulated inside that
group's loop; alone they use numpy's pairwise-summing reduce with ``out=``.

Example:
    >>> KERNELS["mean"].combine, KERNELS["mean"].mean
    ('sum', True)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rustyasg.core.backend_api import outer_reduced_inner, reduced_shape
from rustyasg.core.shapes import normalize_axes, normalize_axis

from ..codegen import reduced_axes
from ..threads import splitter
from .protocol import SMALL_ALONE, Impl, Reduction
from . import rowwise


def _reduce_build(ufunc, mean=False):
    def build(ins, args):
        x = args[0]
        axes = reduced_axes(ins, x.shape)
        kshape = reduced_shape(x.shape, axes, True)
        count = math.prod(x.shape[a] for a in axes)
        # The mean of nothing is NaN (numpy, PyTorch): the empty sum 0 times NaN.
        inv = ins.dtype.type(1.0 / count if count else np.nan) if mean else None
        dtype = ins.dtype

        def bind(xa, out):
            ok = out.reshape(kshape)
            if mean:
                def run():
                    ufunc.reduce(xa, axes, dtype, ok, True)
                    np.multiply(ok, inv, out=ok)
                return run
            return functools.partial(ufunc.reduce, xa, axes, dtype, ok, True)

        return Impl(bind=bind, label=f"numpy.{ufunc.__name__}.reduce")
    return build


def _var(ins, args):
    x = args[0]
    axes = normalize_axes(ins.attrs["axis"], len(x.shape))
    kshape = reduced_shape(x.shape, axes, True)

    def bind(xa, out):
        return functools.partial(np.var, xa, axes, ins.dtype, out.reshape(kshape), ins.attrs["correction"], True)

    return Impl(bind=bind, label="numpy.var")


def _arg(fn):
    def build(ins, args):
        axis = ins.attrs["axis"]
        nd = len(args[0].shape)

        def bind(xa, out):
            if axis is None or nd == 0:  # a 0-d tensor is its own single-element axis
                return functools.partial(fn, xa.reshape(-1), None, out.reshape(()))
            ax = normalize_axis(axis, nd)
            ok = out.reshape(reduced_shape(args[0].shape, (ax,), True))
            return functools.partial(fn, xa, ax, ok, keepdims=True)

        return Impl(bind=bind, label=f"numpy.{fn.__name__}")
    return build


def _rowwise(rows, general):
    """softmax-like ops along one axis: ``rows`` for the last axis, ``general`` for (A, R, B)."""
    def build(ins, args):
        shape = args[0].shape
        A, R, B = outer_reduced_inner(shape, normalize_axes(ins.attrs["axis"], len(shape)))  # () on a 0-d tensor
        if A * R * B == 0:
            return Impl(run=lambda x, out: None)
        view = (A, R) if B == 1 else (A, R, B)
        if A * R * B <= SMALL_ALONE:  # a classifier's loss: numpy, no numba loop to compile
            return Impl(run=functools.partial(rowwise.numpy_form, rows, view), contiguous=True,
                        label=f"numpy.{ins.op}")
        name = rows if B == 1 else general
        fn = rowwise.kernel(name, ins.dtype)
        return Impl(bind=lambda x, out: splitter(fn, A, 3 * A * R * B, x.reshape(view), out.reshape(view)),
                    contiguous=True, label=f"numba.{name}")
    return build


def _logsumexp(ins, args):
    shape = args[0].shape
    axes = normalize_axes(ins.attrs["axis"], len(shape))
    layout = outer_reduced_inner(shape, axes)
    if layout is not None and math.prod(shape) > 0:
        A, R, B = layout
        fn = rowwise.kernel("logsumexp_arb", ins.dtype)
        return Impl(bind=lambda x, out: splitter(fn, A, 2 * A * R * B, x.reshape(A, R, B), out.reshape(A, B)),
                    contiguous=True, label="numba.logsumexp_arb")
    kshape = reduced_shape(shape, axes, True)

    def run(x, out):  # axes that are not adjacent: rare, so numpy's composite is enough
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True), out=out.reshape(kshape))
        np.add(out.reshape(kshape), m, out=out.reshape(kshape))

    return Impl(run=run, label="numpy.logsumexp")


KERNELS = {
    "sum": Reduction("sum", _reduce_build(np.add)),
    "mean": Reduction("sum", _reduce_build(np.add, mean=True), mean=True),
    "max": Reduction("max", _reduce_build(np.maximum)),
    "min": Reduction("min", _reduce_build(np.minimum)),
    "sum_to": Reduction("sum", _reduce_build(np.add)),
    "prod": _reduce_build(np.multiply),
    "var": _var,
    "argmax": _arg(np.argmax),
    "argmin": _arg(np.argmin),
    "softmax": _rowwise("softmax_rows", "softmax_arb"),
    "log_softmax": _rowwise("log_softmax_rows", "log_softmax_arb"),
    "logsumexp": _logsumexp,
}
