"""Pooling kernels (numba): max and average pooling, plain and adaptive, with backward.

Window geometry comes from the core (:mod:`rustyasg.core.backend_api`),
so the kernels and the references agree on ceil mode, padding and adaptive
bounds by construction. Per axis a pooling is a table of input positions per
output index, ``(O, K)``, plus a weight per slot:

- max pooling: the weight says whether the slot is inside the input (padding
  never wins); taps are scanned in row-major window order and taken when
  ``v > best or v != v`` (PyTorch's rule: the first maximum wins ties, the last
  NaN wins when there are NaNs; the fixed-window kernels test a plane for NaN once
  and run the plain ``>`` on a NaN-free one), and the taken tap's flat ``h*W + w``
  index is what ``*_indices`` returns and ``*_backward`` routes to;
- average pooling: the weights are the rows of the core's separable averaging
  matrices, so every divisor rule is inherited, not re-derived.

Example:
    >>> import numpy as np
    >>> hp = np.array([[0, 1]]); hv = np.ones((1, 2), np.bool_)
    >>> out = np.empty((1, 1, 1)); idx = np.empty((1, 1, 1), np.int64)
    >>> max_pool_planes(np.array([[[1.0, 5.0], [7.0, 2.0]]]), hp, hv, hp, hv, out, idx, 0, 1); out.item(), idx.item()
    (7.0, 2)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rustyasg.core.backend_api import adaptive_avg_matrix, adaptive_positions, avg_pool_matrix, pool_positions

from ..jit import kernel_jit
from ..threads import splitter
from .protocol import Impl


@kernel_jit
def max_pool_planes(x, hp, hv, wp, wv, out, idx, lo, hi):
    """Window maxima and their flat indices for planes lo..hi; output rows are updated tap by tap."""
    P, H, W = x.shape
    OH, KH = hp.shape
    OW, KW = wp.shape
    for p in range(lo, hi):
        for oh in range(OH):
            for ow in range(OW):
                idx[p, oh, ow] = -1
            for i in range(KH):
                if not hv[oh, i]:
                    continue
                h = hp[oh, i]
                for j in range(KW):
                    # taps in row-major window order: the first maximum wins ties, the last NaN wins
                    for ow in range(OW):
                        if not wv[ow, j]:
                            continue
                        w = wp[ow, j]
                        v = x[p, h, w]
                        if idx[p, oh, ow] < 0 or v > out[p, oh, ow] or v != v:
                            out[p, oh, ow] = v
                            idx[p, oh, ow] = h * W + w


@njit(inline="always", cache=True)
def _take_ordered(v, best):
    """PyTorch's rule on a plane without NaN: a strict ``>``, so the first maximum wins ties."""
    return v > best


@njit(inline="always", cache=True)
def _take_nan(v, best):
    """PyTorch's rule on a plane holding NaN: also take every NaN, so the last NaN wins."""
    return (v > best) | (v != v)


@njit(inline="always", cache=True)
def _has_nan(plane):
    """Whether a (H, W) plane holds a NaN: one vectorized scan of a plane the window loops read
    next from cache; a NaN-free plane then runs the plain ``>`` (the NaN test in every tap of a
    select chain costs up to 2x)."""
    nan = False
    for h in range(plane.shape[0]):
        for w in range(plane.shape[1]):
            nan |= plane[h, w] != plane[h, w]
    return nan


@njit(inline="always", cache=True)
def _window_argmax(x, p, h0, w0, kh, kw, W, take):
    """(max, flat index) of the kh x kw window at (h0, w0) of plane p: taps in row-major window
    order, reduced in registers with selects, not branches (a data-dependent branch mispredicts
    on about half the taps)."""
    best = x[p, h0, w0]
    bi = h0 * W + w0
    for i in range(kh):
        for j in range(kw):
            v = x[p, h0 + i, w0 + j]
            t = take(v, best)
            best = v if t else best
            bi = (h0 + i) * W + w0 + j if t else bi
    return best, bi


