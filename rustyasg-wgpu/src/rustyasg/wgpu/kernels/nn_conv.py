"""2-D convolution and its two backward ops as im2col/col2im kernels plus batched GEMMs.

With ``K = C/groups * kh * kw`` and ``P = OH * OW``, image ``n`` and group ``g``:

- ``conv2d``:                 ``out[n, g] (Og x P) = W[g] (Og x K) @ cols[n, g] (K x P)``
- ``conv2d_backward_input``:  ``cols[n, g] = W[g]^T @ grad[n, g]``, then col2im into ``dx``
- ``conv2d_backward_weight``: ``dW[g] = sum_n grad[n, g] @ cols[n, g]^T``

``cols`` is the im2col matrix ``(N, C, kh, kw, OH, OW)`` of the zero-padded input
(built by :func:`im2col_wgsl`); col2im (:func:`col2im_wgsl`) is gather-style:
each input pixel sums the column entries of the windows that read it, so no
atomics are needed. The GEMMs go through the tuned
:class:`~rustyasg.wgpu.kernels.matmul.MatmulPlanner`; batches over images and
groups become batch strides (one launch when they are linear, else one launch
per group or per image, whichever is fewer). A 1x1, stride-1, unpadded
convolution needs no im2col: the input already is ``cols``.

The backward ops accept a gradient smaller than the full convolution output
(missing positions are zero): the column matrix is simply built over the
gradient's ``OH x OW`` positions. Images are processed in chunks so the column
buffer stays under :data:`COLUMN_BUDGET` bytes; the weight gradient sums
per-image products with :func:`sum_rows_wgsl`, accumulating across chunks.

Example::

    >>> "cols[id]" in im2col_wgsl("f32")
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from ..pipelines import KernelLaunch, UniformLayout
from .api import KernelError
from .elementwise import ElementwiseSpec, EwOp
from .nn_common import element_kernel_wgsl, element_launch, float_elem, max_binding
from .nn_conv_direct import direct_applies, direct_conv
from .nn_conv_geometry import CONV_UNIFORMS, ConvGeometry, conv_geometry, transposed_taps_wgsl

# Column-matrix bytes per chunk of images: bounds scratch memory on large batches.
COLUMN_BUDGET = 256 << 20

#: ``RUSTYASG_WGPU_CONV``: how convolutions that are not 1x1 reach the GEMM. ``im2col`` writes
#: the column matrix, then multiplies (and col2im adds the input gradient's columns back);
#: ``implicit`` gathers the columns inside the GEMM's tile loads: no column buffer, no im2col or
#: col2im launch, for the forward pass and both gradients. ``auto`` (the default): implicit for
#: forward passes and for the gradients of unit-stride convolutions, im2col for the gradients of
#: strided ones. Measured on an H100 at batch 64 (benchmarks/gpu/NOTES.md): a 3x3 64->64 layer
#: at 56x56 took 0.64 / 0.72 / 0.86 ms implicit (forward, input, weight gradient) against
#: 1.20 / 0.81 / 1.42 ms with im2col; a 3x3/2 128->256 layer 0.34 / 1.77 / 0.39 against
#: 0.39 / 0.42 / 0.34 (a strided input gradient's gathered B is mostly zero taps).
CONV_ENV = "RUSTYASG_WGPU_CONV"
CONV_MODES = ("auto", "im2col", "implicit")


def conv_mode(kb: Any = None) -> str:
    """The convolution lowering: ``kb.conv_lowering`` where a kernel builder sets one (the web
    export does), else ``RUSTYASG_WGPU_CONV``.

    Example::

        >>> conv_mode() in CONV_MODES
        True
    """
    mode = getattr(kb, "conv_lowering", None) or os.environ.get(CONV_ENV, "").strip().lower() or "auto"
    if mode not in CONV_MODES:
        raise ValueError(f"{CONV_ENV}={mode!r} is not a convolution lowering; choose one of {list(CONV_MODES)}")
    return mode


def gathers_columns(kb: Any, geo: ConvGeometry, pass_: str) -> bool:
    """Whether ``pass_`` (``forward``, ``input`` or ``weight`` gradient) of ``geo`` runs as an
    implicit GEMM.

    Under ``auto``: the forward pass and the gradients of unit-stride convolutions, in fp32 and
    f16 alike (on an H100 at batch 64 the f16 3x3 64->64 layer at 56x56 took 0.29 / 0.64 / 0.53 ms
    on the gathering tensor-core kernels against 0.93 / 0.71 / 0.97 ms through im2col and the
    tensor-core GEMM); a strided convolution's gradients keep im2col, where a gather reads mostly
    zero taps (its f16 input gradient 1.46 against 0.25 ms).

    Example::

        >>> strided = ConvGeometry(8, 64, 28, 28, 128, 1, 3, 3, 14, 14, (2, 2), (1, 1), (1, 1))
        >>> [gathers_columns(None, strided, p) for p in ("forward", "input", "weight")]  # by default
        [True, False, False]
    """
    mode = conv_mode(kb)
    if geo.identity_columns or mode == "im2col":
        return False
    if mode == "implicit":
        return True
    return pass_ == "forward" or tuple(geo.stride) == (1, 1)

SUM_UNIFORMS = UniformLayout([("total", "u32"), ("rows", "u32"), ("accumulate", "u32")])

_COPY = ElementwiseSpec(("x",), (EwOp("t", "identity", ("x",)),), ("t",))


def permuted_copy(kb: Any, src: Any, shape: tuple, strides: tuple, offset: int, dst: Any, storage: str) -> KernelLaunch:
    """A launch writing ``src`` read at element ``strides`` (and ``offset``) into ``dst``, contiguous as ``shape``.

    Example::

        permuted_copy(kb, g, (splits, O, s, P), (s * O * P, P, O * P, 1), 0, g_split, "f32")
    """
    return kb.elementwise.launch(_COPY, shape, [(src, strides, offset)], [dst], storages=[storage, storage])


@lru_cache(maxsize=None)
def im2col_wgsl(elem: str = "f32") -> str:
    """WGSL: ``cols[q, c, i, j, t, oh, ow] = x[base + (q*SPLIT + t, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW)]``
    (0 outside): images in splits of ``SPLIT``, each split's columns ``(C*kh*kw) x (SPLIT*OH*OW)``.

    Example::

        >>> "cols[id] = F(v);" in im2col_wgsl()
        True
    """
    return element_kernel_wgsl(elem, CONV_UNIFORMS, ["x", "cols"], """
    var r = id;
    let ow = r % p.OW; r = r / p.OW;
    let oh = r % p.OH; r = r / p.OH;
    let t = r % p.SPLIT; r = r / p.SPLIT;
    let j = r % p.KW; r = r / p.KW;
    let i = r % p.KH; r = r / p.KH;
    let c = r % p.C;
    let plane = (r / p.C * p.SPLIT + t) * p.C + c;
    let h = i32(oh * p.SH + i * p.DH) - i32(p.PH);
    let w = i32(ow * p.SW + j * p.DW) - i32(p.PW);
    var v = 0.0;
    if (h >= 0 && h < i32(p.H) && w >= 0 && w < i32(p.W)) {
        v = f32(x[p.base + (plane * p.H + u32(h)) * p.W + u32(w)]);
    }
    cols[id] = F(v);
}
""")


@lru_cache(maxsize=None)
def col2im_wgsl(elem: str = "f32") -> str:
    """WGSL: each ``dx`` pixel sums the ``cols`` entries of every window tap that reads it.

    Example::

        >>> "dx[p.base + id] = F(acc);" in col2im_wgsl()
        True
    """
    return element_kernel_wgsl(elem, CONV_UNIFORMS, ["cols", "dx"], """
    var r = id;
    let w = r % p.W; r = r / p.W;
    let h = r % p.H;
    let plane = r / p.H;
    var acc = 0.0;
