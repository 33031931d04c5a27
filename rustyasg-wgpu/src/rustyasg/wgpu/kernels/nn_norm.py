"""Layer and batch normalization, forward and backward, from one WGSL generator.

Both normalize *rows* with the biased variance: a layer-norm row is a contiguous
run of the last ``normalized_ndim`` axes; a batch-norm row is every element of
one channel, strided through the tensor viewed as ``(A, C, B)`` (``A`` the axes
before the channel axis, ``B`` those after). Only the addressing differs, so a
:class:`NormSpec` picks two small WGSL functions (``addr``: where element ``j`` of
row ``r`` is; ``pidx``: which ``gamma``/``beta`` entry it uses) and the rest of
the kernel is shared.

Workgroups reduce with ``subgroupAdd`` and one shared-memory slot per subgroup
where the adapter has subgroups (faster on NVIDIA), else with a shared-memory
tree. Statistics are exact two-pass ones (mean, then the sum of squared
deviations: no ``E[x^2] - E[x]^2`` cancellation). The backward pass also
reduces ``(a, a * xh)`` with ``a = g * gamma``: ``dx = r * (a - mean(a) - xh * mean(a * xh))``.

Rows of any length. A row short enough for one workgroup (every layer norm of
a transformer) is one fused kernel: statistics, then the output. A long row
(batch norm over ``N*H*W`` values of a channel) would leave the GPU idle with
one workgroup per channel, so it is cut into ``S`` segments, each its own
workgroup, in stages (:data:`STAGES`): per-segment ``(mean, M2)``, merged by
every consumer with Chan's formula; in the backward direction per-segment
``(sum a, sum a*xh)`` as well; then the output, segment by segment.

Example::

    >>> src = norm_wgsl(NormSpec("layer", stage="fused_forward", subgroups=False, threads=64))
    >>> "fn wg_sum" in src and "workgroupBarrier" in src
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from rustyasg.core.backend_api import outer_reduced_inner

from ..pipelines import LINEAR_WORKGROUP_WGSL, KernelLaunch, UniformLayout
from .nn_common import float_elem, float_prelude, storage_decls, workgroup_reduction

NORM_UNIFORMS = UniformLayout([("rows", "u32"), ("L", "u32"), ("C", "u32"), ("B", "u32"), ("S", "u32"),
                               ("SEG", "u32"), ("groups", "u32"), ("eps", "f32")])

# Values per workgroup below which a row is not split: 16 per thread of a
# 256-thread workgroup keeps enough loads in flight to stream memory.
SEGMENT = 4096

# Row addressing per layout: element j of row r, and its parameter index.
_ADDRESSING = {
    "layer": """
fn addr(r: u32, j: u32) -> u32 { return r * p.L + j; }
fn pidx(r: u32, j: u32) -> u32 { return j; }
""",
    "batch": """