@kernel_jit
def max_pool_regular(x, kh, kw, s0, s1, hp, hv, wp, wv, out, idx, lo, hi):
    """:func:`max_pool_planes` when every window lies inside the input with unit dilation:
    window positions are computed, not looked up. The position tables are accepted (and
    ignored) so both kernels bind alike."""
    W = x.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    for p in range(lo, hi):
        nan = _has_nan(x[p])
        for oh in range(OH):
            for ow in range(OW):
                if nan:
                    best, bi = _window_argmax(x, p, oh * s0, ow * s1, kh, kw, W, _take_nan)
                else:
                    best, bi = _window_argmax(x, p, oh * s0, ow * s1, kh, kw, W, _take_ordered)
                out[p, oh, ow] = best
                idx[p, oh, ow] = bi


@kernel_jit
def max_unpool_regular(g, x, kh, kw, s0, s1, dx, lo, hi):
    """Backward of :func:`max_pool_regular` in one pass: each window's maximum is found again
    (as the forward does) and the gradient added there, with no index array in between."""
    P, H, W = x.shape
    OH, OW = g.shape[1], g.shape[2]
    flat = dx.reshape(P, H * W)
    for p in range(lo, hi):
        fp = flat[p]
        fp[:] = 0
        nan = _has_nan(x[p])
        for oh in range(OH):
            for ow in range(OW):
                if nan:
                    _, bi = _window_argmax(x, p, oh * s0, ow * s1, kh, kw, W, _take_nan)
                else:
                    _, bi = _window_argmax(x, p, oh * s0, ow * s1, kh, kw, W, _take_ordered)
                fp[bi] += g[p, oh, ow]


@njit(inline="always", cache=True)
def _window_max_2x2(r0, r1, h0, w0, W, take):
    """(max, flat index) of the 2x2 window at (h0, w0) of rows r0, r1: taps in window order,
    unrolled, branch-free selects by the ``take`` rule."""
    best = r0[w0]
    bi = h0 * W + w0
    v = r0[w0 + 1]
    t = take(v, best)
    best = v if t else best
    bi = h0 * W + w0 + 1 if t else bi
    v = r1[w0]
    t = take(v, best)
    best = v if t else best
    bi = (h0 + 1) * W + w0 if t else bi
    v = r1[w0 + 1]
    t = take(v, best)
    best = v if t else best
    bi = (h0 + 1) * W + w0 + 1 if t else bi
    return best, bi


@kernel_jit
def max_pool_2x2(x, out, idx, lo, hi):
    """:func:`max_pool_regular` for 2x2 windows of stride 2 (the common case), unrolled: the
    window loops with run-time bounds keep LLVM from vectorizing (6x slower on LeNet's pooling).
    Vectorized across windows, the NaN test costs nothing here: no plane test.

    An empty ``idx`` (the forward pass: its backward finds the maxima again, :func:`max_unpool_2x2`)
    writes values only; LLVM then drops the index selects too (LeNet's first pooling 0.23 -> 0.055 ms).
    """
    W = x.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    with_index = idx.size > 0
    for p in range(lo, hi):
        for oh in range(OH):
            h0 = 2 * oh
            r0 = x[p, h0]
            r1 = x[p, h0 + 1]
            o = out[p, oh]
            if with_index:
                ix = idx[p, oh]
                for ow in range(OW):
                    best, bi = _window_max_2x2(r0, r1, h0, 2 * ow, W, _take_nan)
                    o[ow] = best
                    ix[ow] = bi
            else:
                for ow in range(OW):
                    o[ow] = _window_max_2x2(r0, r1, h0, 2 * ow, W, _take_nan)[0]


@kernel_jit
def max_unpool_2x2(g, x, dx, lo, hi):
    """Backward of :func:`max_pool_2x2` in one pass: each row of windows' maxima is found again
    (as the forward does, vectorized) into a row of indices, then the gradient is added there;
    no index array of the whole output in between."""
    P, H, W = x.shape
    OH, OW = g.shape[1], g.shape[2]
    flat = dx.reshape(P, H * W)
    row = np.empty(OW, np.int64)
    for p in range(lo, hi):
        fp = flat[p]
        fp[:] = 0
        for oh in range(OH):
            h0 = 2 * oh
            r0 = x[p, h0]
            r1 = x[p, h0 + 1]
            for ow in range(OW):
                _, row[ow] = _window_max_2x2(r0, r1, h0, 2 * ow, W, _take_nan)
            go = g[p, oh]
            for ow in range(OW):
                fp[row[ow]] += go[ow]


