"""conv2d and its backward ops: im2col (numba) + one GEMM per group (BLAS), col2im (numba).

Columns are laid out ``(C*kh*kw, N, OH*OW)``: row ``(c, i, j)`` holds, for every
image and output position, the input value under kernel tap ``(i, j)`` of
channel ``c``. With that layout each op is a single large GEMM per group
(measured faster and far steadier than one small GEMM per image, whose thread
hand-offs dominate on a busy machine), at the price of a cheap transpose of the
(small) output or output-gradient between ``(N, O, P)`` and ``(O, N, P)``:

- forward:          ``out[g] = W[g] @ cols[g]``                 (O/g, N*P)
- backward_weight:  ``dW[g] = gradT[g] @ cols[g].T``            (O/g, C/g*kh*kw)
- backward_input:   ``dcols[g] = W[g].T @ gradT[g]``, then col2im adds the
  columns back into the input positions they came from.

The ``cpu_conv_im2col`` rewrite (:mod:`..rewrites`) makes the column matrix an
instruction of its own, so the forward pass and the weight gradient share it
instead of building it twice. A 1x1 convolution with unit stride and no
padding needs no columns at all: it is a batched matmul on the input.

Example:
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); cols = np.empty((4, 1, 4))
    >>> im2col(x, cols, 2, 2, 1, 1, 1, 1, 2, 2, 0, 1); cols[:, 0, 0]
    array([0., 1., 3., 4.])
"""

from __future__ import annotations

import functools

import numpy as np

from ..jit import kernel_jit
from ..threads import splitter
from .protocol import Impl


@kernel_jit
def pad_into(x, xp, p0, p1, lo, hi):
    """xp[lo:hi] = x[lo:hi] zero-padded by (p0, p1) on both sides of the last two axes."""
    N, C, H, W = x.shape
    for n in range(np.uint64(lo), np.uint64(hi)):
        xp[n] = 0
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    xp[n, c, h + p0, w + p1] = x[n, c, h, w]


@kernel_jit
def crop_from(xp, x, p0, p1, lo, hi):
    """x[lo:hi] = the interior of xp[lo:hi] (the inverse of pad_into)."""
    N, C, H, W = x.shape
    for n in range(np.uint64(lo), np.uint64(hi)):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    x[n, c, h, w] = xp[n, c, h + p0, w + p1]


@kernel_jit
def im2col(xp, cols, kh, kw, s0, s1, d0, d1, oh, ow, lo, hi):
    """cols[(c*kh + i)*kw + j, n, y*ow + z] = xp[n, c, y*s0 + i*d0, z*s1 + j*d1] for images lo..hi.

    ``xp`` is already padded, so the loops carry no bounds tests. This general form
    reads rows with a stride; :func:`im2col_dense` is the unit-stride, undilated case.
    """
    C = xp.shape[1]
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                off = j * d1
                for n in range(np.uint64(lo), np.uint64(hi)):
                    for y in range(oh):
                        h = y * s0 + i * d0
                        base = y * ow
                        for z in range(ow):
                            cols[row, n, base + z] = xp[n, c, h, z * s1 + off]


@kernel_jit
def im2col_dense(xp, cols, kh, kw, s0, s1, d0, d1, oh, ow, lo, hi):
    """:func:`im2col` for horizontal stride and dilation 1: contiguous row copies that
    vectorize (4.6x faster than the strided form with s1 = 1 passed at run time, measured)."""
    C = xp.shape[1]
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(np.uint64(lo), np.uint64(hi)):
                    for y in range(oh):
                        h = y * s0 + i * d0
                        base = y * ow
                        for z in range(ow):
                            cols[row, n, base + z] = xp[n, c, h, z + j]


@kernel_jit
def col2im(cols, dxp, kh, kw, s0, s1, d0, d1, oh, ow, lo, hi):
    """The transpose of im2col for images lo..hi: dxp[n, c, h, w] = sum of the entries that read it."""
    C = dxp.shape[1]
    for n in range(np.uint64(lo), np.uint64(hi)):
        dxp[n] = 0
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                off = j * d1
                for n in range(np.uint64(lo), np.uint64(hi)):
                    for y in range(oh):
                        h = y * s0 + i * d0
                        base = y * ow
                        for z in range(ow):
                            dxp[n, c, h, z * s1 + off] += cols[row, n, base + z]


@kernel_jit
def col2im_dense(cols, dxp, kh, kw, s0, s1, d0, d1, oh, ow, lo, hi):
    """:func:`col2im` for horizontal stride and dilation 1 (contiguous, vectorized)."""
    C = dxp.shape[1]
    for n in range(np.uint64(lo), np.uint64(hi)):
        dxp[n] = 0
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(np.uint64(lo), np.uint64(hi)):
                    for y in range(oh):
                        h = y * s0 + i * d0
                        base = y * ow
                        for z in range(ow):
                            dxp[n, c, h, z + j] += cols[row, n, base + z]