""" + transposed_taps_wgsl("acc += f32(cols[((plane * p.KH + i) * p.KW + j) * p.OH * p.OW + oh * p.OW + ow]);") + """\
    dx[p.base + id] = F(acc);
}
""")


@lru_cache(maxsize=None)
def sum_rows_wgsl(elem: str = "f32") -> str:
    """WGSL: ``out[i] = (accumulate ? out[i] : 0) + sum_r part[r * total + i]``.

    Example::

        >>> "part[r * p.total + id]" in sum_rows_wgsl()
        True
    """
    return element_kernel_wgsl(elem, SUM_UNIFORMS, ["part", "out"], """
    var acc = 0.0;
    if (p.accumulate != 0u) { acc = f32(out[id]); }
    for (var r = 0u; r < p.rows; r = r + 1u) { acc += f32(part[r * p.total + id]); }
    out[id] = F(acc);
}
""")


@dataclass(frozen=True)
class Operand:
    """A matrix operand of a grouped GEMM: element offset of image ``n``, group ``g`` is
    ``base + n * per_image + g * per_group``."""

    buf: Any
    base: int
    per_image: int
    per_group: int


def grouped_gemm(kb: Any, a: Operand, b: Operand, c: Operand, images: int, groups: int, M: int, N: int, K: int,
                 trans_a: bool = False, trans_b: bool = False, dtype: str = "f32") -> list[KernelLaunch]:
    """``C[n, g] = op(A[n, g]) @ op(B[n, g])`` for every image and group, in as few matmul launches as possible.

    One launch when (image, group) pairs form a linear batch for all three operands,
    or when either count is 1; otherwise one launch per group or per image,
    whichever is fewer.

    Example::

        grouped_gemm(kb, Operand(w, 0, 0, 27), Operand(cols, 0, 27 * 9, 0), Operand(y, 0, 4 * 9, 0),
                     images=2, groups=1, M=4, N=9, K=27)
    """

    def run(batch, stride, offset):
        sa, sb, sc = stride
        oa, ob, oc = offset
        return kb.matmul.launch(a.buf, b.buf, c.buf, M, N, K, batch=batch, trans_a=trans_a, trans_b=trans_b,
                                stride_a=sa, stride_b=sb, stride_c=sc, offset_a=oa, offset_b=ob, offset_c=oc,
                                dtype=dtype)

    ops = (a, b, c)
    bases = tuple(o.base for o in ops)
    if groups == 1:
        return [run(images, tuple(o.per_image for o in ops), bases)]
    if images == 1 or all(o.per_image == groups * o.per_group for o in ops):
        return [run(images * groups, tuple(o.per_group for o in ops), bases)]
    if groups <= images:
        return [run(images, tuple(o.per_image for o in ops), tuple(o.base + g * o.per_group for o in ops))
                for g in range(groups)]
    return [run(groups, tuple(o.per_group for o in ops), tuple(o.base + n * o.per_image for o in ops))
            for n in range(images)]


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(size, total - start)


class _Plan:
    """One conv instruction being planned: geometry, element type, chunking, scratch."""

    def __init__(self, kb, instr, inputs, out, x_shape, w_shape, out_hw, extra_per_image=0, split=1):
        self.kb, self.elem = kb, float_elem(instr.op, *inputs, out)
        self.geo = geo = conv_geometry(x_shape, w_shape, out_hw, instr.attrs)
        self.itemsize = out.storage.itemsize
        limit = max_binding(kb)
        per_image = self.itemsize * (geo.C * geo.KH * geo.KW * geo.P + extra_per_image)
        if per_image * split > limit:
            raise KernelError.of(instr, inputs, f"the column matrix of {split} image(s) needs {per_image * split} "
                                 f"bytes (C={geo.C}, kernel {geo.KH}x{geo.KW}, {geo.OH}x{geo.OW} positions), "
                                 f"over this adapter's storage binding limit of {limit} bytes")
        # Whole splits per chunk: N is a multiple of `split`, so every chunk is too.
        self.chunk = max(split, min(geo.N, min(COLUMN_BUDGET, limit) // (per_image * split) * split))
        self.label = instr.op

    def scratch(self, elements: int, what: str):
        return self.kb.scratch(self.itemsize * elements, f"{self.label} {what}")

    def columns(self):
        """Scratch for one chunk's column matrix, or None when the input is its own columns."""
        geo = self.geo
        return None if geo.identity_columns else self.scratch(self.chunk * geo.C * geo.KH * geo.KW * geo.P, "cols")

    def chunks(self):
        return _chunks(self.geo.N, self.chunk)

    def im2col(self, x, cols, n0, m, split=1):
        geo = self.geo
        values = geo.uniforms(m * geo.C * geo.KH * geo.KW * geo.P, n0 * geo.C * geo.H * geo.W, split)
        return element_launch(self.kb, im2col_wgsl(self.elem), CONV_UNIFORMS, values, [x, cols],
                              f"{self.label} im2col")

    def col2im(self, cols, dx, n0, m):
        geo = self.geo
        values = geo.uniforms(m * geo.C * geo.H * geo.W, n0 * geo.C * geo.H * geo.W)
        return element_launch(self.kb, col2im_wgsl(self.elem), CONV_UNIFORMS, values, [cols, dx],
                              f"{self.label} col2im")

    def gemm(self, *args, **kw):
        return grouped_gemm(self.kb, *args, dtype=self.elem, **kw)


