"""Movement ops: views where numpy can express them (reshape, transpose, slice,
flip, broadcast_to), numpy copies with ``out=`` for concat/pad/slice_grad, and
numba kernels (:mod:`.indexing`) for take/take_grad/gather/scatter_add.

Example:
    >>> import numpy as np
    >>> from rustyasg.core.program import Instr
    >>> f32 = np.dtype("float32")
    >>> impl = KERNELS["transpose"](Instr(1, "transpose", (0,), {"axes": (1, 0)}, (3, 2), f32), [])
    >>> impl.view(np.zeros((2, 3), f32)).shape
    (3, 2)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rustyasg.core.backend_api import normalize_axis, outer_reduced_inner

from . import indexing
from .protocol import SMALL_ALONE, Elementwise, Impl


def _reshape_view(shape):
    def view(x):
        try:
            return np.reshape(x, shape, copy=False)
        except ValueError:
            return None  # a strided view that cannot be reshaped without copying
        except TypeError:  # numpy < 2.1
            v = x.view()
            try:
                v.shape = shape
            except AttributeError:
                return None
            return v
    return view


def _reshape(ins, args):
    shape = tuple(ins.shape)
    return Impl(view=_reshape_view(shape), bind=lambda x, out: functools.partial(np.copyto, out.reshape(x.shape), x),
                label="reshape")


def _transpose(ins, args):
    axes = tuple(ins.attrs["axes"])
    return Impl(view=lambda x: np.transpose(x, axes), label="transpose")


def _slices(attrs):
    return tuple(slice(a, b, s) for a, b, s in zip(attrs["starts"], attrs["stops"], attrs["steps"]))


def _slice(ins, args):
    sl = _slices(ins.attrs)
    return Impl(view=lambda x: x[sl], label="slice")


def _slice_grad(ins, args):
    sl = _slices(ins.attrs)

    def bind(g, out):
        inner = out[sl]

        def run():
            out.fill(0)
            np.copyto(inner, g)
        return run

    return Impl(bind=bind, label="slice_grad")


def _flip(ins, args):
    axes = tuple(ins.attrs["axes"])
    # np.flip(x, ()) indexes with () and gives a copied scalar for a 0-d x, not a view.
    return Impl(view=lambda x: np.flip(x, axes) if axes else x[...], label="flip")


def _broadcast_to(ins, args):
    shape = tuple(ins.shape)
    return Impl(view=lambda x: np.broadcast_to(x, shape), label="broadcast_to")


def _concat(ins, args):
    axis = normalize_axis(ins.attrs["axis"], len(ins.shape))

    def bind(*arrays):
        *xs, out = arrays
        return functools.partial(np.concatenate, xs, axis, out)

    return Impl(bind=bind, label="numpy.concatenate")


def _pad(ins, args):
    pw = ins.attrs["pad_width"]
    src_shape = args[0].shape
    value = ins.attrs["value"]
    dst_sl, src_sl = [], []
    for i, d in enumerate(src_shape):
        before, after = pw[2 * i], pw[2 * i + 1]
        s0 = max(-before, 0)
        length = d - s0 - max(-after, 0)
        d0 = max(before, 0)
        dst_sl.append(slice(d0, d0 + max(length, 0)))
        src_sl.append(slice(s0, s0 + max(length, 0)))
    dst_sl, src_sl = tuple(dst_sl), tuple(src_sl)

    def bind(x, out):
        inner, src = out[dst_sl], x[src_sl]

        def run():
            out.fill(value)
            np.copyto(inner, src)
        return run

    return Impl(bind=bind, label="pad")


def _take(ins, args):
    x, idx = args
    ax = normalize_axis(ins.attrs["axis"], len(x.shape))
    A, N, B = outer_reduced_inner(x.shape, (ax,))
    M = math.prod(idx.shape)

    def bind(xa, ia, out):
        return functools.partial(indexing.take_rows, xa.reshape(A, N, B), ia.reshape(M), out.reshape(A, M, B))

    return Impl(bind=bind, contiguous=True, label="numba.take_rows")


def _take_grad(ins, args):
    g, idx = args
    ax = normalize_axis(ins.attrs["axis"], len(ins.shape))
    A, N, B = outer_reduced_inner(ins.shape, (ax,))
    M = math.prod(idx.shape)

    def bind(ga, ia, out):
        return functools.partial(indexing.take_rows_grad, ga.reshape(A, M, B), ia.reshape(M), out.reshape(A, N, B))

    return Impl(bind=bind, contiguous=True, label="numba.take_rows_grad")


def _gather_common(x_shape, idx_shape, axis):
    ax = normalize_axis(axis, len(x_shape))
    stride = math.prod(x_shape[ax + 1:])
    return indexing.base_offsets(x_shape, idx_shape, ax), stride, x_shape[ax]


def _gather(ins, args):
    x, idx = args
    base, stride, n = _gather_common(x.shape, idx.shape, ins.attrs["axis"])
    if idx.size <= SMALL_ALONE:  # a classifier's target picks: numpy, no numba loop to compile
        def run(xa, ia, out):
            np.take(xa.reshape(-1), indexing.flat_positions(ia.reshape(-1), base, stride, n, "gather"),
                    out=out.reshape(-1))
        return Impl(run=run, contiguous=True, label="numpy.take")

    def bind(xa, ia, out):
        return functools.partial(indexing.gather_flat, xa.reshape(-1), ia.reshape(-1), base, stride, n, out.reshape(-1))

    return Impl(bind=bind, contiguous=True, label="numba.gather_flat")


def _scatter_add(ins, args):
    x, idx, src = args
    base, stride, n = _gather_common(x.shape, idx.shape, ins.attrs["axis"])
    if max(idx.size, x.size) <= SMALL_ALONE:
        def run(xa, ia, sa, out):
            flat = out.reshape(-1)
            at = indexing.flat_positions(ia.reshape(-1), base, stride, n, "scatter_add")
            np.copyto(flat, xa.reshape(-1))
            np.add.at(flat, at, sa.reshape(-1))
        return Impl(run=run, contiguous=True, label="numpy.add.at")

    def bind(xa, ia, sa, out):
        return functools.partial(indexing.scatter_add_flat, xa.reshape(-1), ia.reshape(-1), sa.reshape(-1),
                                 base, stride, n, out.reshape(-1))

    return Impl(bind=bind, contiguous=True, label="numba.scatter_add_flat")


def _one_hot(ins, args):
    classes = np.arange(ins.attrs["num_classes"], dtype=args[0].dtype)

    def bind(ia, out):
        return functools.partial(np.equal, ia[..., None], classes, out)

    return Impl(bind=bind, label="numpy.one_hot")


def _assemble(ins, args):
    """Disjoint pieces written side by side (from the ``cpu_slice_assemble`` rewrite)."""
    slices = [tuple(slice(*axis) for axis in piece) for piece in ins.attrs["slices"]]
    covered = sum(np.zeros(ins.shape, np.int8)[sl].size for sl in slices) == int(np.prod(ins.shape))

    def bind(*arrays):
        *pieces, out = arrays
        views = [(out[sl], p) for sl, p in zip(slices, pieces)]

        def run():
            if not covered:
                out.fill(0)
            for view, piece in views:
                np.copyto(view, piece)
        return run

    return Impl(bind=bind, label="assemble")


KERNELS = {
    "cpu.assemble": _assemble,
    "reshape": _reshape,
    "transpose": _transpose,
    "slice": _slice,
    "slice_grad": _slice_grad,
    "flip": _flip,
    # Inside a fused loop a broadcast is just an operand read with a broadcast index pattern.
    "broadcast_to": Elementwise("{0}", alone=_broadcast_to),
    "concat": _concat,
    "pad": _pad,
    "take": _take,
    "take_grad": _take_grad,
    "gather": _gather,
    "scatter_add": _scatter_add,
    "one_hot": _one_hot,
}