def hyper(attrs):
    """(stride, padding, dilation, groups) of a conv instruction's attributes."""
    return tuple(attrs["stride"]), tuple(attrs["padding"]), tuple(attrs["dilation"]), int(attrs["groups"])


def is_pointwise(kernel, stride, padding) -> bool:
    """1x1, stride 1, no padding: the input already is the column matrix."""
    return tuple(kernel) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def padded_shape(x_shape, padding):
    n, c, h, w = x_shape
    return (n, c, h + 2 * padding[0], w + 2 * padding[1])


def _im2col_call(xa, cols, xp, kernel, stride, padding, dilation, out_hw):
    """Zero-argument im2col of ``xa`` into ``cols`` (through the padded scratch ``xp`` if padding)."""
    (kh, kw), (s0, s1), (p0, p1), (d0, d1), (oh, ow) = kernel, stride, padding, dilation, out_hw
    n = xa.shape[0]
    c3 = cols.reshape(cols.shape[0], n, oh * ow)
    kernel = im2col_dense if (s1, d1) == (1, 1) else im2col
    fill = splitter(kernel, n, cols.size, xa if xp is None else xp, c3, kh, kw, s0, s1, d0, d1, oh, ow)
    if xp is None:
        return fill
    return _in_order(splitter(pad_into, n, xp.size, xa, xp, p0, p1), fill)


def _in_order(first, second):
    """Zero-argument call running ``first()`` then ``second()``."""
    def run():
        first()
        second()
    return run


def _pad_scratch(x_shape, padding, dtype):
    return (((padded_shape(x_shape, padding), dtype),) if any(padding) else ())


