"""Experimental: matmul through wgpu's cooperative-matrix extension (tensor cores).

wgpu 0.32 (wgpu-native 29) exposes ``cooperative-matrix`` as an
experimental native feature with one shape, 8x8 f32 fragments
(``coop_mat8x8<f32, A|B|C>``, ``coopLoadT``/``coopMultiplyAdd``/``coopStoreT``).
This generator exists to measure what that path gives; the production path
is :mod:`.matmul_wgsl`. One subgroup computes an ``8*r x 8*s`` tile, loading
fragments straight from storage (row-major, ``T`` variants). Sizes must be
multiples of the tile and of 8 (no edge handling).

Example::

    >>> "coopMultiplyAdd" in generate_coop_matmul_wgsl(2, 2, 32)
    True
"""

from __future__ import annotations

from ..pipelines import LINEAR_WORKGROUP_WGSL, UniformLayout

COOP_UNIFORMS = UniformLayout([("M", "u32"), ("N", "u32"), ("K", "u32"), ("tiles_n", "u32"), ("total", "u32")])


def generate_coop_matmul_wgsl(r: int, s: int, subgroup_size: int) -> str:
    """WGSL for C = A @ B (row-major, M x K times K x N) with r x s fragments per subgroup."""
    frag = lambda role: f"coop_mat8x8<f32, {role}>"  # noqa: E731
    lines = [
        "enable wgpu_cooperative_matrix;",
        COOP_UNIFORMS.wgsl_struct("Params"),
        "@group(0) @binding(0) var<storage, read> A: array<f32>;",
        "@group(0) @binding(1) var<storage, read> B: array<f32>;",
        "@group(0) @binding(2) var<storage, read_write> C: array<f32>;",
        "@group(0) @binding(3) var<uniform> p: Params;",
        LINEAR_WORKGROUP_WGSL,
        f"@compute @workgroup_size({subgroup_size})",
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {",
        "    let lin = linear_workgroup(wid, nwg);",
        "    if (lin >= p.total) { return; }",
        f"    let row0 = (lin / p.tiles_n) * {8 * r}u;",
        f"    let col0 = (lin % p.tiles_n) * {8 * s}u;",
    ]
    for i in range(r):
        for j in range(s):
            lines.append(f"    var c{i}_{j} = {frag('C')}();")
    lines.append("    for (var k = 0u; k < p.K; k = k + 8u) {")
    for i in range(r):
        lines.append(f"        let a{i} = coopLoadT<{frag('A')}>(&A[(row0 + {8 * i}u) * p.K + k], p.K);")
    for j in range(s):
        lines.append(f"        let b{j} = coopLoadT<{frag('B')}>(&B[k * p.N + col0 + {8 * j}u], p.N);")
    for i in range(r):
        for j in range(s):
            lines.append(f"        c{i}_{j} = coopMultiplyAdd(a{i}, b{j}, c{i}_{j});")
    lines.append("    }")
    for i in range(r):
        for j in range(s):
            lines.append(f"    coopStoreT(c{i}_{j}, &C[(row0 + {8 * i}u) * p.N + col0 + {8 * j}u], p.N);")
    lines.append("}")
    return "\n".join(lines) + "\n"
