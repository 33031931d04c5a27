"""Scans along one axis (cumsum, cumprod, logcumsumexp, running arg-max/min) and argsort.

Both work on the ``(A, R, B)`` view of the operand (outer, scanned, inner):

* a **scan** runs one thread per ``(a, b)`` that walks ``r`` (adjacent threads read adjacent
  memory when ``B > 1``); floats accumulate in f32, integers and bools exactly in 64-bit
  two's complement (the two 32-bit words), wrapping as the result dtype does;
* **argsort** gives every element its rank, the number of elements of its row that come
  before it (smaller, or equal and earlier: a stable order; NaN above every number), and
  writes its index at that rank: one thread per element, ``R`` comparisons each, no scratch.

Keys are compared exactly in their storage type (f32, i32, 64-bit words, u32 for bool).

Example::

    >>> "rank" in argsort_wgsl(STORAGES["f32"], STORAGES["i64"], descending=False)
    True
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.backend_api import SCAN_KINDS, normalize_axis

from .api import STORAGES, KernelBuilder, KernelError, LINEAR_WORKGROUP_WGSL, Storage, UniformLayout
from .elementwise import helpers_for

WORKGROUP = 256
LAYOUT = UniformLayout([("A", "u32"), ("R", "u32"), ("B", "u32")])

# storage -> (key type, load expression of element {i} of {a}, strict "less" of two keys, "is NaN")
_KEYS = {
    "f32": ("f32", "{a}[{i}]", "a < b", "(bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u"),
    "f16": ("f32", "f32({a}[{i}])", "a < b", "(bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u"),
    "i32": ("i32", "{a}[{i}]", "a < b", "false"),
    "bool": ("u32", "{a}[{i}]", "a < b", "false"),
    "i64": ("vec2<u32>", "{a}[{i}]",
            "bitcast<i32>(a.y) < bitcast<i32>(b.y) || (a.y == b.y && a.x < b.x)", "false"),
}


def _key_functions(storage: Storage) -> str:
    ktype, _, lt, nan = _KEYS[storage.name]
    return f"""
alias Key = {ktype};
fn key_lt(a: Key, b: Key) -> bool {{ return {lt}; }}
fn key_nan(a: Key) -> bool {{ return {nan}; }}
// NaN above every number; two NaN are equal.
fn total_lt(a: Key, b: Key) -> bool {{ return !key_nan(a) && (key_nan(b) || key_lt(a, b)); }}
fn total_eq(a: Key, b: Key) -> bool {{ return !total_lt(a, b) && !total_lt(b, a); }}
"""


def _load_key(storage: Storage, arr: str, idx: str) -> str:
    return _KEYS[storage.name][1].format(a=arr, i=idx)


def _prelude(kb_header: str, x: Storage, out: Storage) -> str:
    return f"""{kb_header}
@group(0) @binding(0) var<storage, read> x: {x.array};
@group(0) @binding(1) var<storage, read_write> out: {out.array};
{LAYOUT.wgsl_struct("Params")}
@group(0) @binding(2) var<uniform> p: Params;
{LINEAR_WORKGROUP_WGSL}
"""


def argsort_wgsl(x: Storage, out: Storage, descending: bool) -> str:
    """WGSL of the rank-and-scatter argsort (see the module docstring)."""
    from .storage import header

    before = "total_lt(xi, xj)" if descending else "total_lt(xj, xi)"
    return _prelude(header(x, out), x, out) + _key_functions(x) + f"""
