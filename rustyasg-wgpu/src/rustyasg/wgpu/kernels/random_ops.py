"""Kernels for ``random_uniform`` and ``random_normal``: the core's counter-based hash on the GPU.

Each element hashes ``(seed, salt, index)`` with the ``lowbias32`` mixer in 32-bit
integer arithmetic, exactly as the core's reference does in numpy (:mod:`rustyasg.core.backend_api`), so the
24-bit uniforms are bit-identical on every backend (the final scaling is float32 here).
The seed is read on the device (an int64 RNG state is two u32 words), so advancing an
RNG state variable needs no upload and no recompilation.

Example::

    >>> from rustyasg.wgpu.kernels.api import STORAGES
    >>> "fn hash32" in random_wgsl("normal", STORAGES["i64"], STORAGES["f32"])
    True
"""

from __future__ import annotations

from rustyasg.core.backend_api import GOLDEN, M1, M2

from .api import KernelBuilder, LINEAR_WORKGROUP_WGSL, Storage, UniformLayout

LAYOUT = UniformLayout([("n", "u32"), ("salt_mix", "u32"), ("a", "f32"), ("b", "f32")])


def _seed_words(st: Storage) -> str:
    if st.name == "i64":
        return "let sw = seed[0];"
    return "let s32 = seed[0];\n    let sw = vec2<u32>(bitcast<u32>(s32), select(0u, 0xffffffffu, s32 < 0));"


def random_wgsl(kind: str, seed_st: Storage, out_st: Storage) -> str:
    """WGSL drawing uniform (``a + (b - a) * u``) or normal (mean ``a``, std ``b``) numbers."""
    if kind == "uniform":
        value = "p.a + (p.b - p.a) * unit(gid)"
    else:
        value = ("p.a + p.b * sqrt(-2.0 * log(1.0 - unit(2u * gid))) * cos(6.283185307179586 * unit(2u * gid + 1u))")
    return (KernelBuilder.header(out_st) + LAYOUT.wgsl_struct("Params") + "\n"
            f"@group(0) @binding(0) var<storage, read> seed: {seed_st.array};\n"
            f"@group(0) @binding(1) var<storage, read_write> dst: {out_st.array};\n"
            "@group(0) @binding(2) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + f"""
fn hash32(x: u32) -> u32 {{
    var v = x;
    v = v ^ (v >> 16u);
    v = v * {M1}u;
    v = v ^ (v >> 15u);
    v = v * {M2}u;
    v = v ^ (v >> 16u);
    return v;
}}
var<private> key: u32;
fn unit(i: u32) -> f32 {{
    return f32(hash32((i * {GOLDEN}u) ^ key) >> 8u) * (1.0 / 16777216.0);
}}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let gid = linear_workgroup(wid, nwg) * 256u + lid;
    if (gid >= p.n) {{ return; }}
    {_seed_words(seed_st)}
    key = hash32(sw.x ^ hash32(sw.y + p.salt_mix));
    {out_st.store("dst", "gid", value)};
}}
""")


def random_op(kb, instr, inputs, out):
    (seed,) = inputs
    a = instr.attrs
    kind = "uniform" if instr.op == "random_uniform" else "normal"
    lo, hi = (a["low"], a["high"]) if kind == "uniform" else (a["mean"], a["std"])
    values = {"n": out.size, "salt_mix": (int(a["salt"]) * GOLDEN) & 0xFFFFFFFF, "a": lo, "b": hi}
    return [kb.launch(random_wgsl(kind, seed.storage, out.storage), [seed, out], kb.groups(out.size, 256),
                      (LAYOUT, values), instr.op)]


KERNELS = {"random_uniform": random_op, "random_normal": random_op}
