"""Layer and batch normalization, forward and backward, from one WGSL generator.

Both normalize *rows* with the biased variance: a layer-norm row is a contiguous
run of the last ``normalized_ndim`` axes; a batch-norm row is every element of
one channel, strided through the tensor viewed as ``(A, C, B)`` (``A`` the axes
before the channel axis, ``B`` those after). Only the addressing differs, so a
:class:`NormSpec` picks two small WGSL functions (``addr``: where element ``j`` of
row ``r`` is; ``pidx``: which ``gamma``/``beta`` entry it uses) and the rest of
the kernel is shared.

One workgroup per row, for any row length: each thread strides over the row,
then the workgroup reduces with ``subgroupAdd`` and one shared-memory slot per
subgroup where the adapter has subgroups (faster on NVIDIA), else a
shared-memory tree. The mean and the variance are two passes over the row
(exact, no ``E[x^2] - E[x]^2`` cancellation); the backward pass adds one more
reduction of ``(a, a * xh)`` with ``a = g * gamma``:
``dx = r * (a - mean(a) - xh * mean(a * xh))``.

Example::

    >>> src = norm_wgsl(NormSpec("layer", backward=False, subgroups=False, threads=64))
    >>> "fn wg_sum" in src and "workgroupBarrier" in src
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from ..pipelines import LINEAR_WORKGROUP_WGSL, KernelLaunch, UniformLayout
from .nn_common import float_elem, float_prelude, numel, storage_decls

NORM_UNIFORMS = UniformLayout([("rows", "u32"), ("L", "u32"), ("C", "u32"), ("B", "u32"), ("eps", "f32")])

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

# Workgroup sums of a vec2 (two statistics at once). Both versions start with a
# barrier so a previous call's readers are done with `red` before it is reused.
_REDUCTIONS = {
    True: """
fn wg_sum(v: vec2<f32>) -> vec2<f32> {
    let s = subgroupAdd(v);
    workgroupBarrier();
    if (sg_lane == 0u) { red[sg_index] = s; }
    workgroupBarrier();
    var t = vec2<f32>(0.0);
    for (var k = 0u; k < sg_count; k = k + 1u) { t += red[k]; }
    return t;
}
""",
    False: """
fn wg_sum(v: vec2<f32>) -> vec2<f32> {
    workgroupBarrier();
    red[lane] = v;
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lane < s) { red[lane] += red[lane + s]; }
    }
    workgroupBarrier();
    return red[0];
}
""",
}

_FORWARD = """
    for (var j = lane; j < p.L; j = j + WG) {
        let a = addr(row, j);
        let k = pidx(row, j);
        y[a] = F((f32(x[a]) - mean) * r * f32(gamma[k]) + f32(beta[k]));
    }
"""

_BACKWARD = """
    var t = vec2<f32>(0.0);
    for (var j = lane; j < p.L; j = j + WG) {
        let a = addr(row, j);
        let ga = f32(g[a]) * f32(gamma[pidx(row, j)]);
        t += vec2<f32>(ga, ga * (f32(x[a]) - mean) * r);
    }
    let m = wg_sum(t) / n;
    for (var j = lane; j < p.L; j = j + WG) {
        let a = addr(row, j);
        let xh = (f32(x[a]) - mean) * r;
        dx[a] = F(r * (f32(g[a]) * f32(gamma[pidx(row, j)]) - m.x - xh * m.y));
    }