def implicit_forward(kb: Any, geo: ConvGeometry, elem: str, x: Any, w: Any, y: Any) -> KernelLaunch:
    """One GEMM launch ``y[n, g] = W[g] @ cols(x[n, g])`` over every image and group, the
    columns gathered from ``x`` as the GEMM loads its tiles (no column buffer).

    Example::

        launch = implicit_forward(kb, conv_geometry(x.shape, w.shape, (OH, OW), attrs), "f32", x, w, y)
    """
    G, K, P, image = geo.G, geo.K, geo.P, geo.C * geo.H * geo.W
    return kb.matmul.launch(w, x, y, geo.Og, P, K, batch=geo.N * G, inner_batch=G,
                            outer_strides=(0, image, geo.O * P), lda=K, ldc=P,
                            stride_a=geo.Og * K, stride_b=geo.Cg * geo.H * geo.W, stride_c=geo.Og * P,
                            dtype=elem, gather=("columns", geo.uniforms(0)))


def conv2d(kb: Any, instr: Any, inputs: Sequence[Any], out: Any) -> list[KernelLaunch]:
    """Kernel of ``conv2d(x, w)`` (interface of :mod:`.api`): im2col per chunk, then ``W @ cols``.

    Example::

        launches = conv2d(kb, instr, [x_view, w_view], y_view)
    """
    x, w = (v.buffer for v in inputs)
    geo = conv_geometry(inputs[0].shape, inputs[1].shape, out.shape[2:], instr.attrs)
    if direct_applies(geo):
        return direct_conv(kb, "forward", geo, float_elem(instr.op, *inputs, out), x, w, out.buffer, instr.op)
    if gathers_columns(kb, geo, "forward"):
        return [implicit_forward(kb, geo, float_elem(instr.op, *inputs, out), x, w, out.buffer)]
    plan = _Plan(kb, instr, inputs, out, inputs[0].shape, inputs[1].shape, out.shape[2:])
    G, K, P = geo.G, geo.K, geo.P
    cols = plan.columns()
    launches = []
    for n0, m in plan.chunks():
        if cols is None:
            b = Operand(x, n0 * geo.C * geo.H * geo.W, G * K * P, K * P)
        else:
            launches.append(plan.im2col(x, cols, n0, m))
            b = Operand(cols, 0, G * K * P, K * P)
        launches += plan.gemm(Operand(w, 0, 0, geo.Og * K), b,
                              Operand(out.buffer, n0 * geo.O * P, geo.O * P, geo.Og * P), m, G, geo.Og, P, K)
    return launches


