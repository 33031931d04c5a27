"""Direct convolution kernels, for convolutions with few output channels per group.

The im2col + GEMM path (:mod:`.nn_conv`) computes ``W[g] (Og x K) @ cols``: a
GEMM tile is at least 32 rows of ``Og``, so with ``Og = 1`` (depthwise) 31/32 of
the work is padding, the backward-input GEMM reduces over just ``Og`` terms, and
groups cost one launch each. Here each output is computed where it lives:

- ``forward``: one thread per output sums its ``C/groups * kh * kw`` window taps;
- ``backward_input``: one thread per input pixel gathers from the outputs whose
  windows read it (``Og * kh * kw`` candidates, strides checked), no atomics;
- ``backward_weight``: one workgroup per weight element reduces its
  ``N * OH * OW`` products with the shared :func:`.nn_common.workgroup_reduction`.

Example::

    >>> src = direct_conv_wgsl("forward", "f32")
    >>> "acc += f32(x[" in src
    True
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..pipelines import LINEAR_WORKGROUP_WGSL, KernelLaunch
from .nn_common import element_kernel_wgsl, element_launch, float_prelude, storage_decls, workgroup_reduction
from .nn_conv_geometry import CONV_UNIFORMS, ConvGeometry, transposed_taps_wgsl

# Output channels per group up to which the direct kernels beat a GEMM's 32-row tiles.
DIRECT_MAX_OUT_PER_GROUP = 4

# Threads per workgroup of the weight-gradient reduction.
REDUCE_THREADS = 256

_FORWARD = """
    var r = id;
    let ow = r % p.OW; r = r / p.OW;
    let oh = r % p.OH; r = r / p.OH;
    let o = r % p.O;
    let n = r / p.O;
    let cg_n = p.C / p.G;
    let c0 = o / (p.O / p.G) * cg_n;
    var acc = 0.0;
    for (var cg = 0u; cg < cg_n; cg = cg + 1u) {
        let xb = (n * p.C + c0 + cg) * p.H * p.W;
        let wb = (o * cg_n + cg) * p.KH * p.KW;
        for (var i = 0u; i < p.KH; i = i + 1u) {
            let h = i32(oh * p.SH + i * p.DH) - i32(p.PH);
            if (h < 0 || h >= i32(p.H)) { continue; }
            for (var j = 0u; j < p.KW; j = j + 1u) {
                let w = i32(ow * p.SW + j * p.DW) - i32(p.PW);
                if (w < 0 || w >= i32(p.W)) { continue; }
                acc += f32(x[xb + u32(h) * p.W + u32(w)]) * f32(wt[wb + i * p.KW + j]);
            }
        }
    }
    y[id] = F(acc);
}
"""

_BACKWARD_INPUT = """
    var r = id;
    let w = r % p.W; r = r / p.W;
    let h = r % p.H; r = r / p.H;
    let c = r % p.C;
    let n = r / p.C;
    let cg_n = p.C / p.G;
    let og_n = p.O / p.G;
    let cg = c % cg_n;
    let o0 = c / cg_n * og_n;
    var acc = 0.0;
    for (var og = 0u; og < og_n; og = og + 1u) {
        let gb = (n * p.O + o0 + og) * p.OH * p.OW;
        let wb = ((o0 + og) * cg_n + cg) * p.KH * p.KW;
""" + transposed_taps_wgsl("acc += f32(gr[gb + oh * p.OW + ow]) * f32(wt[wb + i * p.KW + j]);", " " * 8) + """\
    }
    dx[id] = F(acc);
}
"""

_BACKWARD_WEIGHT = """
    let e = linear_workgroup(wid, nwg);
    if (e >= p.total) { return; }
    let cg_n = p.C / p.G;
    var r = e;
    let j = r % p.KW; r = r / p.KW;
    let i = r % p.KH; r = r / p.KH;
    let cg = r % cg_n;
    let o = r / cg_n;
    let c = o / (p.O / p.G) * cg_n + cg;
    let positions = p.OH * p.OW;
    var acc = 0.0;
    for (var t = lane; t < p.N * positions; t = t + WG) {
        let n = t / positions;
        let q = t % positions;
        let h = i32(q / p.OW * p.SH + i * p.DH) - i32(p.PH);
        let w = i32(q % p.OW * p.SW + j * p.DW) - i32(p.PW);
        if (h >= 0 && h < i32(p.H) && w >= 0 && w < i32(p.W)) {
            acc += f32(gr[(n * p.O + o) * positions + q]) * f32(x[((n * p.C + c) * p.H + u32(h)) * p.W + u32(w)]);
        }
    }
    let s = wg_sum(vec2<f32>(acc, 0.0)).x;
    if (lane == 0u) { dw[e] = F(s); }
}
"""

# mode -> (bindings with the output last, body)
_MODES = {
    "forward": (("x", "wt", "y"), _FORWARD),
    "backward_input": (("gr", "wt", "dx"), _BACKWARD_INPUT),
    "backward_weight": (("gr", "x", "dw"), _BACKWARD_WEIGHT),
}


def direct_applies(geo: ConvGeometry) -> bool:
    """Whether the direct kernels should compute this convolution (few outputs per group).

    Example::

        >>> from .nn_conv_geometry import conv_geometry
        >>> direct_applies(conv_geometry((8, 32, 14, 14), (32, 1, 3, 3), (12, 12), {"groups": 32}))
        True
    """
    return geo.Og <= DIRECT_MAX_OUT_PER_GROUP


@lru_cache(maxsize=None)
def direct_conv_wgsl(mode: str, elem: str = "f32", subgroups: bool = False) -> str:
    """WGSL of the direct ``mode`` kernel (``forward``, ``backward_input``, ``backward_weight``)."""
    names, body = _MODES[mode]
    if mode != "backward_weight":
        return element_kernel_wgsl(elem, CONV_UNIFORMS, names, body)
    head = [float_prelude(elem), CONV_UNIFORMS.wgsl_struct("Params"), storage_decls(names, names[-1:])]
    decls, params, setup = workgroup_reduction(REDUCE_THREADS, subgroups)
    return "\n".join(head + [decls, LINEAR_WORKGROUP_WGSL, "@compute @workgroup_size(WG)",
                             "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,",
                             f"        @builtin(local_invocation_index) lid: u32{params}) {{", setup + body])


def direct_conv(kb: Any, mode: str, geo: ConvGeometry, elem: str, a: Any, b: Any, out: Any,
                label: str) -> list[KernelLaunch]:
    """The launch computing ``out`` from operands ``a, b`` (the op's inputs, in order) with the direct kernels.

    Example::

        direct_conv(kb, "forward", geo, "f32", x, w, y, "conv2d")
    """
    if mode == "backward_weight":
        count = geo.O * geo.Cg * geo.KH * geo.KW  # one workgroup per weight element
        src = direct_conv_wgsl(mode, elem, kb.has_subgroups)
        return [kb.launch(src, [a, b, out], count, (CONV_UNIFORMS, geo.uniforms(count)), label)]
    count = geo.N * (geo.O * geo.P if mode == "forward" else geo.C * geo.H * geo.W)
    return [element_launch(kb, direct_conv_wgsl(mode, elem), CONV_UNIFORMS, geo.uniforms(count), [a, b, out], label)]