@kernel_jit
def unpool_planes(g, idx, dx, lo, hi):
    """dx[p, idx[p, o]] += g[p, o] for planes lo..hi: route the gradient to each window's maximum."""
    P = dx.shape[0]
    flat = dx.reshape(P, -1)
    for p in range(lo, hi):
        flat[p] = 0
        for o in range(g.shape[1]):
            flat[p, idx[p, o]] += g[p, o]


@kernel_jit
def avg_pool_planes(x, hp, hw, wp, ww, out, lo, hi):
    OH, KH = hp.shape
    OW, KW = wp.shape
    for p in range(lo, hi):
        for oh in range(OH):
            for ow in range(OW):
                acc = 0.0
                for i in range(KH):
                    for j in range(KW):
                        acc += hw[oh, i] * ww[ow, j] * x[p, hp[oh, i], wp[ow, j]]
                out[p, oh, ow] = acc


@kernel_jit
def avg_unpool_planes(g, hp, hw, wp, ww, dx, lo, hi):
    OH, KH = hp.shape
    OW, KW = wp.shape
    for p in range(lo, hi):
        dx[p] = 0
        for oh in range(OH):
            for ow in range(OW):
                v = g[p, oh, ow]
                for i in range(KH):
                    for j in range(KW):
                        dx[p, hp[oh, i], wp[ow, j]] += hw[oh, i] * ww[ow, j] * v


def _sparse_rows(mat: np.ndarray):
    """(positions, weights) ``(O, K)`` of the nonzeros of each row of an averaging matrix."""
    k = max(1, int((mat != 0).sum(axis=1).max()))
    pos = np.zeros((mat.shape[0], k), np.int64)
    wts = np.zeros((mat.shape[0], k), np.float64)
    for o, row in enumerate(mat):
        nz = np.flatnonzero(row)
        pos[o, :len(nz)] = nz
        wts[o, :len(nz)] = row[nz]
    return pos, wts


def _max_geometry(op, hw, attrs):
    if op.startswith("adaptive"):
        return tuple(adaptive_positions(n, o) for n, o in zip(hw, attrs["output_size"]))
    return tuple(pool_positions(n, k, s, p, d, attrs["ceil_mode"]) for n, k, s, p, d in
                 zip(hw, attrs["kernel_size"], attrs["stride"], attrs["padding"], attrs["dilation"]))


def _avg_geometry(op, hw, attrs):
    if op.startswith("adaptive"):
        mats = tuple(adaptive_avg_matrix(n, o) for n, o in zip(hw, attrs["output_size"]))
    else:
        override = attrs["divisor_override"]
        # As the core: an override divides once, so it goes on the width axis only.
        divisors = (0.0, 0.0) if override is None else (1.0, float(override))
        mats = tuple(avg_pool_matrix(n, k, s, p, attrs["ceil_mode"], attrs["count_include_pad"], div)
                     for n, k, s, p, div in zip(hw, attrs["kernel_size"], attrs["stride"], attrs["padding"], divisors))
    return tuple(_sparse_rows(m) for m in mats)


