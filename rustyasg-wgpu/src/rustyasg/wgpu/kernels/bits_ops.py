"""bitcast on the device: the 32-bit words of a float32 tensor read as int32 and back.

Same-size integer pairs (int8 <-> uint8, int32 <-> uint32) and uint32 <-> float32 are rewritten
into wrapping casts before they reach this kernel (:mod:`rustyasg.wgpu.narrow_ints`). Other pairs
have no exact device form (float64 is kept as float32 on the device, int16 lives in a 32-bit word):
they are refused when the program is compiled.

Example::

    >>> "bitcast<i32>" in bitcast_wgsl(STORAGES["f32"], STORAGES["i32"])
    True
"""

from __future__ import annotations

from .api import STORAGES, KernelBuilder, KernelError, LINEAR_WORKGROUP_WGSL, Storage, UniformLayout

_LAYOUT = UniformLayout([("n", "u32")])
_PAIRS = {("f32", "i32"), ("i32", "f32")}


def bitcast_wgsl(x: Storage, out: Storage) -> str:
    """A kernel copying ``x``'s words into ``out`` reinterpreted as ``out``'s element type."""
    return f"""
@group(0) @binding(0) var<storage, read> x: {x.array};
@group(0) @binding(1) var<storage, read_write> out: {out.array};
{_LAYOUT.wgsl_struct("Params")}
@group(0) @binding(2) var<uniform> p: Params;
{LINEAR_WORKGROUP_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    if (i >= p.n) {{ return; }}
    out[i] = bitcast<{out.elem}>(x[i]);
}}
"""


def bitcast(kb: KernelBuilder, instr, inputs, out):
    (x,) = inputs
    if (x.storage.name, out.storage.name) not in _PAIRS or x.dtype.itemsize != 4:
        raise KernelError.of(instr, inputs, f"no exact bitcast from {x.dtype} to {out.dtype} on the device "
                                            "(only float32 <-> int32); use backend='cpu' for it")
    if out.size == 0:
        return []
    return [kb.launch(bitcast_wgsl(x.storage, out.storage), [x, out], kb.groups(out.size, 256),
                      (_LAYOUT, {"n": out.size}), "bitcast")]


KERNELS = {"bitcast": bitcast}
__all__ = ["KERNELS", "bitcast_wgsl", "STORAGES"]
