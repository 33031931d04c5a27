"""Kernels for the movement ops, built from two generators plus the indexing family.

* :func:`copy_view_launch` — ``dst[do + sum(c*ds)] = src[so + sum(c*ss)]`` over a shape:
  any strided view to any strided view (signed strides), typed by the storage. Transpose,
  slice, flip, broadcast_to, concat, pad and slice_grad are each a choice of strides
  and offsets (plus :func:`fill_launch` for the padding / zero background).
* ``take`` / ``gather`` read through an index array (negative indices wrap, as numpy).
* ``take_grad`` / ``scatter_add`` add into the output with a compare-and-swap loop on
  the f32 bits (WGSL has only integer atomics); other float storages accumulate in an
  f32 scratch buffer and are converted at the end.

Example::

    >>> "fn main" in copy_view_wgsl(STORAGES["f32"], 3)
    True
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from rustyasg.core.shapes import normalize_axis

from .api import STORAGES, KernelBuilder, KernelError, LINEAR_WORKGROUP_WGSL, Storage, TensorView, UniformLayout
from .elementwise import ElementwiseSpec, broadcast_strides, collapse_dims, contiguous_strides
from .ew_ops import I64_OPS_WGSL, LOAD64

WG = 256
MAIN = ("@compute @workgroup_size(256)\n"
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
        "        @builtin(local_invocation_index) lid: u32) {\n"
        "    let gid = linear_workgroup(wid, nwg) * 256u + lid;\n"
        "    if (gid >= p.n) { return; }\n")


def _copy_layout(rank: int) -> UniformLayout:
    return UniformLayout([("n", "u32"), ("so", "i32"), ("do_", "i32")] + [(f"d{j}", "u32") for j in range(rank)]
                         + [(f"ss{j}", "i32") for j in range(rank)] + [(f"ds{j}", "i32") for j in range(rank)])


def copy_view_wgsl(st: Storage, rank: int, elem: str = "") -> str:
    """WGSL of the strided copy for one storage and rank (``elem`` overrides the element type:
    ``vec4<u32>`` moves four 4-byte elements per thread)."""
    lay = _copy_layout(rank)
    array = f"array<{elem}>" if elem else st.array
    body = ["    var rem = gid;", "    var si = p.so;", "    var di = p.do_;"]
    for j in reversed(range(rank)):
        body += [f"    let c{j} = i32(rem % p.d{j});", f"    rem = rem / p.d{j};",
                 f"    si = si + c{j} * p.ss{j};", f"    di = di + c{j} * p.ds{j};"]
    return (KernelBuilder.header(st) + lay.wgsl_struct("Params") + "\n"
            f"@group(0) @binding(0) var<storage, read> src: {array};\n"
            f"@group(0) @binding(1) var<storage, read_write> dst: {array};\n"
            "@group(0) @binding(2) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + MAIN
            + "\n".join(body) + "\n    dst[u32(di)] = src[u32(si)];\n}\n")


def copy_view_launch(kb: KernelBuilder, src: TensorView, dst_buffer, shape: Sequence[int], src_off: int,
                     src_strides: Sequence[int], dst_off: int, dst_strides: Sequence[int], label: str = "copy"):
    """Launch copying the ``shape``-shaped view of ``src`` into a view of ``dst_buffer``."""
    shape = tuple(int(d) for d in shape)
    cshape, (ss, ds) = collapse_dims(shape, [tuple(src_strides), tuple(dst_strides)])
    n = int(np.prod(shape, dtype=np.int64))
    if not cshape:
        cshape, ss, ds = (1,), (0,), (0,)
    elem = ""
    # Four 4-byte elements per thread when the inner run is contiguous on both sides and
    # everything else is a multiple of 4: a quarter of the index arithmetic and 16-byte accesses.
    if (src.storage.itemsize == 4 and cshape[-1] % 4 == 0 and ss[-1] == 1 and ds[-1] == 1
            and all(v % 4 == 0 for v in list(ss[:-1]) + list(ds[:-1]) + [src_off, dst_off])):
        elem = "vec4<u32>"
        cshape = cshape[:-1] + (cshape[-1] // 4,)
        ss = tuple(v // 4 for v in ss[:-1]) + (1,)
        ds = tuple(v // 4 for v in ds[:-1]) + (1,)
        src_off, dst_off, n = src_off // 4, dst_off // 4, n // 4
    rank = len(cshape)
    values = {"n": n, "so": int(src_off), "do_": int(dst_off)}
    values.update({f"d{j}": cshape[j] for j in range(rank)})
    values.update({f"ss{j}": int(ss[j]) for j in range(rank)})
    values.update({f"ds{j}": int(ds[j]) for j in range(rank)})
    return kb.launch(copy_view_wgsl(src.storage, rank, elem), [src.buffer, dst_buffer], kb.groups(n, WG),
                     (_copy_layout(rank), values), label)


_FILL = UniformLayout([("n", "u32")])


def fill_launch(kb: KernelBuilder, out: TensorView, value: float, label: str = "fill"):
    """Launch writing ``value`` into every element of ``out`` (4 per thread when they fit)."""
    st = out.storage
    n, array, lit = out.size, st.array, st.literal(value)
    if st.itemsize == 4 and n % 4 == 0:
        n, array, lit = n // 4, f"array<vec4<{st.elem}>>", f"vec4<{st.elem}>({lit})"
    src = (KernelBuilder.header(st) + _FILL.wgsl_struct("Params") + "\n"
           f"@group(0) @binding(0) var<storage, read_write> dst: {array};\n"
           "@group(0) @binding(1) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + MAIN
           + f"    dst[gid] = {lit};\n}}\n")
    return kb.launch(src, [out.buffer], kb.groups(n, WG), (_FILL, {"n": n}), label)


# --- ops over views ------------------------------------------------------------------------
def _contig(shape):
    return contiguous_strides(shape)


def reshape(kb, instr, inputs, out):
    """A copy (the executor aliases reshapes instead; this serves direct callers)."""
    return [copy_view_launch(kb, inputs[0], out.buffer, (out.size,), 0, (1,), 0, (1,), "reshape")]


def transpose(kb, instr, inputs, out):
    (x,) = inputs
    axes = [a % x.ndim for a in instr.attrs["axes"]]
    st = _contig(x.shape)
    return [copy_view_launch(kb, x, out.buffer, out.shape, 0, [st[a] for a in axes], 0, _contig(out.shape),
                             "transpose")]


def _resolved(shape, starts, stops, steps):
    return [slice(a, b, s).indices(d) for d, a, b, s in zip(shape, starts, stops, steps)]


def slice_(kb, instr, inputs, out):
    (x,) = inputs
    st = _contig(x.shape)
    res = _resolved(x.shape, instr.attrs["starts"], instr.attrs["stops"], instr.attrs["steps"])
    off = sum(r[0] * s for r, s in zip(res, st))
    return [copy_view_launch(kb, x, out.buffer, out.shape, off, [r[2] * s for r, s in zip(res, st)], 0,
                             _contig(out.shape), "slice")]


def slice_grad(kb, instr, inputs, out):
    (g,) = inputs
    st = _contig(out.shape)
    res = _resolved(out.shape, instr.attrs["starts"], instr.attrs["stops"], instr.attrs["steps"])
    off = sum(r[0] * s for r, s in zip(res, st))
    launches = [fill_launch(kb, out, 0.0, "slice_grad zeros")]
    if g.size:
        launches.append(copy_view_launch(kb, g, out.buffer, g.shape, 0, _contig(g.shape), off,
                                         [r[2] * s for r, s in zip(res, st)], "slice_grad"))
    return launches


def flip(kb, instr, inputs, out):
    (x,) = inputs
    st = list(_contig(x.shape))
    axes = {a % x.ndim for a in instr.attrs["axes"]}
    off = sum((x.shape[a] - 1) * st[a] for a in axes if x.shape[a] > 0)
    strides = [-s if j in axes else s for j, s in enumerate(st)]
    return [copy_view_launch(kb, x, out.buffer, out.shape, off, strides, 0, _contig(out.shape), "flip")]


def broadcast_to(kb, instr, inputs, out):
    (x,) = inputs
    return [copy_view_launch(kb, x, out.buffer, out.shape, 0, broadcast_strides(x.shape, out.shape), 0,
                             _contig(out.shape), "broadcast_to")]


def concat(kb, instr, inputs, out):
    ax = normalize_axis(instr.attrs["axis"], out.ndim)
    ost = _contig(out.shape)
    launches, offset = [], 0
    for x in inputs:
        if x.size:
            launches.append(copy_view_launch(kb, x, out.buffer, x.shape, 0, _contig(x.shape), offset * ost[ax], ost,
                                             "concat"))
        offset += x.shape[ax]
    return launches


def pad(kb, instr, inputs, out):
    (x,) = inputs
    pw = instr.attrs["pad_width"]
    launches = [fill_launch(kb, out, instr.attrs["value"], "pad value")]
    xs, os_ = _contig(x.shape), _contig(out.shape)
    so = do = 0
    shape = []
    for j, d in enumerate(x.shape):
        before, after = pw[2 * j], pw[2 * j + 1]
        lo = max(0, -before)
        n = d - lo - max(0, -after)
        if n <= 0:
            return launches
        shape.append(n)
        so += lo * xs[j]
        do += max(0, before) * os_[j]
    launches.append(copy_view_launch(kb, x, out.buffer, shape, so, xs, do, os_, "pad"))
    return launches


# --- indexing -----------------------------------------------------------------------------------
_TAKE = UniformLayout([("n", "u32"), ("J", "u32"), ("K", "u32"), ("N", "u32")])


def _wrap_index(expr: str, n: str) -> str:
    """WGSL: index expression wrapped like numpy (negative from the end), clamped into range."""
    return f"u32(clamp(select({expr}, {expr} + i32({n}), {expr} < 0), 0, i32({n}) - 1))"


def take(kb, instr, inputs, out):
    """``out[o, j, k] = x[o, idx[j], k]`` (``np.take`` along ``axis``)."""
    x, idx = inputs
    ax = normalize_axis(instr.attrs["axis"], x.ndim)
    N = x.shape[ax]
    K = int(np.prod(x.shape[ax + 1:], dtype=np.int64))
    J = idx.size
    if N == 0 and out.size:
        raise KernelError.of(instr, inputs, "take from an empty axis")
    src = (kb.header(x.storage, idx.storage) + _TAKE.wgsl_struct("Params") + "\n"
           f"@group(0) @binding(0) var<storage, read> xs: {x.storage.array};\n"
           f"@group(0) @binding(1) var<storage, read> ids: {idx.storage.array};\n"
           f"@group(0) @binding(2) var<storage, read_write> dst: {out.storage.array};\n"
           "@group(0) @binding(3) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + MAIN
           + "    let k = gid % p.K;\n    let t = gid / p.K;\n    let j = t % p.J;\n    let o = t / p.J;\n"
           + f"    let raw = {idx.storage.index('ids', 'j')};\n"
           + f"    let r = {_wrap_index('raw', 'p.N')};\n"
           + "    dst[gid] = xs[(o * p.N + r) * p.K + k];\n}\n")
    values = {"n": out.size, "J": max(J, 1), "K": max(K, 1), "N": max(N, 1)}
    return [kb.launch(src, [x, idx, out], kb.groups(out.size, WG), (_TAKE, values), "take")]


ATOMIC_ADD_WGSL = """
fn atomic_add_f32(i: u32, v: f32) {
    var old = atomicLoad(&acc[i]);
    loop {
        let r = atomicCompareExchangeWeak(&acc[i], old, bitcast<u32>(bitcast<f32>(old) + v));
        if (r.exchanged) { break; }
        old = r.old_value;
    }
}
"""


def _accumulator(kb: KernelBuilder, out: TensorView) -> Tuple[TensorView, List]:
    """An f32 view to accumulate into (``out`` itself when it is f32) and the launches that
    convert it back into ``out`` afterwards."""
    if out.storage.name == "f32":
        return out, []
    acc = TensorView(kb.scratch(out.size * 4, "f32 accumulator"), out.shape, np.dtype(np.float32), STORAGES["f32"])
    spec = ElementwiseSpec(("a",), (), ("a",))
    conv = kb.elementwise.launch(spec, out.shape, [(acc.buffer, _contig(out.shape), 0)], [out.buffer], {},
                                 ["f32", out.storage.name])
    return acc, [conv]


def _as_f32_copy(kb, x: TensorView, acc: TensorView):
    """Launch copying ``x`` (any float storage) into the f32 accumulator ``acc``."""
    spec = ElementwiseSpec(("a",), (), ("a",))
    return kb.elementwise.launch(spec, x.shape, [(x.buffer, _contig(x.shape), 0)], [acc.buffer], {},
                                 [x.storage.name, "f32"])


def atomic_add_words_wgsl(storage: Storage) -> str:
    """WGSL ``atomic_add_words(t, v)``: add the (lo, hi) words ``v`` into integer element ``t`` of ``acc``
    exactly, wrapping as the dtype does: an int32's one word, or an int64's low words whose carry goes
    into its high word (exact modulo 2**64, in any order).

    Example::

        >>> "atomicAdd(&acc[2u * t + 1u]" in atomic_add_words_wgsl(STORAGES["i64"])
        True
    """
    if storage.name == "i32":
        return "fn atomic_add_words(t: u32, v: vec2<u32>) { atomicAdd(&acc[t], v.x); }\n"
    return """
