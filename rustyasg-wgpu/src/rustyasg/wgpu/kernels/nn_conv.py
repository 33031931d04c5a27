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

    >>> env = NnEnv.create(get_context())                                       # doctest: +SKIP
    >>> launches = plan_conv2d(env, [x, w], [(2, 3, 8, 8), (4, 3, 3, 3)], y, (2, 4, 6, 6),
    ...                        stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from ..pipelines import KernelLaunch, UniformLayout
from .nn_common import ELEMENT_INDEX_WGSL, ELEMENT_MAIN_WGSL, NnEnv, storage_decls

# Column-matrix bytes per chunk of images: bounds scratch memory on large batches.
COLUMN_BUDGET = 256 << 20

CONV_UNIFORMS = UniformLayout([(n, "u32") for n in (
    "total", "C", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "base")])
SUM_UNIFORMS = UniformLayout([("total", "u32"), ("rows", "u32"), ("accumulate", "u32")])


@lru_cache(maxsize=None)
def im2col_wgsl() -> str:
    """WGSL: ``cols[n, c, i, j, oh, ow] = x[base + (n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW)]`` (0 outside).

    Example::

        >>> "cols[id] = v;" in im2col_wgsl()
        True
    """
    return "\n".join([
        CONV_UNIFORMS.wgsl_struct("Params"), storage_decls(["x", "cols"], ["cols"]), ELEMENT_INDEX_WGSL,
        ELEMENT_MAIN_WGSL + """
    var r = id;
    let ow = r % p.OW; r = r / p.OW;
    let oh = r % p.OH; r = r / p.OH;
    let j = r % p.KW; r = r / p.KW;
    let i = r % p.KH;
    let plane = r / p.KH;
    let h = i32(oh * p.SH + i * p.DH) - i32(p.PH);
    let w = i32(ow * p.SW + j * p.DW) - i32(p.PW);
    var v = 0.0;
    if (h >= 0 && h < i32(p.H) && w >= 0 && w < i32(p.W)) {
        v = x[p.base + (plane * p.H + u32(h)) * p.W + u32(w)];
    }
    cols[id] = v;
}
"""])


@lru_cache(maxsize=None)
def col2im_wgsl() -> str:
    """WGSL: each ``dx`` pixel sums the ``cols`` entries of every window tap that reads it.

    Example::

        >>> "dx[p.base + id] = acc;" in col2im_wgsl()
        True
    """
    return "\n".join([
        CONV_UNIFORMS.wgsl_struct("Params"), storage_decls(["cols", "dx"], ["dx"]), ELEMENT_INDEX_WGSL,
        ELEMENT_MAIN_WGSL + """
    var r = id;
    let w = r % p.W; r = r / p.W;
    let h = r % p.H;
    let plane = r / p.H;
    var acc = 0.0;
    for (var i = 0u; i < p.KH; i = i + 1u) {
        let th = i32(h + p.PH) - i32(i * p.DH);
        if (th < 0) { break; }  // later taps start further up
        if (u32(th) % p.SH != 0u) { continue; }
        let oh = u32(th) / p.SH;
        if (oh >= p.OH) { continue; }
        for (var j = 0u; j < p.KW; j = j + 1u) {
            let tw = i32(w + p.PW) - i32(j * p.DW);
            if (tw < 0) { break; }
            if (u32(tw) % p.SW != 0u) { continue; }
            let ow = u32(tw) / p.SW;
            if (ow >= p.OW) { continue; }
            acc += cols[((plane * p.KH + i) * p.KW + j) * p.OH * p.OW + oh * p.OW + ow];
        }
    }
    dx[p.base + id] = acc;
}
"""])


@lru_cache(maxsize=None)
def sum_rows_wgsl() -> str:
    """WGSL: ``out[i] = (accumulate ? out[i] : 0) + sum_r part[r * total + i]``.

    Example::

        >>> "part[r * p.total + id]" in sum_rows_wgsl()
        True
    """
    return "\n".join([
        SUM_UNIFORMS.wgsl_struct("Params"), storage_decls(["part", "out"], ["out"]), ELEMENT_INDEX_WGSL,
        ELEMENT_MAIN_WGSL + """
    var acc = 0.0;
    if (p.accumulate != 0u) { acc = out[id]; }
    for (var r = 0u; r < p.rows; r = r + 1u) { acc += part[r * p.total + id]; }
    out[id] = acc;
}
"""])


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one convolution; ``OH, OW`` are those of the output (or of the given gradient).

    Example::

        >>> geo = ConvGeometry(2, 4, 9, 9, 6, 2, 3, 3, 7, 7, (1, 1), (0, 0), (1, 1))
        >>> geo.Cg, geo.Og, geo.K, geo.P
        (2, 3, 18, 49)
    """

    N: int
    C: int
    H: int
    W: int
    O: int
    G: int
    KH: int
    KW: int
    OH: int
    OW: int
    stride: tuple
    padding: tuple
    dilation: tuple

    @property
    def Cg(self) -> int:
        return self.C // self.G

    @property
    def Og(self) -> int:
        return self.O // self.G

    @property
    def K(self) -> int:
        """Reduction length of the forward GEMM: ``C/groups * kh * kw``."""
        return self.Cg * self.KH * self.KW

    @property
    def P(self) -> int:
        """Output positions per image."""
        return self.OH * self.OW

    @property
    def identity_columns(self) -> bool:
        """True when the input *is* its column matrix (1x1 kernel, stride 1, no padding, full output)."""
        return ((self.KH, self.KW, self.OH, self.OW) == (1, 1, self.H, self.W)
                and tuple(self.stride) == (1, 1) and tuple(self.padding) == (0, 0))

    def uniforms(self, total: int, base: int) -> dict:
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        return dict(total=total, C=self.C, H=self.H, W=self.W, OH=self.OH, OW=self.OW, KH=self.KH, KW=self.KW,
                    SH=sh, SW=sw, PH=ph, PW=pw, DH=dh, DW=dw, base=base)

    def chunk(self, budget: int, max_binding: int, extra_per_image: int = 0) -> int:
        """Images per chunk so that one chunk's scratch stays under ``budget`` bytes."""
        per_image = 4 * (self.C * self.KH * self.KW * self.P + extra_per_image)
        if per_image > max_binding:
            raise ValueError(f"conv2d: one image's column matrix ({per_image} bytes for C={self.C}, kernel "
                             f"{self.KH}x{self.KW}, {self.OH}x{self.OW} outputs) exceeds the adapter's "
                             f"storage binding limit of {max_binding} bytes")
        return max(1, min(self.N, min(budget, max_binding) // per_image))


def _geometry(x_shape, w_shape, out_hw, attrs) -> ConvGeometry:
    N, C, H, W = x_shape
    O, _, KH, KW = w_shape
    return ConvGeometry(N, C, H, W, O, int(attrs.get("groups", 1)), KH, KW, out_hw[0], out_hw[1],
                        tuple(attrs.get("stride", (1, 1))), tuple(attrs.get("padding", (0, 0))),
                        tuple(attrs.get("dilation", (1, 1))))


@dataclass(frozen=True)
class Operand:
    """A matrix operand of a grouped GEMM: element offset of image ``n``, group ``g`` is
    ``base + n * per_image + g * per_group``."""

    buf: Any
    base: int
    per_image: int
    per_group: int


def grouped_gemm(env: NnEnv, a: Operand, b: Operand, c: Operand, images: int, groups: int, M: int, N: int, K: int,
                 trans_a: bool = False, trans_b: bool = False, lda: int | None = None,
                 ldb: int | None = None) -> list[KernelLaunch]:
    """``C[n, g] = op(A[n, g]) @ op(B[n, g])`` for every image and group, in as few matmul launches as possible.

    One launch when (image, group) pairs are a linear batch for all three operands,
    or when either count is 1; otherwise one launch per group or per image,
    whichever is fewer.
    """

    def run(batch, stride, offset):
        sa, sb, sc = stride
        oa, ob, oc = offset
        return env.matmul.launch(a.buf, b.buf, c.buf, M, N, K, batch=batch, trans_a=trans_a, trans_b=trans_b,
                                 lda=lda, ldb=ldb, stride_a=sa, stride_b=sb, stride_c=sc,
                                 offset_a=oa, offset_b=ob, offset_c=oc)

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


def plan_conv2d(env: NnEnv, ins: Sequence[Any], in_shapes: Sequence[tuple], out: Any, out_shape: tuple,
                budget: int = COLUMN_BUDGET, **attrs) -> list[KernelLaunch]:
    """Launches computing ``out = conv2d(x, w)``; ``ins = [x, w]`` are contiguous float32 buffers.

    Example::

        >>> plan_conv2d(env, [x, w], [(1, 3, 5, 5), (2, 3, 3, 3)], y, (1, 2, 3, 3))   # doctest: +SKIP
    """
    x, w = ins
    geo = _geometry(in_shapes[0], in_shapes[1], out_shape[2:], attrs)
    G, K, P = geo.G, geo.K, geo.P
    nb = geo.chunk(budget, env.max_binding)
    cols = None if geo.identity_columns else env.scratch(4 * nb * geo.C * geo.KH * geo.KW * P)
    launches = []
    for n0, m in _chunks(geo.N, nb):
        x_base = n0 * geo.C * geo.H * geo.W
        if cols is None:
            b = Operand(x, x_base, G * K * P, K * P)
        else:
            total = m * geo.C * geo.KH * geo.KW * P
            launches.append(env.elementwise_launch(im2col_wgsl(), CONV_UNIFORMS, geo.uniforms(total, x_base),
                                                   [x, cols], "conv2d im2col"))
            b = Operand(cols, 0, G * K * P, K * P)
        launches += grouped_gemm(env, Operand(w, 0, 0, geo.Og * K), b,
                                 Operand(out, n0 * geo.O * P, geo.O * P, geo.Og * P), m, G, geo.Og, P, K)
    return launches


def plan_conv2d_backward_input(env: NnEnv, ins: Sequence[Any], in_shapes: Sequence[tuple], out: Any,
                               out_shape: tuple, budget: int = COLUMN_BUDGET, **attrs) -> list[KernelLaunch]:
    """Launches computing ``dx = conv2d_backward_input(g, w)``; ``ins = [g, w]``.

    Example::

        >>> plan_conv2d_backward_input(env, [g, w], [(1, 2, 3, 3), (2, 3, 3, 3)], dx, (1, 3, 5, 5),
        ...                            input_size=(5, 5))                          # doctest: +SKIP
    """
    g, w = ins
    geo = _geometry(out_shape, in_shapes[1], in_shapes[0][2:], attrs)
    G, K, P = geo.G, geo.K, geo.P
    nb = geo.chunk(budget, env.max_binding)
    cols = None if geo.identity_columns else env.scratch(4 * nb * geo.C * geo.KH * geo.KW * P)
    launches = []
    for n0, m in _chunks(geo.N, nb):
        x_base = n0 * geo.C * geo.H * geo.W
        c = Operand(out, x_base, G * K * P, K * P) if cols is None else Operand(cols, 0, G * K * P, K * P)
        launches += grouped_gemm(env, Operand(w, 0, 0, geo.Og * K),
                                 Operand(g, n0 * geo.O * P, geo.O * P, geo.Og * P), c, m, G, K, P, geo.Og,
                                 trans_a=True, lda=K)
        if cols is not None:
            total = m * geo.C * geo.H * geo.W
            launches.append(env.elementwise_launch(col2im_wgsl(), CONV_UNIFORMS, geo.uniforms(total, x_base),
                                                   [cols, out], "conv2d_backward_input col2im"))
    return launches


def plan_conv2d_backward_weight(env: NnEnv, ins: Sequence[Any], in_shapes: Sequence[tuple], out: Any,
                                out_shape: tuple, budget: int = COLUMN_BUDGET, **attrs) -> list[KernelLaunch]:
    """Launches computing ``dw = conv2d_backward_weight(g, x)``; ``ins = [g, x]``.

    Example::

        >>> plan_conv2d_backward_weight(env, [g, x], [(1, 2, 3, 3), (1, 3, 5, 5)], dw, (2, 3, 3, 3),
        ...                             kernel_size=(3, 3))                        # doctest: +SKIP
    """
    g, x = ins
    geo = _geometry(in_shapes[1], out_shape, in_shapes[0][2:], attrs)
    G, K, P, O = geo.G, geo.K, geo.P, geo.O
    nb = geo.chunk(budget, env.max_binding, extra_per_image=O * K)
    direct = geo.N == 1  # a single image's product is the gradient itself: no partial sums
    cols = None if geo.identity_columns else env.scratch(4 * nb * geo.C * geo.KH * geo.KW * P)
    part = None if direct else env.scratch(4 * nb * O * K)
    launches = []
    for n0, m in _chunks(geo.N, nb):
        x_base = n0 * geo.C * geo.H * geo.W
        if cols is None:
            b = Operand(x, x_base, G * K * P, K * P)
        else:
            total = m * geo.C * geo.KH * geo.KW * P
            launches.append(env.elementwise_launch(im2col_wgsl(), CONV_UNIFORMS, geo.uniforms(total, x_base),
                                                   [x, cols], "conv2d_backward_weight im2col"))
            b = Operand(cols, 0, G * K * P, K * P)
        c = Operand(out, 0, 0, geo.Og * K) if direct else Operand(part, 0, O * K, geo.Og * K)
        launches += grouped_gemm(env, Operand(g, n0 * O * P, O * P, geo.Og * P), b, c, m, G, geo.Og, K, P,
                                 trans_b=True, ldb=P)
        if not direct:
            values = dict(total=O * K, rows=m, accumulate=int(n0 > 0))
            launches.append(env.elementwise_launch(sum_rows_wgsl(), SUM_UNIFORMS, values, [part, out],
                                                   "conv2d_backward_weight sum"))
    return launches
