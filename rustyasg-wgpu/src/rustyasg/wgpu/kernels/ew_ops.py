"""Kernels for the core's elementwise ops: float domain through the fused generator,
exact 64-bit integer domain through a small generator of its own, and ``one_hot``.

The executor fuses float elementwise instructions itself (:mod:`rustyasg.wgpu.fusion`);
the ``KERNELS`` entries here serve the instructions it does not fuse: integer
arithmetic and comparisons (int32/int64 operands or results), and any single op a
caller wants alone.

Integer values are computed as ``vec2<u32>`` (lo, hi) two's-complement 64-bit numbers
(:data:`I64_OPS_WGSL`), so an int64 RNG counter ``state + 1`` or a comparison with a
large id is exact; ``floor_divide``, ``mod``, ``fmod`` and ``pow`` are exact over all 64 bits
(one hardware division when both operands fit 32 bits). A result whose dtype is kept in a wider
word (int8, uint8, int16 in ``i32``, uint32 in ``i64``, :data:`~.storage.WIDENED`) is wrapped into
its range before the store, as numpy and PyTorch wrap: ``int8(127) + int8(1) == -128``.

Example::

    >>> "add64(" in int_kernel_wgsl("add", ["i64", "i64"], "i64", rank=1, kinds=["contig", "splat"])
    True
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple


from .api import STORAGES, KernelBuilder, KernelError, LINEAR_WORKGROUP_WGSL, UniformLayout
from .storage import wrap_bits
from .elementwise import ElementwiseSpec, EwOp, access_kind, broadcast_strides, collapse_dims, contiguous_strides

I64_OPS_WGSL = """
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn neg64(a: vec2<u32>) -> vec2<u32> {
    let lo = ~a.x + 1u;
    return vec2<u32>(lo, ~a.y + select(0u, 1u, lo == 0u));
}
fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return add64(a, neg64(b)); }
fn mulhi32(a: u32, b: u32) -> u32 {
    let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
    let p01 = a0 * b1; let p10 = a1 * b0;
    let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x * b.x, mulhi32(a.x, b.x) + a.x * b.y + a.y * b.x);
}
fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    let ah = bitcast<i32>(a.y); let bh = bitcast<i32>(b.y);
    return ah < bh || (ah == bh && a.x < b.x);
}
fn nz64(a: vec2<u32>) -> bool { return a.x != 0u || a.y != 0u; }
fn b64(c: bool) -> vec2<u32> { return vec2<u32>(select(0u, 1u, c), 0u); }
fn neg_p(a: vec2<u32>) -> bool { return (a.y & 0x80000000u) != 0u; }
fn abs64(a: vec2<u32>) -> vec2<u32> { return select(a, neg64(a), neg_p(a)); }
fn sign64(a: vec2<u32>) -> vec2<u32> {
    if (neg_p(a)) { return vec2<u32>(0xffffffffu, 0xffffffffu); }
    return b64(nz64(a));
}
fn fits32(a: vec2<u32>) -> bool { return a.y == select(0u, 0xffffffffu, (a.x & 0x80000000u) != 0u); }
fn ult64(a: vec2<u32>, b: vec2<u32>) -> bool { return a.y < b.y || (a.y == b.y && a.x < b.x); }
struct QR64 { q: vec2<u32>, r: vec2<u32> }
fn udivmod64(n: vec2<u32>, d: vec2<u32>) -> QR64 {
    // Unsigned 64-bit long division, one quotient bit per step (d != 0).
    var q = vec2<u32>(0u, 0u);
    var r = vec2<u32>(0u, 0u);
    for (var i = 63u; i < 64u; i = i - 1u) {
        let word = select(n.x, n.y, i >= 32u);
        r = vec2<u32>((r.x << 1u) | ((word >> (i & 31u)) & 1u), (r.y << 1u) | (r.x >> 31u));
        if (!ult64(r, d)) {
            r = sub64(r, d);
            if (i >= 32u) { q.y = q.y | (1u << (i & 31u)); } else { q.x = q.x | (1u << i); }
        }
    }
    return QR64(q, r);
}
fn floordiv32(x: i32, y: i32) -> i32 {
    // Unsigned division of the magnitudes, then the sign: no signed division or remainder,
    // whose lowering gave off-by-one floors for negative operands on one Vulkan driver.
    if (y == 0) { return 0; }
    let ax = select(u32(x), ~u32(x) + 1u, x < 0);
    let ay = select(u32(y), ~u32(y) + 1u, y < 0);
    let q = ax / ay;
    if ((x < 0) == (y < 0)) { return bitcast<i32>(q); }
    return -bitcast<i32>(q + select(0u, 1u, ax - q * ay != 0u));
}
// Division by zero gives 0 (numpy's integer result); 32-bit operands take one hardware division.
fn fdiv64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    if (!nz64(b)) { return vec2<u32>(0u, 0u); }
    if (fits32(a) && fits32(b) && !(a.x == 0x80000000u && b.x == 0xffffffffu)) {
        return i64_from_i32(floordiv32(bitcast<i32>(a.x), bitcast<i32>(b.x)));
    }
    let qr = udivmod64(abs64(a), abs64(b));
    if (neg_p(a) == neg_p(b)) { return qr.q; }
    return neg64(add64(qr.q, b64(nz64(qr.r))));
}
fn fmod64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    if (!nz64(b)) { return vec2<u32>(0u, 0u); }
    let r = udivmod64(abs64(a), abs64(b)).r;
    return select(r, neg64(r), neg_p(a));
}
fn pow64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    // Square and multiply modulo 2**64. A negative exponent (an error in numpy): 1 and -1 keep
    // their magnitude (-1 by the exponent's parity), every other base gives 0.
    if (neg_p(b)) {
        if (all(a == vec2<u32>(1u, 0u))) { return a; }
        if (all(a == vec2<u32>(0xffffffffu, 0xffffffffu))) { return select(a, vec2<u32>(1u, 0u), (b.x & 1u) == 0u); }
        return vec2<u32>(0u, 0u);
    }
    var r = vec2<u32>(1u, 0u);
    var base = a;
    var e = b;
    loop {
        if (!nz64(e)) { break; }
        if ((e.x & 1u) != 0u) { r = mul64(r, base); }
        base = mul64(base, base);
        e = vec2<u32>((e.x >> 1u) | (e.y << 31u), e.y >> 1u);
    }
    return r;
}
// A result wrapped into a narrow dtype kept in a wider word: signed by a shift pair, unsigned by a mask.
fn wrap_s64(v: vec2<u32>, s: u32) -> vec2<u32> { return i64_from_i32(bitcast<i32>(v.x << s) >> s); }
fn wrap_u64(v: vec2<u32>, m: u32) -> vec2<u32> { return vec2<u32>(v.x & m, 0u); }
// Shifts by the low word of b; by 64 or more (or a negative count): 0, or the sign for >>.
fn shl64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let n = b.x & 63u;
    var r = a;
    if (n >= 32u) { r = vec2<u32>(0u, a.x << (n - 32u)); }
    else if (n > 0u) { r = vec2<u32>(a.x << n, (a.y << n) | (a.x >> (32u - n))); }
    return select(r, vec2<u32>(0u, 0u), b.y != 0u || b.x >= 64u);
}
fn sar64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let n = b.x & 63u;
    let hi = bitcast<i32>(a.y);
    let fill = select(0u, 0xffffffffu, hi < 0);
    var r = a;
    if (n >= 32u) { r = vec2<u32>(bitcast<u32>(hi >> (n - 32u)), fill); }
    else if (n > 0u) { r = vec2<u32>((a.x >> n) | (a.y << (32u - n)), bitcast<u32>(hi >> n)); }
    return select(r, vec2<u32>(fill, fill), b.y != 0u || b.x >= 64u);
}
fn mod64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    if (!nz64(b)) { return vec2<u32>(0u, 0u); }
    return sub64(a, mul64(b, fdiv64(a, b)));
}
"""

# op -> WGSL template over vec2<u32> operands {0}, {1}, {2}; {lo}/{hi} are clamp bounds.
INT_TEMPLATES = {
    "add": "add64({0}, {1})", "sub": "sub64({0}, {1})", "mul": "mul64({0}, {1})",
    "neg": "neg64({0})", "abs": "abs64({0})", "sign": "sign64({0})", "square": "mul64({0}, {0})",
    "maximum": "select({1}, {0}, lt64({1}, {0}))", "minimum": "select({1}, {0}, lt64({0}, {1}))",
    "relu": "select(vec2<u32>(0u), {0}, lt64(vec2<u32>(0u), {0}))",
    "clamp": "select(select({0}, {hi}, lt64({hi}, {0})), {lo}, lt64({0}, {lo}))",
    "equal": "b64(all({0} == {1}))", "not_equal": "b64(any({0} != {1}))",
    "less": "b64(lt64({0}, {1}))", "less_equal": "b64(!lt64({1}, {0}))",
    "greater": "b64(lt64({1}, {0}))", "greater_equal": "b64(!lt64({0}, {1}))",
    "where": "select({2}, {1}, nz64({0}))",
    "identity": "{0}", "stop_gradient": "{0}", "cast": "{0}", "floor": "{0}", "ceil": "{0}", "round": "{0}",
    "floor_divide": "fdiv64({0}, {1})", "mod": "mod64({0}, {1})", "fmod": "fmod64({0}, {1})", "trunc": "{0}",
    "logical_not": "b64(!nz64({0}))", "logical_and": "b64(nz64({0}) && nz64({1}))",
    "logical_or": "b64(nz64({0}) || nz64({1}))",
    "bitwise_and": "({0} & {1})", "bitwise_or": "({0} | {1})", "bitwise_xor": "({0} ^ {1})", "bitwise_not": "(~{0})",
    "bitwise_left_shift": "shl64({0}, {1})", "bitwise_right_shift": "sar64({0}, {1})",
    "pow": "pow64({0}, {1})",
}

#: WGSL of element {i} of {a} in each storage as exact (lo, hi) words, and of a word pair {v} stored back
#: (wrapped as the dtype does: int32 keeps the low word, numpy's modulo 2**32).
LOAD64 = {"i64": "{a}[{i}]", "i32": "i64_from_i32({a}[{i}])", "bool": "vec2<u32>({a}[{i}], 0u)",
           "f32": "i64_from_f32({a}[{i}])", "f16": "i64_from_f32(f32({a}[{i}]))"}
STORE64 = {"i64": "{v}", "i32": "bitcast<i32>({v}.x)", "bool": "select(0u, 1u, nz64({v}))",
            "f32": "i64_to_f32({v})", "f16": "f16(i64_to_f32({v}))"}
WORKGROUP = 256


def _i64_literal(value: int) -> str:
    w = int(value) & 0xFFFFFFFFFFFFFFFF
    return f"vec2<u32>({w & 0xFFFFFFFF}u, {w >> 32}u)"


def int_kernel_wgsl(op: str, in_storages: Sequence[str], out_storage: str, rank: int, kinds: Sequence[str],
                    bounds=(0, 0), wrap: Optional[Tuple[int, bool]] = None) -> str:
    """WGSL computing ``op`` exactly on 64-bit integers; inputs broadcast by strides.

    ``wrap=(bits, signed)`` wraps the result into that integer range before the store.

    >>> "wrap_s64(add64(a0, a1), 24u)" in int_kernel_wgsl("add", ["i32", "i32"], "i32", 1, ["contig", "contig"], wrap=(8, True))
    True
    """
    stores = [STORAGES[n] for n in list(in_storages) + [out_storage]]
    fields = [("n", "u32")] + [(f"d{j}", "u32") for j in range(rank)]
    for i, kind in enumerate(kinds):
        if kind != "contig" and kind != "splat":
            fields += [(f"s{i}_{j}", "u32") for j in range(rank)]
    lay = UniformLayout(fields)
    lines = [KernelBuilder.header(*stores, STORAGES["i64"]), I64_OPS_WGSL, lay.wgsl_struct("Params")]
    for i, st in enumerate(stores[:-1]):
        lines.append(f"@group(0) @binding({i}) var<storage, read> in{i}: {st.array};")
    k = len(kinds)
    lines += [f"@group(0) @binding({k}) var<storage, read_write> out: {stores[-1].array};",
              f"@group(0) @binding({k + 1}) var<uniform> p: Params;", LINEAR_WORKGROUP_WGSL,
              f"@compute @workgroup_size({WORKGROUP})",
              "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, "
              "@builtin(local_invocation_index) lid: u32) {",
              f"    let gid = linear_workgroup(wid, nwg) * {WORKGROUP}u + lid;",
              "    if (gid >= p.n) { return; }",
              "    var rem = gid;"]
    for j in reversed(range(rank)):
        lines += [f"    let c{j} = rem % p.d{j};", f"    rem = rem / p.d{j};"]
    args = []
    for i, kind in enumerate(kinds):
        idx = {"contig": "gid", "splat": "0u"}.get(kind) or " + ".join(["0u"] + [f"c{j} * p.s{i}_{j}" for j in range(rank)])
        lines.append(f"    let a{i} = {LOAD64[stores[i].name].format(a=f'in{i}', i=idx)};")
        args.append(f"a{i}")
    expr = INT_TEMPLATES[op].format(*args, lo=_i64_literal(bounds[0]), hi=_i64_literal(bounds[1]))
    if wrap is not None:
        bits, signed = wrap
        expr = f"wrap_s64({expr}, {32 - bits}u)" if signed else f"wrap_u64({expr}, {(1 << bits) - 1}u)"
    lines.append(f"    let r = {expr};")
    lines.append(f"    out[gid] = {STORE64[out_storage].format(v='r')};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def int_elementwise(kb: KernelBuilder, instr, inputs, out):
    """Exact integer kernel for one elementwise instruction (any rank, broadcasting)."""
    shape = tuple(out.shape)
    strides = [broadcast_strides(v.shape, shape) for v in inputs] + [contiguous_strides(shape)]
    cshape, cstrides = collapse_dims(shape, strides)
    kinds = [access_kind(cshape, st) for st in cstrides[:-1]]
    kinds = ["strided" if k not in ("contig", "splat") else k for k in kinds]
    bounds = (0, 0)
    if instr.op == "clamp":
        lo, hi = instr.attrs["min"], instr.attrs["max"]
        bounds = (math.ceil(lo) if lo is not None else -(1 << 63), math.floor(hi) if hi is not None else (1 << 63) - 1)
    src = int_kernel_wgsl(instr.op, [v.storage.name for v in inputs], out.storage.name, len(cshape), kinds, bounds,
                          wrap_bits(out.dtype))
    values = {"n": out.size, **{f"d{j}": d for j, d in enumerate(cshape)}}
    for i, kind in enumerate(kinds):
        if kind == "strided":
            values.update({f"s{i}_{j}": s for j, s in enumerate(cstrides[i])})
    fields = [("n", "u32")] + [(f"d{j}", "u32") for j in range(len(cshape))]
    for i, kind in enumerate(kinds):
        if kind == "strided":
            fields += [(f"s{i}_{j}", "u32") for j in range(len(cshape))]
    return [kb.launch(src, list(inputs) + [out], kb.groups(out.size, WORKGROUP), (UniformLayout(fields), values),
                      f"int {instr.op}")]


def float_elementwise(kb: KernelBuilder, instr, inputs, out):
    """One float-domain elementwise instruction as a (single-op) fused kernel."""
    from ..fusion import ew_step

    steps, arity = ew_step(instr)
    names = [f"x{i}" for i in range(len(inputs))]
    ops, prev = [], None
    for k, (op, lits) in enumerate(steps):
        operands = tuple(names[:arity]) if k == 0 else (prev,)
        prev = f"t{k}"
        ops.append(EwOp(prev, op, operands + tuple(lits)))
    spec = ElementwiseSpec(tuple(names), tuple(ops), (prev,))
    shape = tuple(out.shape)
    operands = [(v.buffer, broadcast_strides(v.shape, shape), 0) for v in inputs]
    storages = [v.storage.name for v in inputs] + [out.storage.name]
    return [kb.elementwise.launch(spec, shape, operands, [out.buffer], {}, storages)]


def elementwise(kb: KernelBuilder, instr, inputs, out):
    """Kernel for any core elementwise op: exact integers or f32 math, as the dtypes need."""
    from ..fusion import int_domain

    if int_domain(instr, [v.dtype for v in inputs]):
        if instr.op not in INT_TEMPLATES:
            raise KernelError.of(instr, inputs, "no integer kernel for this op")
        return int_elementwise(kb, instr, inputs, out)
    return float_elementwise(kb, instr, inputs, out)


_ONE_HOT = UniformLayout([("n", "u32"), ("classes", "u32")])


def one_hot(kb: KernelBuilder, instr, inputs, out):
    """``out[i, k] = (idx[i] == k)`` in the output dtype."""
    (idx,) = inputs
    src = kb.header(idx.storage, out.storage) + f"""
@group(0) @binding(0) var<storage, read> idx: {idx.storage.array};
@group(0) @binding(1) var<storage, read_write> out: {out.storage.array};
{_ONE_HOT.wgsl_struct("Params")}
@group(0) @binding(2) var<uniform> p: Params;
{LINEAR_WORKGROUP_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let gid = linear_workgroup(wid, nwg) * 256u + lid;
    if (gid >= p.n) {{ return; }}
    let k = i32(gid % p.classes);
    let v = {idx.storage.index("idx", "gid / p.classes")};
    {out.storage.store("out", "gid", "select(0.0, 1.0, v == k)")};
}}
"""
    values = {"n": out.size, "classes": int(instr.attrs["num_classes"])}
    return [kb.launch(src, [idx, out], kb.groups(out.size, 256), (_ONE_HOT, values), "one_hot")]


# Elementwise table rows get ``elementwise`` through the plugin's subscription (rows added
# later included, see :mod:`rustyasg.wgpu.plugin`).
KERNELS = {"one_hot": one_hot}
