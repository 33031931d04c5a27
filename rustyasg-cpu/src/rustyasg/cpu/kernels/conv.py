"""conv2d and its backward ops: im2col (numba) + one GEMM per group (BLAS), col2im (numba).

Columns are laid out ``(C*kh*kw, N, OH*OW)``: row ``(c, i, j)`` holds, for every
image and output position, the input value under kernel tap ``(i, j)`` of
channel ``c``. With that layout each op is a single large GEMM per group
(measured faster and far steadier than one small GEMM per image, whose thread
hand-offs dominate on a busy machine), at the price of a cheap transpose of the
(small) output or output-gradient between ``(N, O, P)`` and ``(O, N, P)``:

- forward:          ``out[g] = W[g] @ cols[g]``                 (O/g, N*P)
- backward_weight:  ``dW[g] = gradT[g] @ cols[g].T``            (O/g, C/g*kh*kw); a gradient with
  few results over many positions (a first layer's) is dot products on one core instead
  (:func:`weight_grad_dots`), where the GEMM's shape is BLAS's worst
- backward_input:   ``dcols[g] = W[g].T @ gradT[g]``, then col2im adds the
  columns back into the input positions they came from.

The ``cpu_conv_im2col`` rewrite (:mod:`..rewrites`) makes the column matrix an
instruction of its own, so the forward pass and the weight gradient share it
instead of building it twice. A 1x1 convolution with unit stride and no
padding needs no columns at all: it is a batched matmul on the input.

bfloat16 operands (the ``cpu_bf16_gemm`` pass gives them where MKL's bfloat16 GEMM is in use)
make bfloat16 columns (im2col and padding move 16-bit words) and run every GEMM through
:func:`.mkl.bind_matmul_bf16`, with float32 results; other dtypes use numpy's BLAS (:func:`gemm`).

A convolution marked ``columns="chunked"`` (the rewrite marks those whose columns would be
large, see :data:`CHUNK_BYTES`) never holds its whole column matrix: it builds the columns of
a few images at a time into a scratch that stays in cache and runs the GEMM on them (the
weight gradient adds the chunks' products in image order).

Example:
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); cols = np.empty((4, 1, 4))
    >>> im2col(x, cols, 2, 2, 1, 1, 1, 1, 2, 2, 0, 1); cols[:, 0, 0]
    array([0., 1., 3., 4.])
"""

from __future__ import annotations

import functools

import numpy as np

from rustyasg.core.backend_api import bfloat16

from ..jit import kernel_jit
from ..threads import splitter
from .protocol import Impl, in_order

BF16 = np.dtype(bfloat16)


def as_words(a: np.ndarray) -> np.ndarray:
    """A 16-bit float array as its uint16 words (padding and im2col only move values; numba has
    no 16-bit float type); other arrays as they are."""
    return a.view(np.uint16) if a.dtype.itemsize == 2 and a.dtype.kind in "fV" else a


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray):
    """Zero-argument ``out[...] = a @ b``: MKL's bfloat16 GEMM for bfloat16 operands, else BLAS."""
    if a.dtype == BF16:
        from .mkl import bind_matmul_bf16

        return bind_matmul_bf16(a, b, out)
    return functools.partial(np.matmul, a, b, out)


def column_dtype(x, w, result):
    """dtype of a convolution's columns: bfloat16 when both operands are (the MKL path), else the result's."""
    return BF16 if x.dtype == BF16 and w.dtype == BF16 else np.dtype(result)


def pad_into(x, xp, p0, p1, lo, hi):
    """xp[lo:hi] = x[lo:hi] zero-padded by (p0, p1) on both sides of the last two axes.

    numpy's strided copies, not a numba loop: as fast or faster on most layers (a 64 x 64 x 56 x 56
    input: 6.3 against 10.6 ms; 128 x 16 x 14 x 14: 0.32 against 0.33 ms), slower on rows of 7
    (0.31 against 0.17 ms at 128 x 32 x 7 x 7), and nothing to compile on a cold start, where the
    loop cost 0.2-0.4 s per element type (AMD EPYC, measured).
    """
    H, W = x.shape[2], x.shape[3]
    xp[lo:hi, :, :p0] = 0
    xp[lo:hi, :, p0 + H:] = 0
    xp[lo:hi, :, p0:p0 + H, :p1] = 0
    xp[lo:hi, :, p0:p0 + H, p1 + W:] = 0
    xp[lo:hi, :, p0:p0 + H, p1:p1 + W] = x[lo:hi]