@compute @workgroup_size({WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let t = linear_workgroup(wid, nwg) * {WORKGROUP}u + lid;
    if (t >= p.A * p.R * p.B) {{ return; }}
    let b = t % p.B;
    let i = (t / p.B) % p.R;
    let a = t / (p.B * p.R);
    let base = a * p.R * p.B + b;
    let xi = {_load_key(x, "x", "t")};
    var rank = 0u;
    for (var j = 0u; j < p.R; j = j + 1u) {{
        let xj = {_load_key(x, "x", "base + j * p.B")};
        if ({before} || (j < i && total_eq(xj, xi))) {{ rank = rank + 1u; }}
    }}
    {out.store_index("out", "base + rank * p.B", "i32(i)")};
}}
"""


# kind -> the step over the running value ``acc`` and the new element ``v`` (float / exact int forms)
_FLOAT_STEPS = {"sum": "acc = acc + v;", "prod": "acc = acc * v;", "logaddexp": "acc = logaddexp_f32(acc, v);"}
_INT_STEPS = {"sum": "acc = add64(acc, v);", "prod": "acc = mul64(acc, v);"}


def scan_wgsl(kind: str, x: Storage, out: Storage) -> str:
    """WGSL of one scan kind over ``x``'s storage, writing ``out``'s."""
    from .storage import header

    head = header(x, out)
    if kind in ("argmax", "argmin"):
        # PyTorch's rule: a later tie or a NaN takes over; after a NaN only a NaN does.
        order = "key_lt(v, acc)" if kind == "argmax" else "key_lt(acc, v)"
        body = (f"let v = {_load_key(x, 'x', 'i')};\n"
                f"        if ((!{order} && !key_nan(v) && !key_nan(acc)) || key_nan(v)) {{ acc = v; k = r; }}\n"
                f"        {out.store_index('out', 'i', 'i32(k)')};")
        init = f"var acc = {_load_key(x, 'x', 'base')};\n    var k = 0u;\n    {out.store_index('out', 'base', '0')};"
        extra = _key_functions(x)
    elif x.is_float:
        body = f"let v = {x.load('x', 'i')};\n        {_FLOAT_STEPS[kind]}\n        {out.store('out', 'i', 'acc')};"
        init = f"var acc = {x.load('x', 'base')};\n    {out.store('out', 'base', 'acc')};"
        extra = helpers_for(["logaddexp"], vec=False) if kind == "logaddexp" else ""
    else:  # exact two's-complement 64-bit arithmetic on (lo, hi) words, wrapped on store as the dtype does
        from .ew_ops import I64_OPS_WGSL, LOAD64, STORE64

        head = header(x, out, STORAGES["i64"])
        load, store = LOAD64[x.name], STORE64[out.name]
        body = (f"let v = {load.format(a='x', i='i')};\n        {_INT_STEPS[kind]}\n"
                f"        out[i] = {store.format(v='acc')};")
        init = f"var acc = {load.format(a='x', i='base')};\n    out[base] = {store.format(v='acc')};"
        extra = I64_OPS_WGSL
    return _prelude(head, x, out) + extra + f"""
@compute @workgroup_size({WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let t = linear_workgroup(wid, nwg) * {WORKGROUP}u + lid;
    if (t >= p.A * p.B) {{ return; }}
    let base = (t / p.B) * p.R * p.B + t % p.B;
    {init}
    for (var r = 1u; r < p.R; r = r + 1u) {{
        let i = base + r * p.B;
        {body}
    }}
}}
"""


def _layout(shape, axis):
    if not shape:
        return 1, 1, 1
    ax = normalize_axis(axis, len(shape))
    return int(np.prod(shape[:ax], dtype=np.int64)), int(shape[ax]), int(np.prod(shape[ax + 1:], dtype=np.int64))


def scan(kb: KernelBuilder, instr, inputs, out):
    """Kernel for the core's scan ops (:data:`SCAN_KINDS`)."""
    (x,) = inputs
    kind = SCAN_KINDS[instr.op]
    if kind == "logaddexp" and not x.storage.is_float:
        raise KernelError.of(instr, inputs, "logcumsumexp needs a floating operand")
    A, R, B = _layout(tuple(x.shape), instr.attrs["axis"])
    if A * R * B == 0:
        return []
    src = scan_wgsl(kind, x.storage, out.storage)
    return [kb.launch(src, [x, out], kb.groups(A * B, WORKGROUP), (LAYOUT, {"A": A, "R": R, "B": B}),
                      f"scan {kind}")]


def argsort(kb: KernelBuilder, instr, inputs, out):
    """Kernel for ``argsort`` (stable; NaN above every number)."""
    (x,) = inputs
    A, R, B = _layout(tuple(x.shape), instr.attrs["axis"])
    if A * R * B == 0:
        return []
    src = argsort_wgsl(x.storage, out.storage, bool(instr.attrs["descending"]))
    return [kb.launch(src, [x, out], kb.groups(A * R * B, WORKGROUP), (LAYOUT, {"A": A, "R": R, "B": B}),
                      "argsort")]


KERNELS = {**{op: scan for op in SCAN_KINDS}, "argsort": argsort}
__all__ = ["KERNELS", "scan_wgsl", "argsort_wgsl", "STORAGES"]