def conv2d_backward_input(kb: Any, instr: Any, inputs: Sequence[Any], out: Any) -> list[KernelLaunch]:
    """Kernel of ``conv2d_backward_input(g, w)``: ``W^T @ g`` per chunk, then col2im into ``dx``.

    Example::

        launches = conv2d_backward_input(kb, instr, [g_view, w_view], dx_view)
    """
    g, w = (v.buffer for v in inputs)
    geo = conv_geometry(out.shape, inputs[1].shape, inputs[0].shape[2:], instr.attrs)
    if direct_applies(geo):
        return direct_conv(kb, "backward_input", geo, float_elem(instr.op, *inputs, out), g, w, out.buffer, instr.op)
    if gathers_columns(kb, geo, "input"):
        return implicit_input_gradient(kb, instr, inputs, out, geo)
    plan = _Plan(kb, instr, inputs, out, out.shape, inputs[1].shape, inputs[0].shape[2:])
    G, K, P = geo.G, geo.K, geo.P
    cols = plan.columns()
    launches = []
    for n0, m in plan.chunks():
        if cols is None:  # 1x1, stride 1, unpadded: the products land in dx directly
            c = Operand(out.buffer, n0 * geo.C * geo.H * geo.W, G * K * P, K * P)
        else:
            c = Operand(cols, 0, G * K * P, K * P)
        launches += plan.gemm(Operand(w, 0, 0, geo.Og * K), Operand(g, n0 * geo.O * P, geo.O * P, geo.Og * P),
                              c, m, G, K, P, geo.Og, trans_a=True)
        if cols is not None:
            launches.append(plan.col2im(cols, out.buffer, n0, m))
    return launches