fn atomic_add_words(t: u32, v: vec2<u32>) {
    let old = atomicAdd(&acc[2u * t], v.x);
    atomicAdd(&acc[2u * t + 1u], v.y + select(0u, 1u, old + v.x < old));
}
"""


def take_grad(kb, instr, inputs, out):
    """Scatter-add rows of ``g`` into ``size`` slots: zeros, then atomic adds (exact for integers)."""
    g, idx = inputs
    exact = out.storage.name in ("i32", "i64")
    nd_out = out.ndim
    ax = normalize_axis(instr.attrs["axis"], nd_out)
    size = out.shape[ax]
    K = int(np.prod(out.shape[ax + 1:], dtype=np.int64))
    J = idx.size
    acc, finish = (out, []) if exact else _accumulator(kb, out)
    launches = [fill_launch(kb, acc, 0.0, "take_grad zeros")]
    if g.size:
        head, add, value = kb.header(g.storage, idx.storage), ATOMIC_ADD_WGSL, g.storage.load("gs", "gid")
        if exact:
            head = kb.header(g.storage, idx.storage, STORAGES["i64"]) + I64_OPS_WGSL
            add, value = atomic_add_words_wgsl(out.storage), LOAD64[g.storage.name].format(a="gs", i="gid")
        src = (head + _TAKE.wgsl_struct("Params") + "\n"
               f"@group(0) @binding(0) var<storage, read> gs: {g.storage.array};\n"
               f"@group(0) @binding(1) var<storage, read> ids: {idx.storage.array};\n"
               "@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;\n"
               "@group(0) @binding(3) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + add + MAIN
               + "    let k = gid % p.K;\n    let t = gid / p.K;\n    let j = t % p.J;\n    let o = t / p.J;\n"
               + f"    let raw = {idx.storage.index('ids', 'j')};\n"
               + f"    let r = {_wrap_index('raw', 'p.N')};\n"
               + f"    atomic_add_{'words' if exact else 'f32'}((o * p.N + r) * p.K + k, {value});\n}}\n")
        values = {"n": g.size, "J": max(J, 1), "K": max(K, 1), "N": max(size, 1)}
        launches.append(kb.launch(src, [g, idx, acc], kb.groups(g.size, WG), (_TAKE, values), "take_grad"))
    return launches + finish


def _index_layout(rank: int) -> UniformLayout:
    return UniformLayout([("n", "u32"), ("N", "u32")] + [(f"d{j}", "u32") for j in range(rank)]
                         + [(f"s{j}", "u32") for j in range(rank)])


def _indexed_offset(rank: int, ax: int) -> List[str]:
    """WGSL lines computing ``base`` = offset of gid's coordinates (idx shape) with the axis left out."""
    body = ["    var rem = gid;", "    var base = 0u;"]
    for j in reversed(range(rank)):
        body += [f"    let c{j} = rem % p.d{j};", f"    rem = rem / p.d{j};"]
        if j != ax:
            body.append(f"    base = base + c{j} * p.s{j};")
    return body