def crop_from(xp, x, p0, p1, lo, hi):
    """x[lo:hi] = the interior of xp[lo:hi] (the inverse of :func:`pad_into`)."""
    H, W = x.shape[2], x.shape[3]
    x[lo:hi] = xp[lo:hi, :, p0:p0 + H, p1:p1 + W]


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


@kernel_jit
def weight_grad_dots(g, cols, dw):
    """``dw[o, k] = sum over images n and positions p of g[n, o, p] * cols[k, n*P + p]``.

    A convolution's weight gradient with few results (``O x C*kh*kw``) over many positions, as dot
    products of the gradient's rows with the columns' rows, two output channels at a time (each
    column element read once per pair), accumulated image by image. One core, no BLAS call per
    image: steadier than per-image GEMMs on a busy machine (see :func:`_weight_by_dots`).
    """
    N, O, P = g.shape
    K = cols.shape[0]
    for o in range(np.uint64(0), np.uint64(O)):
        for k in range(np.uint64(0), np.uint64(K)):
            dw[o, k] = 0
    for n in range(np.uint64(0), np.uint64(N)):
        base = n * np.uint64(P)
        for o in range(np.uint64(0), np.uint64(O), np.uint64(2)):
            o1 = min(o + np.uint64(1), np.uint64(O) - np.uint64(1))  # an odd last channel pairs with itself
            g0 = g[n, o]
            g1 = g[n, o1]
            for k in range(np.uint64(0), np.uint64(K)):
                row = cols[k]
                s0 = g.dtype.type(0)
                s1 = g.dtype.type(0)
                for p in range(np.uint64(0), np.uint64(P)):
                    c = row[base + p]
                    s0 += g0[p] * c
                    s1 += g1[p] * c
                dw[o, k] += s0
                if o1 != o:
                    dw[o1, k] += s1


#: Column bytes of one chunk of images (``columns="chunked"``): small enough to stay in cache
#: between im2col and GEMM, large enough for an efficient GEMM.
CHUNK_BYTES = 4 << 20

#: Most results (``O * C/g * kh * kw``) of a weight gradient computed by :func:`weight_grad_dots`.
DOTS_MAX_RESULTS = 512