def _gemm_forward(cols, wa, out, tmp, g):
    """out (N, O, P) = W @ cols per group, through ``tmp`` (g, O/g, N*P)."""
    N, O = out.shape[:2]
    P = out.size // (N * O)
    w3 = wa.reshape(g, O // g, -1)
    c3 = cols.reshape(g, -1, N * P)
    src = tmp.reshape(g, O // g, N, P).transpose(2, 0, 1, 3)
    dst = out.reshape(N, g, O // g, P)

    def run():
        np.matmul(w3, c3, tmp)
        np.copyto(dst, src)
    return run


def _gemm_weight(ga, cols, out, gt, g):
    """dW (O, C/g, kh, kw) = gradT @ cols.T per group; ``gt`` (g, O/g, N, P) holds the transposed gradient."""
    N, O = ga.shape[:2]
    P = ga.size // (N * O)
    src = ga.reshape(N, g, O // g, P).transpose(1, 2, 0, 3)
    g3 = gt.reshape(g, O // g, N * P)
    ct = cols.reshape(g, -1, N * P).transpose(0, 2, 1)
    out3 = out.reshape(g, O // g, -1)

    def run():
        np.copyto(gt, src)
        np.matmul(g3, ct, out3)
    return run


def _conv2d(ins, args):
    x, w = args
    stride, padding, dilation, g = hyper(ins.attrs)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    oh, ow = ins.shape[2:]
    if is_pointwise((kh, kw), stride, padding):
        def bind(xa, wa, out):
            return functools.partial(np.matmul, wa.reshape(g, O // g, Cg), xa.reshape(N, g, Cg, oh * ow),
                                     out.reshape(N, g, O // g, oh * ow))
        return Impl(bind=bind, contiguous=True, label="conv1x1.gemm")
    scratch = (((C * kh * kw, N * oh * ow), ins.dtype), ((g, O // g, N * oh * ow), ins.dtype)) \
        + _pad_scratch(x.shape, padding, ins.dtype)

    def bind(xa, wa, out, cols, tmp, *xp):
        fill = _im2col_call(xa, cols, xp[0] if xp else None, (kh, kw), stride, padding, dilation, (oh, ow))
        return _in_order(fill, _gemm_forward(cols, wa, out, tmp, g))

    return Impl(bind=bind, scratch=scratch, contiguous=True, label="im2col+gemm")


def _backward_weight(ins, args):
    gr, x = args
    stride, padding, dilation, g = hyper(ins.attrs)
    N, O, oh, ow = gr.shape
    C = x.shape[1]
    kh, kw = ins.attrs["kernel_size"]
    if is_pointwise((kh, kw), stride, padding) and (oh, ow) == tuple(x.shape[2:]):
        scratch = (((N, g, O // g, C // g), ins.dtype),)

        def bind(ga, xa, out, part):
            g4 = ga.reshape(N, g, O // g, oh * ow)
            xt = xa.reshape(N, g, C // g, oh * ow).transpose(0, 1, 3, 2)
            out3 = out.reshape(g, O // g, C // g)

            def run():
                np.matmul(g4, xt, part)
                np.add.reduce(part, 0, None, out3)
            return run
        return Impl(bind=bind, scratch=scratch, contiguous=True, label="conv1x1.gemm(dW)")
    scratch = (((C * kh * kw, N * oh * ow), ins.dtype), ((g, O // g, N, oh * ow), ins.dtype)) \
        + _pad_scratch(x.shape, padding, ins.dtype)

    def bind(ga, xa, out, cols, gt, *xp):
        fill = _im2col_call(xa, cols, xp[0] if xp else None, (kh, kw), stride, padding, dilation, (oh, ow))
        return _in_order(fill, _gemm_weight(ga, cols, out, gt, g))

    return Impl(bind=bind, scratch=scratch, contiguous=True, label="im2col+gemm(dW)")


def _backward_input(ins, args):
    gr, w = args
    (s0, s1), (p0, p1), (d0, d1), g = hyper(ins.attrs)
    N, O, oh, ow = gr.shape
    _, Cg, kh, kw = w.shape
    H, W = ins.attrs["input_size"]
    if is_pointwise((kh, kw), (s0, s1), (p0, p1)) and (oh, ow) == (H, W):
        def bind(ga, wa, out):
            wt = wa.reshape(g, O // g, Cg).transpose(0, 2, 1)
            return functools.partial(np.matmul, wt, ga.reshape(N, g, O // g, oh * ow), out.reshape(N, g, Cg, oh * ow))
        return Impl(bind=bind, contiguous=True, label="conv1x1.gemm(dX)")
    K = Cg * kh * kw
    scratch = (((g, O // g, N, oh * ow), ins.dtype), ((g, K, N * oh * ow), ins.dtype)) \
        + _pad_scratch(ins.shape, (p0, p1), ins.dtype)

    def bind(ga, wa, out, gt, dcols, *xp):
        src = ga.reshape(N, g, O // g, oh * ow).transpose(1, 2, 0, 3)
        g3 = gt.reshape(g, O // g, N * oh * ow)
        wt = wa.reshape(g, O // g, K).transpose(0, 2, 1)
        c3 = dcols.reshape(g * K, N, oh * ow)
        dxp = xp[0] if xp else out
        scatter = splitter(col2im_dense if (s1, d1) == (1, 1) else col2im, N, dcols.size, c3, dxp,
                           kh, kw, s0, s1, d0, d1, oh, ow)
        crop = splitter(crop_from, N, out.size, dxp, out, p0, p1) if xp else None

        def run():
            np.copyto(gt, src)
            np.matmul(wt, g3, dcols)
            scatter()
            if crop is not None:
                crop()
        return run

    return Impl(bind=bind, scratch=scratch, contiguous=True, label="gemm+col2im(dX)")


# --- the shared-columns form produced by the cpu_conv_im2col rewrite -----------------------------
def _im2col_op(ins, args):
    attrs = ins.attrs

    def bind(xa, out, *xp):
        return _im2col_call(xa, out, xp[0] if xp else None, attrs["kernel_size"], attrs["stride"],
                            attrs["padding"], attrs["dilation"], attrs["out_hw"])

    return Impl(bind=bind, scratch=_pad_scratch(args[0].shape, attrs["padding"], ins.dtype), contiguous=True,
                label="numba.im2col")


def _conv_gemm_op(ins, args):
    g = ins.attrs["groups"]
    N, O = ins.shape[:2]
    P = int(np.prod(ins.shape[2:]))

    def bind(cols, wa, out, tmp):
        return _gemm_forward(cols, wa, out, tmp, g)

    return Impl(bind=bind, scratch=(((g, O // g, N * P), ins.dtype),), contiguous=True, label="gemm(conv)")


def _conv_gemm_weight_op(ins, args):
    gr = args[0]
    g = ins.attrs["groups"]
    N, O = gr.shape[:2]
    P = int(np.prod(gr.shape[2:]))

    def bind(ga, cols, out, gt):
        return _gemm_weight(ga, cols, out, gt, g)

    return Impl(bind=bind, scratch=(((g, O // g, N, P), ins.dtype),), contiguous=True, label="gemm(conv dW)")


KERNELS = {
    "conv2d": _conv2d,
    "conv2d_backward_weight": _backward_weight,
    "conv2d_backward_input": _backward_input,
    "cpu.im2col": _im2col_op,
    "cpu.conv2d_gemm": _conv_gemm_op,
    "cpu.conv2d_gemm_weight": _conv_gemm_weight_op,
}