def implicit_input_gradient(kb: Any, instr: Any, inputs: Sequence[Any], out: Any,
                            geo: ConvGeometry) -> list[KernelLaunch]:
    """``dx[n, g] = Wt[g] @ gcols(grad[n, g])``: one GEMM over every image and group whose B, the
    output gradient under each window tap that reaches each input pixel, is gathered as it is
    read (no column buffer, no col2im). ``Wt[g]`` (``Cg x Og*kh*kw``) is the group's weights
    with input and output channels swapped, written first by a small permuting launch.
    """
    g, w = (v.buffer for v in inputs)
    G, Og, Cg, taps = geo.G, geo.Og, geo.Cg, geo.KH * geo.KW
    elem = float_elem(instr.op, *inputs, out)
    wt = kb.scratch(out.storage.itemsize * geo.O * Cg * taps, f"{instr.op} weights by input channel")
    permute = permuted_copy(kb, w, (G, Cg, Og, taps), (Og * Cg * taps, taps, Cg * taps, 1), 0, wt,
                            inputs[1].storage.name)
    HW, OP = geo.H * geo.W, geo.P
    gemm = kb.matmul.launch(wt, g, out.buffer, Cg, HW, Og * taps, batch=geo.N * G, inner_batch=G,
                            outer_strides=(0, geo.O * OP, geo.C * HW), lda=Og * taps, ldc=HW,
                            stride_a=Cg * Og * taps, stride_b=Og * OP, stride_c=Cg * HW,
                            dtype=elem, gather=("grad_columns", geo.uniforms(0)))
    return [permute, gemm]