def _index_values(idx: TensorView, strides, ax: int, N: int):
    rank = idx.ndim
    vals = {"n": idx.size, "N": max(N, 1)}
    vals.update({f"d{j}": idx.shape[j] for j in range(rank)})
    vals.update({f"s{j}": strides[j] for j in range(rank)})
    return vals


def gather(kb, instr, inputs, out):
    """``torch.gather``: ``out[c] = x[c with c[axis] = idx[c]]``."""
    x, idx = inputs
    ax = normalize_axis(instr.attrs["axis"], x.ndim)
    rank = idx.ndim
    lay = _index_layout(rank)
    src = (kb.header(x.storage, idx.storage) + lay.wgsl_struct("Params") + "\n"
           f"@group(0) @binding(0) var<storage, read> xs: {x.storage.array};\n"
           f"@group(0) @binding(1) var<storage, read> ids: {idx.storage.array};\n"
           f"@group(0) @binding(2) var<storage, read_write> dst: {out.storage.array};\n"
           "@group(0) @binding(3) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + MAIN
           + "\n".join(_indexed_offset(rank, ax)) + "\n"
           + f"    let raw = {idx.storage.index('ids', 'gid')};\n"
           + f"    dst[gid] = xs[base + {_wrap_index('raw', 'p.N')} * p.s{ax}];\n}}\n")
    values = _index_values(idx, _contig(x.shape), ax, x.shape[ax])
    return [kb.launch(src, [x, idx, out], kb.groups(out.size, WG), (lay, values), "gather")]