"""


@dataclass(frozen=True)
class NormSpec:
    """One normalization kernel: ``layout`` (``layer``/``batch``), direction, reduction, size, float type.

    Example::

        >>> NormSpec("batch", backward=True).bindings
        ('g', 'x', 'gamma', 'dx')
    """

    layout: str
    backward: bool = False
    subgroups: bool = False
    threads: int = 256
    elem: str = "f32"

    @property
    def bindings(self) -> tuple:
        return ("g", "x", "gamma", "dx") if self.backward else ("x", "gamma", "beta", "y")


@lru_cache(maxsize=None)
def norm_wgsl(spec: NormSpec) -> str:
    """WGSL of the normalization kernel ``spec``: one workgroup of ``spec.threads`` per row."""
    out = spec.bindings[-1]
    sg_params = (", @builtin(subgroup_invocation_id) sgl: u32, @builtin(subgroup_size) sgs: u32"
                 if spec.subgroups else "")
    # Subgroups of a 1-D workgroup are consecutive runs of local_invocation_index.
    sg_setup = ("    sg_lane = sgl;\n    sg_index = lid / sgs;\n    sg_count = (WG + sgs - 1u) / sgs;\n"
                if spec.subgroups else "")
    return "\n".join([
        float_prelude(spec.elem),
        f"const WG: u32 = {spec.threads}u;",
        NORM_UNIFORMS.wgsl_struct("Params"),
        storage_decls(spec.bindings, [out]),
        "var<workgroup> red: array<vec2<f32>, WG>;",
        "var<private> lane: u32;\nvar<private> sg_lane: u32;\nvar<private> sg_index: u32;\nvar<private> sg_count: u32;",
        LINEAR_WORKGROUP_WGSL, _ADDRESSING[spec.layout], _REDUCTIONS[spec.subgroups],
        "@compute @workgroup_size(WG)",
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,",
        f"        @builtin(local_invocation_index) lid: u32{sg_params}) {{",
        "    lane = lid;",
        sg_setup + "    let row = linear_workgroup(wid, nwg);",
        "    if (row >= p.rows) { return; }",
        "    let n = f32(p.L);",
        "    var s = 0.0;",
        "    for (var j = lane; j < p.L; j = j + WG) { s += f32(x[addr(row, j)]); }",
        "    let mean = wg_sum(vec2<f32>(s, 0.0)).x / n;",
        "    var q = 0.0;",
        "    for (var j = lane; j < p.L; j = j + WG) { let d = f32(x[addr(row, j)]) - mean; q += d * d; }",
        "    let r = inverseSqrt(wg_sum(vec2<f32>(q, 0.0)).x / n + p.eps);",
        (_BACKWARD if spec.backward else _FORWARD).rstrip("\n"),
        "}",
    ]) + "\n"


def threads_for(row_length: int) -> int:
    """Workgroup size for rows of ``row_length``: enough threads to share the row, no idle crowd.

    Example::

        >>> threads_for(64), threads_for(768), threads_for(100_000)
        (64, 128, 256)
    """
    return 64 if row_length <= 256 else (128 if row_length <= 1024 else 256)


def _rows(layout: str, shape: Sequence[int], attrs: dict) -> dict:
    """Uniform values: rows, row length L, and the batch layout's (C, B)."""
    if layout == "layer":
        k = int(attrs["normalized_ndim"])
        L = numel(shape[len(shape) - k:])
        return dict(rows=numel(shape[:len(shape) - k]), L=L, C=1, B=1)
    ax = int(attrs.get("axis", 1)) % len(shape)
    C, B = int(shape[ax]), numel(shape[ax + 1:])
    return dict(rows=C, L=numel(shape[:ax]) * B, C=C, B=B)


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
        values = dict(_rows(layout, shape, instr.attrs), eps=float(instr.attrs.get("eps", 1e-5)))
        spec = NormSpec(layout, backward, kb.has_subgroups, threads_for(values["L"]), elem)
        return [kb.launch(norm_wgsl(spec), list(inputs) + [out], values["rows"], (NORM_UNIFORMS, values), op)]

    kernel.__name__ = kernel.__qualname__ = op
    kernel.__doc__ = f"Kernel of ``{op}`` (see :mod:`rustyasg.wgpu.kernels.nn_norm`)."
    return kernel


KERNELS = {f"{name}{suffix}": make_norm_kernel(f"{name}{suffix}", layout, bool(suffix))
           for name, layout in (("layer_norm", "layer"), ("batch_norm", "batch"))
           for suffix in ("", "_backward")}