fn addr(r: u32, j: u32) -> u32 { return (j / p.B) * p.C * p.B + r * p.B + j % p.B; }
fn pidx(r: u32, j: u32) -> u32 { return r; }
""",
}

# Statistics helpers: this workgroup's segment [lo, hi) of row `row`.
_STATS_WGSL = """
fn segment_stats(row: u32, lo: u32, hi: u32) -> vec2<f32> {
    // (mean, M2) of the segment, in two passes
    var s = 0.0;
    for (var j = lo + lane; j < hi; j = j + WG) { s += f32(x[addr(row, j)]); }
    let m = wg_sum(vec2<f32>(s, 0.0)).x / f32(hi - lo);
    var q = 0.0;
    for (var j = lo + lane; j < hi; j = j + WG) { let d = f32(x[addr(row, j)]) - m; q += d * d; }
    return vec2<f32>(m, wg_sum(vec2<f32>(q, 0.0)).x);
}
fn segment_count(k: u32) -> f32 { return f32(min(p.SEG, p.L - k * p.SEG)); }
fn merged_stats(row: u32) -> vec2<f32> {
    // (mean, 1/sqrt(var + eps)) of the row from its segments' (mean, M2), by Chan's formula
    var t = vec2<f32>(0.0);
    for (var k = lane; k < p.S; k = k + WG) { t.x += segment_count(k) * part[row * p.S + k].x; }
    let mean = wg_sum(t).x / f32(p.L);
    var q = vec2<f32>(0.0);
    for (var k = lane; k < p.S; k = k + WG) {
        let d = part[row * p.S + k].x - mean;
        q.x += part[row * p.S + k].y + segment_count(k) * d * d;
    }
    return vec2<f32>(mean, inverseSqrt(wg_sum(q).x / f32(p.L) + p.eps));
}
fn merged_sums(row: u32) -> vec2<f32> {
    var t = vec2<f32>(0.0);
    for (var k = lane; k < p.S; k = k + WG) { t += sums[row * p.S + k]; }
    return wg_sum(t) / f32(p.L);
}
"""

_APPLY_FORWARD = """
    for (var j = lo + lane; j < hi; j = j + WG) {
        let a = addr(row, j);
        let k = pidx(row, j);
        y[a] = F((f32(x[a]) - mean) * r * f32(gamma[k]) + f32(beta[k]));
    }"""

_BACKWARD_SUMS = """
    var t = vec2<f32>(0.0);
    for (var j = lo + lane; j < hi; j = j + WG) {
        let a = addr(row, j);
        let ga = f32(g[a]) * f32(gamma[pidx(row, j)]);
        t += vec2<f32>(ga, ga * (f32(x[a]) - mean) * r);
    }"""

_APPLY_BACKWARD = """
    for (var j = lo + lane; j < hi; j = j + WG) {
        let a = addr(row, j);
        let xh = (f32(x[a]) - mean) * r;
        dx[a] = F(r * (f32(g[a]) * f32(gamma[pidx(row, j)]) - m.x - xh * m.y));
    }"""

_LOCAL_STATS = ("    let st = segment_stats(row, lo, hi);\n    let mean = st.x;\n"
                "    let r = inverseSqrt(st.y / f32(p.L) + p.eps);")
_MERGED_STATS = "    let st = merged_stats(row);\n    let mean = st.x;\n    let r = st.y;"

# stage -> (bindings, body). The fused stages do a whole row in one workgroup; the
# others run one workgroup per segment, in the order: stats, apply_forward, or
# stats, sums, apply_backward. `part` holds each segment's (mean, M2) and `sums`
# its (sum a, sum a*xh). The output is always bound last.
STAGES = {
    "fused_forward": (("x", "gamma", "beta", "y"), _LOCAL_STATS + _APPLY_FORWARD),
    "fused_backward": (("g", "x", "gamma", "dx"),
                       _LOCAL_STATS + _BACKWARD_SUMS + "\n    let m = wg_sum(t) / f32(p.L);" + _APPLY_BACKWARD),
    "stats": (("x", "part"), "    let st = segment_stats(row, lo, hi);\n    if (lane == 0u) { part[wg] = st; }"),
    "apply_forward": (("x", "gamma", "beta", "part", "y"), _MERGED_STATS + _APPLY_FORWARD),
    "sums": (("g", "x", "gamma", "part", "sums"),
             _MERGED_STATS + _BACKWARD_SUMS + "\n    let s = wg_sum(t);\n    if (lane == 0u) { sums[wg] = s; }"),
    "apply_backward": (("g", "x", "gamma", "part", "sums", "dx"),
                       _MERGED_STATS + "\n    let m = merged_sums(row);" + _APPLY_BACKWARD),
}
_VEC2 = {"part": "vec2<f32>", "sums": "vec2<f32>"}


@dataclass(frozen=True)
class NormSpec:
    """One normalization kernel: ``layout`` (``layer``/``batch``), ``stage`` (see :data:`STAGES`),
    reduction, workgroup size, float type.

    Example::

        >>> NormSpec("batch", stage="apply_backward").bindings
        ('g', 'x', 'gamma', 'part', 'sums', 'dx')
    """

    layout: str
    stage: str = "fused_forward"
    subgroups: bool = False
    threads: int = 256
    elem: str = "f32"

    @property
    def bindings(self) -> tuple:
        return STAGES[self.stage][0]


@lru_cache(maxsize=None)
def norm_wgsl(spec: NormSpec) -> str:
    """WGSL of the normalization kernel ``spec``: one workgroup of ``spec.threads`` per row segment."""
    names, body = STAGES[spec.stage]
    reduce_decls, sg_params, setup = workgroup_reduction(spec.threads, spec.subgroups)
    helpers = _STATS_WGSL if "x" in names else ""
    if "part" not in names:  # the fused stages do not merge segments
        helpers = helpers[:helpers.index("fn segment_count")]
    elif "sums" not in names:
        helpers = helpers[:helpers.index("fn merged_sums")]
    return "\n".join([
        float_prelude(spec.elem),
        NORM_UNIFORMS.wgsl_struct("Params"),
        storage_decls(names, names[-1:], _VEC2),  # the output is bound last
        reduce_decls, LINEAR_WORKGROUP_WGSL, _ADDRESSING[spec.layout], helpers,
        "@compute @workgroup_size(WG)",
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,",
        f"        @builtin(local_invocation_index) lid: u32{sg_params}) {{",
        setup + "    let wg = linear_workgroup(wid, nwg);",
        "    if (wg >= p.groups) { return; }",
        "    let row = wg / p.S;",
        "    let lo = (wg % p.S) * p.SEG;",
        "    let hi = min(lo + p.SEG, p.L);",
        body,
        "}",
    ]) + "\n"


def threads_for(row_length: int) -> int:
    """Workgroup size for rows of ``row_length``: enough threads to share the row, no idle crowd.

    Example::

        >>> threads_for(64), threads_for(768), threads_for(100_000)
        (64, 128, 256)
    """
    return 64 if row_length <= 256 else (128 if row_length <= 1024 else 256)


def row_layout(layout: str, shape: Sequence[int], attrs: dict, segment: int | None = None) -> dict:
    """Uniform values: rows, row length ``L``, the batch layout's ``(C, B)``, segments ``S`` of ``SEG``.

    Example::

        >>> row_layout("batch", (32, 64, 56, 56), {"axis": 1})
        {'rows': 64, 'L': 100352, 'C': 64, 'B': 3136, 'S': 25, 'SEG': 4015, 'groups': 1600}
        >>> row_layout("layer", (8, 10, 768), {"normalized_ndim": 1})["S"]
        1
    """
    if layout == "layer":
        k = int(attrs["normalized_ndim"])
        rows, L, _ = outer_reduced_inner(shape, range(len(shape) - k, len(shape)))
        C, B = 1, 1
    else:
        A, C, B = outer_reduced_inner(shape, (int(attrs.get("axis", 1)) % len(shape),))
        rows, L = C, A * B
    seg = -(-L // max(1, -(-L // (segment or SEGMENT))))  # balanced segments of at most `segment`
    S = -(-L // seg)  # every segment non-empty
    return dict(rows=rows, L=L, C=C, B=B, S=S, SEG=seg, groups=rows * S)


def make_norm_kernel(op: str, layout: str, backward: bool):
    """The kernel (interface of :mod:`.api`) of ``op``: forward takes ``(x, gamma, beta)``,
    backward ``(g, x, gamma)``.

    Example::

        >>> make_norm_kernel("layer_norm", "layer", False).__name__
        'layer_norm'
    """

    def kernel(kb: Any, instr: Any, inputs: Sequence[Any], out: Any) -> list[KernelLaunch]:
        elem = float_elem(op, *inputs, out)
        shape = inputs[1].shape if backward else inputs[0].shape
        values = dict(row_layout(layout, shape, instr.attrs), eps=float(instr.attrs.get("eps", 1e-5)))
        uniforms = (NORM_UNIFORMS, values)

        def launch(stage, buffers, label=op):
            spec = NormSpec(layout, stage, kb.has_subgroups, threads_for(values["SEG"]), elem)
            return kb.launch(norm_wgsl(spec), list(buffers), values["groups"], uniforms, label)

        direction = "backward" if backward else "forward"
        if values["S"] == 1:
            return [launch(f"fused_{direction}", list(inputs) + [out])]
        part = kb.scratch(8 * values["groups"], f"{op} segment statistics")
        x = inputs[1] if backward else inputs[0]
        launches = [launch("stats", [x, part], f"{op} statistics")]
        if not backward:
            return launches + [launch("apply_forward", list(inputs) + [part, out])]
        sums = kb.scratch(8 * values["groups"], f"{op} segment sums")
        return launches + [launch("sums", list(inputs) + [part, sums], f"{op} sums"),
                           launch("apply_backward", list(inputs) + [part, sums, out])]

    kernel.__name__ = kernel.__qualname__ = op
    kernel.__doc__ = f"Kernel of ``{op}`` (see :mod:`rustyasg.wgpu.kernels.nn_norm`)."
    return kernel


KERNELS = {f"{name}{suffix}": make_norm_kernel(f"{name}{suffix}", layout, bool(suffix))
           for name, layout in (("layer_norm", "layer"), ("batch_norm", "batch"))
           for suffix in ("", "_backward")}