def images_per_split(geo: ConvGeometry, max_images: int) -> int:
    """Images whose products the weight gradient sums inside one GEMM (its reduction runs over them).

    Per-image products cost ``O*K`` partial sums each; late layers (few positions, many
    channels) would write far more partials than columns. Folding ``s`` images into
    the reduction makes the partials no larger than the columns: the smallest divisor
    ``s`` of ``N`` with ``s * G * OH*OW >= O`` (and at most ``max_images``).

    Example::

        >>> geo = ConvGeometry(32, 512, 7, 7, 512, 1, 3, 3, 7, 7, (1, 1), (1, 1), (1, 1))
        >>> images_per_split(geo, 32), images_per_split(geo, 8)
        (16, 8)
    """
    want = -(-geo.O // (geo.G * geo.P))
    fits = [d for d in range(1, geo.N + 1) if geo.N % d == 0 and d <= max(max_images, 1)]
    return next((d for d in fits if d >= want), fits[-1])


def conv2d_backward_weight(kb: Any, instr: Any, inputs: Sequence[Any], out: Any) -> list[KernelLaunch]:
    """Kernel of ``conv2d_backward_weight(g, x)``: ``g @ cols^T`` per split of images, summed over splits.

    With one image per split ``g`` is used in place; with ``s > 1`` (see
    :func:`images_per_split`) ``g`` is first permuted to ``(splits, O, s, OH*OW)`` so each
    split's reduction runs over its ``s`` images' positions.

    Example::

        launches = conv2d_backward_weight(kb, instr, [g_view, x_view], dw_view)
    """
    g, x = (v.buffer for v in inputs)
    O, Cg, KH, KW = out.shape
    geo = conv_geometry(inputs[1].shape, out.shape, inputs[0].shape[2:], instr.attrs)
    if direct_applies(geo):
        return direct_conv(kb, "backward_weight", geo, float_elem(instr.op, *inputs, out), g, x, out.buffer, instr.op)
    item = out.storage.itemsize
    if gathers_columns(kb, geo, "weight"):
        launches = implicit_weight_gradient(kb, instr, inputs, out, geo)
        if launches is not None:
            return launches
    budget = min(COLUMN_BUDGET, max_binding(kb)) - item * O * geo.K
    s = images_per_split(geo, budget // (item * (geo.C * KH * KW + O) * geo.P))
    plan = _Plan(kb, instr, inputs, out, inputs[1].shape, out.shape, inputs[0].shape[2:],
                 extra_per_image=-(-O * geo.K // s) + (O * geo.P if s > 1 else 0), split=s)
    G, K, P, sP = geo.G, geo.K, geo.P, s * geo.P
    direct = geo.N == s  # a single split's product is the gradient itself: no partial sums
    cols = None if geo.identity_columns and s == 1 else plan.columns()
    part = None if direct else plan.scratch(plan.chunk // s * O * K, "partial sums")
    g_split = plan.scratch(plan.chunk * O * P, "gradient by split") if s > 1 else None
    launches = []
    for n0, m in plan.chunks():
        if s == 1:
            a = Operand(g, n0 * O * P, O * P, geo.Og * P)
        else:  # (m/s, s, O, P) -> (m/s, O, s, P)
            launches.append(permuted_copy(kb, g, (m // s, O, s, P), (s * O * P, P, O * P, 1), n0 * O * P, g_split,
                                          inputs[0].storage.name))
            a = Operand(g_split, 0, O * sP, geo.Og * sP)
        if cols is None:
            b = Operand(x, n0 * geo.C * geo.H * geo.W, G * K * P, K * P)
        else:
            launches.append(plan.im2col(x, cols, n0, m, s))
            b = Operand(cols, 0, G * K * sP, K * sP)
        c = Operand(out.buffer, 0, 0, geo.Og * K) if direct else Operand(part, 0, O * K, geo.Og * K)
        launches += plan.gemm(a, b, c, m // s, G, geo.Og, K, sP, trans_b=True)
        if not direct:
            values = dict(total=O * K, rows=m // s, accumulate=int(n0 > 0))
            launches.append(element_launch(kb, sum_rows_wgsl(plan.elem), SUM_UNIFORMS, values, [part, out.buffer],
                                           f"{instr.op} sum"))
    return launches


def implicit_weight_gradient(kb: Any, instr: Any, inputs: Sequence[Any], out: Any,
                             geo: ConvGeometry) -> list[KernelLaunch] | None:
    """``dW[g] = sum_n grad[n, g] @ cols(x[n, g])^T`` with the columns gathered inside the GEMM.

    Images are folded into the reduction in splits of :func:`images_per_split` as on the
    im2col path (the gather walks a split's images); the splits' partial products are
    summed by one more launch. None when the partial sums or the split gradient would
    exceed a storage binding (the im2col path then chunks the images).
    """
    g, x = (v.buffer for v in inputs)
    O, G, K, P, N = geo.O, geo.G, geo.K, geo.P, geo.N
    elem = float_elem(instr.op, *inputs, out)
    item = out.storage.itemsize
    s = images_per_split(geo, N)
    splits, sP = N // s, s * P
    if item * max(splits * O * K, N * O * P if s > 1 else 0) > max_binding(kb):
        return None
    launches = []
    if s > 1:  # (splits, s, O, P) -> (splits, O, s, P): a split's reduction runs over its images
        g_split = kb.scratch(item * N * O * P, f"{instr.op} gradient by split")
        launches.append(permuted_copy(kb, g, (splits, O, s, P), (s * O * P, P, O * P, 1), 0, g_split,
                                      inputs[0].storage.name))
        g = g_split
    part = out.buffer if splits == 1 else kb.scratch(item * splits * O * K, f"{instr.op} partial sums")
    image = geo.C * geo.H * geo.W
    launches.append(kb.matmul.launch(g, x, part, geo.Og, K, sP, batch=splits * G, inner_batch=G,
                                     outer_strides=(O * sP, s * image, O * K), trans_b=True, lda=sP, ldc=K,
                                     stride_a=geo.Og * sP, stride_b=geo.Cg * geo.H * geo.W, stride_c=geo.Og * K,
                                     dtype=elem, gather=("columns", geo.uniforms(0, split=s))))
    if splits > 1:
        values = dict(total=O * K, rows=splits, accumulate=0)
        launches.append(element_launch(kb, sum_rows_wgsl(elem), SUM_UNIFORMS, values, [part, out.buffer],
                                       f"{instr.op} sum"))
    return launches


KERNELS = {"conv2d": conv2d, "conv2d_backward_input": conv2d_backward_input,
           "conv2d_backward_weight": conv2d_backward_weight}