def chunk_images(n: int, image_bytes: int) -> int:
    """The most images, a divisor of ``n``, whose columns fit :data:`CHUNK_BYTES` (at least 1).

    >>> chunk_images(16, 1 << 20), chunk_images(16, 3 << 20), chunk_images(6, 1 << 20)
    (4, 1, 3)
    """
    fits = max(1, CHUNK_BYTES // max(1, image_bytes))
    return max(d for d in range(1, n + 1) if n % d == 0 and d <= fits)


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
    xa, cols, xp = as_words(xa), as_words(cols), None if xp is None else as_words(xp)
    n = xa.shape[0]
    c3 = cols.reshape(cols.shape[0], n, oh * ow)
    kernel = im2col_dense if (s1, d1) == (1, 1) else im2col
    fill = splitter(kernel, n, cols.size, xa if xp is None else xp, c3, kh, kw, s0, s1, d0, d1, oh, ow)
    if xp is None:
        return fill
    return in_order(splitter(pad_into, n, xp.size, xa, xp, p0, p1), fill)


def _pad_scratch(x_shape, padding, dtype):
    return (((padded_shape(x_shape, padding), dtype),) if any(padding) else ())


def _input_scratch(x_shape, x_dtype, padding, dtype):
    """Scratch of a chunked convolution's input: its padded copy and, for a 16-bit input, the
    float32 copy (padded) and the padded 16-bit words."""
    padded = padded_shape(x_shape, padding)
    if np.dtype(x_dtype) == np.dtype(dtype):
        return _pad_scratch(x_shape, padding, dtype)
    return ((padded, dtype),) + (((padded, np.uint16),) if any(padding) else ())


def _widen_into(words, out, bfloat16: bool):
    """``out`` (float32) = the 16-bit floats stored as ``words`` (exact)."""
    if bfloat16:
        from .bfloat16 import from_bfloat16

        from_bfloat16(words, out)
    else:
        np.copyto(out, words.view(np.float16))


def _chunked_fills(xa, cols, scratch, kernel, stride, padding, dilation, out_hw, nb):
    """(prepare, fills): ``prepare()`` pads ``xa`` and, when it is 16-bit, widens it to float32 (into
    ``scratch``, see :func:`_input_scratch`; None when there is nothing to do); each fill then
    writes the columns of ``nb`` images into ``cols`` (``(C*kh*kw, nb*OH*OW)``)."""
    n = xa.shape[0]
    steps = []
    if xa.dtype == cols.dtype:
        src = scratch[0] if scratch else xa
        if scratch:
            steps.append(splitter(pad_into, n, src.size, as_words(xa), as_words(src), padding[0], padding[1]))
    else:  # 16-bit words: padded as words, then widened (half the bytes moved while padding)
        src, bf16 = scratch[0], xa.dtype != np.float16
        words = xa.view(np.uint16)
        if len(scratch) > 1:
            steps.append(splitter(pad_into, n, src.size, words, scratch[1], padding[0], padding[1]))
            words = scratch[1]
        steps.append(functools.partial(_widen_into, words, src, bf16))
    fills = [_im2col_call(src[n0:n0 + nb], cols, None, kernel, stride, padding, dilation, out_hw)
             for n0 in range(0, n, nb)]
    return (in_order(*steps) if len(steps) == 2 else steps[0] if steps else None), fills


def _chunked(ins) -> bool:
    return ins.attrs.get("columns") == "chunked"


def _gemm_forward(cols, wa, out, tmp, g):
    """out (N, O, P) = W @ cols per group, through ``tmp`` (g, O/g, N*P)."""
    N, O = out.shape[:2]
    P = out.size // (N * O)
    w3 = wa.reshape(g, O // g, -1)
    c3 = cols.reshape(g, -1, N * P)
    src = tmp.reshape(g, O // g, N, P).transpose(2, 0, 1, 3)
    dst = out.reshape(N, g, O // g, P)
    product = gemm(w3, c3, tmp)

    def run():
        product()
        np.copyto(dst, src)
    return run


def _weight_by_dots(grad_shape, out_shape, groups: int) -> bool:
    """Whether a weight gradient is computed by :func:`weight_grad_dots`: few results (at most
    :data:`DOTS_MAX_RESULTS`) over many positions, where one BLAS GEMM is at its worst.

    LeNet's first layer, 6 x 25 results over 64 x 784 positions: one GEMM runs BLAS at 14 GFLOP/s
    after a transposing copy of the gradient (1.2-1.8 ms, 2-vCPU Xeon); 64 per-image products
    and their sum 0.67-0.99 ms, :func:`weight_grad_dots` 0.42-0.49 ms. The README demo's first
    layer, 16 x 25 over 128 x 196: per-image 0.30-0.36 ms, dots 0.20-0.23 ms (AMD EPYC, minimum
    and median of 200 calls each). With 2,400 results (LeNet's second layer) the single GEMM is
    1.7x faster than per-image products, so it stays.
    """
    positions = grad_shape[0] * int(np.prod(grad_shape[2:]))
    return groups == 1 and int(np.prod(out_shape)) <= DOTS_MAX_RESULTS and positions >= 4096


def _gemm_weight(ga, cols, out, scratch, g, dots=False):
    """dW (O, C/g, kh, kw) = gradT @ cols.T per group, through ``scratch``, the transposed gradient
    (g, O/g, N, P); with ``dots`` (see :func:`_weight_by_dots`) :func:`weight_grad_dots`, no scratch."""
    N, O = ga.shape[:2]
    P = ga.size // (N * O)
    if dots:
        return functools.partial(weight_grad_dots, ga.reshape(N, O, P), cols.reshape(-1, N * P), out.reshape(O, -1))
    gt = scratch
    src = ga.reshape(N, g, O // g, P).transpose(1, 2, 0, 3)
    g3 = gt.reshape(g, O // g, N * P)
    ct = cols.reshape(g, -1, N * P).transpose(0, 2, 1)
    out3 = out.reshape(g, O // g, -1)
    product = gemm(g3, ct, out3)

    def run():
        np.copyto(gt, src)
        product()
    return run


def _conv2d(ins, args):
    x, w = args
    stride, padding, dilation, g = hyper(ins.attrs)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    oh, ow = ins.shape[2:]
    if is_pointwise((kh, kw), stride, padding):
        def bind(xa, wa, out):
            return gemm(wa.reshape(g, O // g, Cg), xa.reshape(N, g, Cg, oh * ow), out.reshape(N, g, O // g, oh * ow))
        return Impl(bind=bind, contiguous=True, label="conv1x1.gemm")
    chunked = _chunked(ins)
    nb = chunk_images(N, C * kh * kw * oh * ow * ins.dtype.itemsize) if chunked else N
    cdt = column_dtype(x, w, ins.dtype)
    scratch = (((C * kh * kw, nb * oh * ow), cdt), ((g, O // g, nb * oh * ow), ins.dtype)) \
        + (_input_scratch(x.shape, x.dtype, padding, cdt) if chunked else _pad_scratch(x.shape, padding, cdt))

    def bind(xa, wa, out, cols, tmp, *xp):
        if not chunked:
            fill = _im2col_call(xa, cols, xp[0] if xp else None, (kh, kw), stride, padding, dilation, (oh, ow))
            return in_order(fill, _gemm_forward(cols, wa, out, tmp, g))
        pad, fills = _chunked_fills(xa, cols, xp, (kh, kw), stride, padding, dilation, (oh, ow), nb)
        gemms = [_gemm_forward(cols, wa, out[n0:n0 + nb], tmp, g) for n0 in range(0, N, nb)]

        def run():
            if pad is not None:
                pad()
            for fill, gemm in zip(fills, gemms):
                fill()
                gemm()
        return run

    return Impl(bind=bind, scratch=scratch, contiguous=True, label="im2col+gemm(chunked)" if chunked else "im2col+gemm")


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
            product = gemm(g4, xt, part)

            def run():
                product()
                np.add.reduce(part, 0, None, out3)
            return run
        return Impl(bind=bind, scratch=scratch, contiguous=True, label="conv1x1.gemm(dW)")
    chunked = _chunked(ins)
    nb = chunk_images(N, C * kh * kw * oh * ow * ins.dtype.itemsize) if chunked else N
    cdt = column_dtype(x, gr, ins.dtype)
    scratch = (((C * kh * kw, nb * oh * ow), cdt), ((g, O // g, N, oh * ow), gr.dtype)) \
        + (((((g, O // g, C // g * kh * kw), ins.dtype),) + _input_scratch(x.shape, x.dtype, padding, cdt))
           if chunked else _pad_scratch(x.shape, padding, cdt))

    dots = not chunked and cdt == ins.dtype == gr.dtype and _weight_by_dots(gr.shape, ins.shape, g)
    if dots:  # no transposed gradient
        scratch = scratch[:1] + scratch[2:]

    def bind(ga, xa, out, cols, *rest):
        gt, rest = (None, rest) if dots else (rest[0], rest[1:])
        if not chunked:
            fill = _im2col_call(xa, cols, rest[0] if rest else None, (kh, kw), stride, padding, dilation, (oh, ow))
            return in_order(fill, _gemm_weight(ga, cols, out, gt, g, dots))
        part = rest[0]
        pad, fills = _chunked_fills(xa, cols, rest[1:], (kh, kw), stride, padding, dilation, (oh, ow), nb)
        P = oh * ow
        src = ga.reshape(N, g, O // g, P).transpose(1, 2, 0, 3)
        g4 = gt.reshape(g, O // g, N, P)
        ct = cols.reshape(g, -1, nb * P).transpose(0, 2, 1)
        out3 = out.reshape(g, O // g, -1)
        # the chunks' products are added in image order: float32 sums of the same terms as one GEMM
        # over all images, in another association
        grads = [g4[:, :, n0:n0 + nb].reshape(g, O // g, nb * P) for n0 in range(0, N, nb)]
        products = [gemm(gk, ct, out3 if k == 0 else part) for k, gk in enumerate(grads)]

        def run():
            np.copyto(gt, src)
            if pad is not None:
                pad()
            for k, (fill, product) in enumerate(zip(fills, products)):
                fill()
                product()
                if k:
                    np.add(out3, part, out3)
        return run

    return Impl(bind=bind, scratch=scratch, contiguous=True,
                label="im2col+gemm(dW, chunked)" if chunked else "im2col+gemm(dW)")


def _backward_input(ins, args):
    gr, w = args
    (s0, s1), (p0, p1), (d0, d1), g = hyper(ins.attrs)
    N, O, oh, ow = gr.shape
    _, Cg, kh, kw = w.shape
    H, W = ins.attrs["input_size"]
    if is_pointwise((kh, kw), (s0, s1), (p0, p1)) and (oh, ow) == (H, W):
        def bind(ga, wa, out):
            wt = wa.reshape(g, O // g, Cg).transpose(0, 2, 1)
            return gemm(wt, ga.reshape(N, g, O // g, oh * ow), out.reshape(N, g, Cg, oh * ow))
        return Impl(bind=bind, contiguous=True, label="conv1x1.gemm(dX)")
    K = Cg * kh * kw
    scratch = (((g, O // g, N, oh * ow), gr.dtype), ((g, K, N * oh * ow), ins.dtype)) \
        + _pad_scratch(ins.shape, (p0, p1), ins.dtype)

    def bind(ga, wa, out, gt, dcols, *xp):
        src = ga.reshape(N, g, O // g, oh * ow).transpose(1, 2, 0, 3)
        g3 = gt.reshape(g, O // g, N * oh * ow)
        wt = wa.reshape(g, O // g, K).transpose(0, 2, 1)
        c3 = dcols.reshape(g * K, N, oh * ow)
        product = gemm(wt, g3, dcols)
        dxp = xp[0] if xp else out
        scatter = splitter(col2im_dense if (s1, d1) == (1, 1) else col2im, N, dcols.size, c3, dxp,
                           kh, kw, s0, s1, d0, d1, oh, ow)
        crop = splitter(crop_from, N, out.size, dxp, out, p0, p1) if xp else None

        def run():
            np.copyto(gt, src)
            product()
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

    if args[1].dtype == gr.dtype == ins.dtype and _weight_by_dots(gr.shape, ins.shape, g):
        return Impl(bind=lambda ga, cols, out: _gemm_weight(ga, cols, out, None, g, dots=True), contiguous=True,
                    label="dots(conv dW)")

    def bind(ga, cols, out, scratch):
        return _gemm_weight(ga, cols, out, scratch, g)

    return Impl(bind=bind, scratch=(((g, O // g, N, P), gr.dtype),), contiguous=True, label="gemm(conv dW)")


KERNELS = {
    "conv2d": _conv2d,
    "conv2d_backward_weight": _backward_weight,
    "conv2d_backward_input": _backward_input,
    "cpu.im2col": _im2col_op,
    "cpu.conv2d_gemm": _conv_gemm_op,
    "cpu.conv2d_gemm_weight": _conv_gemm_weight_op,
}