def _max_pool(base: str, what: str):
    """Kernel builder for ``base`` (max_pool2d / adaptive_max_pool2d): forward, indices or backward."""
    def build(ins, args):
        x = args[-1] if what == "backward" else args[0]
        N, C, H, W = x.shape
        (hp, hv), (wp, wv) = _max_geometry(base, (H, W), ins.attrs)
        hp, wp = np.ascontiguousarray(hp, np.int64), np.ascontiguousarray(wp, np.int64)
        hv, wv = np.ascontiguousarray(hv), np.ascontiguousarray(wv)
        OH, OW = hp.shape[0], wp.shape[0]
        val_dt = x.dtype
        scratch = (((N * C, OH, OW), np.int64),) if what != "indices" else (((N * C, OH, OW), val_dt),)
        if what == "backward":
            scratch += (((N * C, OH, OW), val_dt),)

        P = N * C
        work = P * OH * OW * hp.shape[1] * wp.shape[1]
        regular = (not base.startswith("adaptive") and tuple(ins.attrs["padding"]) == (0, 0)
                   and tuple(ins.attrs["dilation"]) == (1, 1) and bool(hv.all()) and bool(wv.all()))
        if regular:
            (kh, kw), (s0, s1) = ins.attrs["kernel_size"], ins.attrs["stride"]
            kernel, geometry = max_pool_regular, (kh, kw, s0, s1, hp, hv, wp, wv)
        square2 = regular and (kh, kw, s0, s1) == (2, 2, 2, 2)
        if square2:
            kernel, geometry = max_pool_2x2, ()
        else:
            kernel, geometry = max_pool_planes, (hp, hv, wp, wv)
        if square2 and what == "forward":
            scratch = ()  # values only: an empty index array

        def bind(*arrays):
            if what == "forward":
                xa, out, *idx = arrays
                idx = idx[0] if idx else np.empty((0, 0, 0), np.int64)
                return splitter(kernel, P, work, xa.reshape(P, H, W), *geometry, out.reshape(P, OH, OW), idx)
            if what == "indices":
                xa, out, vals = arrays
                return splitter(kernel, P, work, xa.reshape(P, H, W), *geometry, vals, out.reshape(P, OH, OW))
            ga, xa, out, idx, vals = arrays
            if square2:
                return splitter(max_unpool_2x2, P, work + P * H * W, ga.reshape(P, OH, OW),
                                xa.reshape(P, H, W), out.reshape(P, H, W))
            if regular:
                return splitter(max_unpool_regular, P, work + P * H * W, ga.reshape(P, OH, OW),
                                xa.reshape(P, H, W), kh, kw, s0, s1, out.reshape(P, H, W))
            pool = splitter(kernel, P, work, xa.reshape(P, H, W), *geometry, vals, idx)
            scatter = splitter(unpool_planes, P, out.size, ga.reshape(P, OH * OW), idx.reshape(P, OH * OW),
                               out.reshape(P, H, W))

            def run():
                pool()
                scatter()
            return run

        return Impl(bind=bind, scratch=scratch, contiguous=True, label=f"numba.{base}.{what}")
    return build


def _avg_pool(base: str, backward: bool):
    def build(ins, args):
        if backward:
            N, C = ins.shape[:2]
            H, W = ins.shape[2:]
        else:
            N, C, H, W = args[0].shape
        (hp, hw), (wp, ww) = _avg_geometry(base, (H, W), ins.attrs)
        OH, OW = hp.shape[0], wp.shape[0]

        P = N * C
        work = P * OH * OW * hp.shape[1] * wp.shape[1]

        def bind(src, out):
            if backward:
                return splitter(avg_unpool_planes, P, work, src.reshape(P, OH, OW), hp, hw, wp, ww,
                                out.reshape(P, H, W))
            return splitter(avg_pool_planes, P, work, src.reshape(P, H, W), hp, hw, wp, ww, out.reshape(P, OH, OW))

        return Impl(bind=bind, contiguous=True, label=f"numba.{base}{'.backward' if backward else ''}")
    return build


KERNELS = {}
for _base in ("max_pool2d", "adaptive_max_pool2d"):
    KERNELS[_base] = _max_pool(_base, "forward")
    KERNELS[f"{_base}_indices"] = _max_pool(_base, "indices")
    KERNELS[f"{_base}_backward"] = _max_pool(_base, "backward")
for _base in ("avg_pool2d", "adaptive_avg_pool2d"):
    KERNELS[_base] = _avg_pool(_base, False)
    KERNELS[f"{_base}_backward"] = _avg_pool(_base, True)