def scatter_add(kb, instr, inputs, out):
    """``torch.scatter_add`` of floats: a copy of ``x`` plus ``src`` added at ``idx`` along ``axis``
    (registered through :mod:`.scatter_ops`, which sends integers to its exact kernel)."""
    x, idx, s = inputs
    ax = normalize_axis(instr.attrs["axis"], x.ndim)
    rank = idx.ndim
    acc, finish = _accumulator(kb, out)
    launches = [_as_f32_copy(kb, x, acc)]
    if idx.size:
        lay = _index_layout(rank)
        src = (kb.header(s.storage, idx.storage) + lay.wgsl_struct("Params") + "\n"
               f"@group(0) @binding(0) var<storage, read> ss: {s.storage.array};\n"
               f"@group(0) @binding(1) var<storage, read> ids: {idx.storage.array};\n"
               "@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;\n"
               "@group(0) @binding(3) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + ATOMIC_ADD_WGSL + MAIN
               + "\n".join(_indexed_offset(rank, ax)) + "\n"
               + f"    let raw = {idx.storage.index('ids', 'gid')};\n"
               + f"    atomic_add_f32(base + {_wrap_index('raw', 'p.N')} * p.s{ax}, {s.storage.load('ss', 'gid')});\n}}\n")
        values = _index_values(idx, _contig(x.shape), ax, x.shape[ax])
        launches.append(kb.launch(src, [s, idx, acc], kb.groups(idx.size, WG), (lay, values), "scatter_add"))
    return launches + finish


# --- sources ----------------------------------------------------------------------------------------
def zeros_like(kb, instr, inputs, out):
    return [fill_launch(kb, out, 0.0, "zeros_like")]


def ones_like(kb, instr, inputs, out):
    return [fill_launch(kb, out, 1.0, "ones_like")]


def dim_size(kb, instr, inputs, out):
    shape = inputs[0].shape
    axes = range(len(shape)) if instr.attrs["axis"] is None else [a % max(len(shape), 1) for a in instr.attrs["axis"]]
    return [fill_launch(kb, out, float(np.prod([shape[a] for a in axes])), "dim_size")]


KERNELS = {
    "reshape": reshape, "transpose": transpose, "slice": slice_, "slice_grad": slice_grad, "flip": flip,
    "broadcast_to": broadcast_to, "concat": concat, "pad": pad, "take": take, "take_grad": take_grad,
    "gather": gather, "zeros_like": zeros_like, "ones_like": ones_like,
    "dim_size": dim_size,
}
