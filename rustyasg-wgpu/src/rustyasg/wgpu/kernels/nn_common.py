"""What the nn-primitive kernels (convolution, pooling, normalization) share.

The kernels follow the interface of :mod:`rustyasg.wgpu.kernels.api`: called once
at compile time with a :class:`~rustyasg.wgpu.kernels.api.KernelBuilder`, they
return the launches that compute one instruction. Their WGSL is written once
for a float element type ``F`` declared by :func:`float_prelude` (``f32``, or
``f16`` where the adapter stores float16 as such); arithmetic is always in
``f32`` (loads are wrapped in ``f32(...)``, stores in ``F(...)``).

One-thread-per-element kernels use 256-thread workgroups dispatched through
:func:`~rustyasg.wgpu.pipelines.split_workgroups` (by :class:`KernelLaunch`), so
any size fits the 65535-per-dimension limit.

Example::

    >>> print(float_prelude("f32"))
    alias F = f32;
    >>> storage_decls(["x", "y"], writable=["y"]).splitlines()[1]
    '@group(0) @binding(1) var<storage, read_write> y: array<F>;'
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..pipelines import KernelLaunch, UniformLayout

# Threads per workgroup of the one-thread-per-element kernels (im2col, pooling).
THREADS = 256

# WGSL: the element this thread owns, from a dispatch split over x/y/z.
ELEMENT_INDEX_WGSL = f"""
fn element_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {{
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * {THREADS}u + lid;
}}
"""

# WGSL: entry point of a one-thread-per-element kernel up to its body (which closes it).
ELEMENT_MAIN_WGSL = (f"@compute @workgroup_size({THREADS})\n"
                     "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
                     "        @builtin(local_invocation_index) lid: u32) {\n"
                     "    let id = element_index(wid, nwg, lid);\n"
                     "    if (id >= p.total) { return; }\n")


# Workgroup sums of a vec2 (two statistics at once) for kernels with one workgroup of
# `WG` threads per reduction. Both versions start with a barrier so a previous call's
# readers are done with `red` before it is reused. The subgroup version adds within
# each subgroup, then across the (at most WG/4) subgroup partials.
_WORKGROUP_SUMS = {
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


def workgroup_reduction(threads: int, subgroups: bool) -> tuple[str, str, str]:
    """WGSL pieces of ``fn wg_sum(v: vec2<f32>) -> vec2<f32>`` for ``threads``-wide workgroups:
    (module-scope declarations and the function, extra ``main`` parameters, ``main`` prologue).

    The prologue must run first in ``main``; ``wg_sum`` must be called in uniform control flow.
    ``WG`` (the workgroup size) and ``lane`` (the local index) are declared for the kernel too.

    Example::

        >>> decls, params, setup = workgroup_reduction(64, subgroups=False)
        >>> "const WG: u32 = 64u;" in decls and params == "" and setup.strip() == "lane = lid;"
        True
    """
    decls = "\n".join([
        f"const WG: u32 = {threads}u;",
        "var<workgroup> red: array<vec2<f32>, WG>;",
        "var<private> lane: u32;\nvar<private> sg_lane: u32;\nvar<private> sg_index: u32;\nvar<private> sg_count: u32;",
        _WORKGROUP_SUMS[subgroups]])
    if not subgroups:
        return decls, "", "    lane = lid;\n"
    # Subgroups of a 1-D workgroup are consecutive runs of local_invocation_index.
    return (decls, ", @builtin(subgroup_invocation_id) sgl: u32, @builtin(subgroup_size) sgs: u32",
            "    lane = lid;\n    sg_lane = sgl;\n    sg_index = lid / sgs;\n    sg_count = (WG + sgs - 1u) / sgs;\n")


def float_prelude(elem: str) -> str:
    """WGSL declaring ``F``, the float element type of the kernel's tensors (``f32`` or ``f16``).

    Example::

        >>> float_prelude("f16").splitlines()
        ['enable f16;', 'alias F = f16;']
    """
    if elem not in ("f32", "f16"):
        raise ValueError(f"nn kernels store floats as f32 or f16, not {elem}")
    return ("enable f16;\n" if elem == "f16" else "") + f"alias F = {elem};"


def storage_decls(names: Sequence[str], writable: Sequence[str] = (), types: dict | None = None) -> str:
    """``@binding`` declarations of storage arrays ``names`` (element ``F`` unless ``types``
    says otherwise), in order, then the uniform block ``p: Params``.

    Example::

        >>> print(storage_decls(["x", "idx"], writable=["idx"], types={"idx": "u32"}))
        @group(0) @binding(0) var<storage, read> x: array<F>;
        @group(0) @binding(1) var<storage, read_write> idx: array<u32>;
        @group(0) @binding(2) var<uniform> p: Params;
    """
    types = types or {}
    lines = []
    for i, name in enumerate(names):
        access = "read_write" if name in writable else "read"
        lines.append(f"@group(0) @binding({i}) var<storage, {access}> {name}: array<{types.get(name, 'F')}>;")
    lines.append(f"@group(0) @binding({len(names)}) var<uniform> p: Params;")
    return "\n".join(lines)


def element_kernel_wgsl(elem: str, layout: UniformLayout, names: Sequence[str], body: str, helpers: str = "",
                        types: dict | None = None) -> str:
    """A whole one-thread-per-element kernel: float type, uniform struct ``p``, storage arrays
    ``names`` (the last one written), ``helpers``, and ``main`` running ``body`` for element ``id``
    (``body`` ends with the closing brace of ``main``).

    Example::

        >>> src = element_kernel_wgsl("f32", UniformLayout([("total", "u32")]), ["x", "y"], "y[id] = x[id];}")
        >>> "var<storage, read_write> y" in src and src.rstrip().endswith("y[id] = x[id];}")
        True
    """
    return "\n".join([float_prelude(elem), layout.wgsl_struct("Params"), storage_decls(names, names[-1:], types),
                      helpers, ELEMENT_INDEX_WGSL, ELEMENT_MAIN_WGSL + body])


def float_elem(op: str, *views: Any) -> str:
    """The common float storage (``f32``/``f16``) of ``views``; a clear error otherwise.

    Example::

        >>> from rustyasg.wgpu.kernels.api import STORAGES, TensorView
        >>> float_elem("conv2d", TensorView(None, (1,), np.dtype("float32"), STORAGES["f32"]))
        'f32'
    """
    names = {v.storage.name for v in views}
    if len(names) != 1 or not names <= {"f32", "f16"}:
        dts = ", ".join(str(v.dtype) for v in views)
        raise TypeError(f"wgpu {op} kernels need float operands of one dtype, got {dts}")
    return names.pop()


def numel(shape: Sequence[int]) -> int:
    """Number of elements of ``shape`` (1 for a scalar).

    Example::

        >>> numel((2, 3, 4)), numel(())
        (24, 1)
    """
    return int(np.prod(tuple(shape), dtype=np.int64))


def element_launch(kb: Any, wgsl: str, layout: UniformLayout, values: dict, resources: Sequence[Any],
                   label: str) -> KernelLaunch:
    """A launch of a one-thread-per-element kernel over ``values['total']`` elements.

    Example::

        element_launch(kb, src, layout, {"total": 1000}, [x, y], "im2col")
    """
    return kb.launch(wgsl, resources, kb.groups(values["total"], THREADS), (layout, values), label)


def max_binding(kb: Any) -> int:
    """Largest storage-buffer binding of the adapter, in bytes."""
    return kb.limit("max-storage-buffer-binding-size", 1 << 27)
