"""WGSL kernels of ``scatter_reduce`` (assign, sum, prod, mean, amax, amin; ``include_self``).

One thread per ``src`` element, so the work is linear in the index size whatever the
scatter axis (a thread per output scanning the index would be quadratic for a
segment reduction). WGSL has integer atomics only, so values are combined in an f32
accumulator (``out`` itself when it is f32) with a compare-and-swap loop on the bits:

1. the accumulator starts as a copy of ``x``;
2. without ``include_self``, every target first gets the reduction's identity (0, 1, -inf, +inf);
3. each ``src`` value is combined into its target (add, multiply, max or min; NaN propagates);
   ``mean`` also counts hits, and a last pass divides by the count (+1 with ``x``'s value);
4. ``assign`` is deterministic: an ``atomicMax`` of the flat index position marks the last
   writer of each target (the later position wins, as on the cpu backend), and only it writes.

Integer results are exact and wrap as the dtype does (numpy's, torch's): the accumulator is the
output itself, its (lo, hi) words combined by ``add64``/``mul64``/``lt64`` in a compare-and-swap
loop on the one word of an int32; a ``sum``/``mean`` adds atomically (an int64's low words carry
into its high word: :func:`atomic_add_words_wgsl`), an int64 ``amax``/``amin`` first agrees on the high word, then
combines the low words of the values that have it; an integer ``mean`` floors. An int64
``prod`` needs a 64-bit atomic WGSL lacks, and is refused.

An index outside the axis is clamped after wrapping negatives, as in ``take``/``gather``.

Example::

    >>> "atomicCompareExchangeWeak" in _combine_wgsl("amax")
    True
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.shapes import normalize_axis

from .api import STORAGES, KernelError, LINEAR_WORKGROUP_WGSL, TensorView, UniformLayout
from .elementwise import contiguous_strides
from .ew_ops import I64_OPS_WGSL, INT_TEMPLATES, LOAD64
from .movement_ops import (MAIN, WG, _accumulator, _as_f32_copy, _contig, _index_layout, _index_values,
                           _indexed_offset, _wrap_index, atomic_add_words_wgsl, copy_view_launch, fill_launch)
from .movement_ops import scatter_add as float_scatter_add

_IDENTITY = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}
_COMBINE = {"sum": "o + v", "mean": "o + v", "prod": "o * v",
            "amax": "select(o, v, is_nan(v) || v > o)", "amin": "select(o, v, is_nan(v) || v < o)"}
# A bit test: the shader compiler may assume ``v != v`` is false.
_IS_NAN = "fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }\n"


def _combine_wgsl(reduce: str) -> str:
    """``combine(i, v)``: acc[i] = reduce(acc[i], v), atomically on the f32 bits."""
    return _IS_NAN + f"""
fn combine(i: u32, v: f32) {{
    var old = atomicLoad(&acc[i]);
    loop {{
        let o = bitcast<f32>(old);
        let r = atomicCompareExchangeWeak(&acc[i], old, bitcast<u32>({_COMBINE[reduce]}));
        if (r.exchanged) {{ break; }}
        old = r.old_value;
    }}
}}
"""


#: integer reduce -> the (lo, hi) word op of :data:`INT_TEMPLATES` combining the target ``{0}`` with ``{1}``
_INT_COMBINE = {"sum": "add", "mean": "add", "prod": "mul", "amax": "maximum", "amin": "minimum"}
_INT_IDENTITY = {"sum": 0, "mean": 0, "prod": 1, "amax": "min", "amin": "max"}  # the dtype's bounds for amax/amin


def _identity_words(reduce: str, storage) -> list:
    """The 32-bit words of ``reduce``'s identity as ``storage`` keeps it (one for i32, lo and hi for i64).

    Example::

        >>> _identity_words("amax", STORAGES["i32"]), _identity_words("amin", STORAGES["i64"])
        ([2147483648], [4294967295, 2147483647])
    """
    bits = 32 if storage.name == "i32" else 64
    value = _INT_IDENTITY[reduce]
    if isinstance(value, str):
        value = -2**(bits - 1) if value == "min" else 2**(bits - 1) - 1
    w = value & ((1 << bits) - 1)
    return [w] if bits == 32 else [w & 0xFFFFFFFF, w >> 32]


def _exact_i32_combine_wgsl(reduce: str) -> str:
    """``combine(t, v)`` on an int32 target word: the 64-bit op on the sign-extended word, wrapped."""
    op = INT_TEMPLATES[_INT_COMBINE[reduce]].format("i64_from_i32(bitcast<i32>(old))", "v")
    return f"""
fn combine(t: u32, v: vec2<u32>) {{
    var old = atomicLoad(&acc[t]);
    loop {{
        let r = atomicCompareExchangeWeak(&acc[t], old, ({op}).x);
        if (r.exchanged) {{ break; }}
        old = r.old_value;
    }}
}}
"""


#: Floor division of an int64 by a positive count (an unsigned long division of the magnitude).
_FLOORDIV64_WGSL = """
fn floordiv64_u32(a: vec2<u32>, c: u32) -> vec2<u32> {
    let m = abs64(a);
    var q = vec2<u32>(0u, 0u);
    var r = 0u;
    for (var i = 63u; i < 64u; i = i - 1u) {
        let bit = select((m.x >> i) & 1u, (m.y >> (i - 32u)) & 1u, i >= 32u);
        let wide = (r >> 31u) != 0u;  // 2r + bit would not fit: it is >= c anyway
        r = (r << 1u) | bit;
        if (wide || r >= c) {
            r = r - c;
            if (i >= 32u) { q.y = q.y | (1u << (i - 32u)); } else { q.x = q.x | (1u << i); }
        }
    }
    if (neg_p(a)) {
        q = neg64(q);
        if (r != 0u) { q = sub64(q, vec2<u32>(1u, 0u)); }
    }
    return q;
}
"""


def _per_src(kb, s, idx, acc, aux, rank, ax, body: str, helpers: str, label: str, values, exact: bool = False):
    """A launch over the ``src`` elements; ``body`` sees ``t`` (the target), ``v`` (the value: f32, or
    (lo, hi) words when ``exact``), ``gid``."""
    lay = _index_layout(rank)
    bindings = [f"@group(0) @binding(0) var<storage, read> ss: {s.storage.array};\n",
                f"@group(0) @binding(1) var<storage, read> ids: {idx.storage.array};\n"]
    resources = [s, idx]
    # Only the buffers the shader uses are bound (the pipeline layout leaves unused ones out).
    for name, view in (("acc", acc), ("aux", aux)):
        if view is not None and f"{name}[" in body + helpers:
            bindings.append(f"@group(0) @binding({len(resources)}) var<storage, read_write> {name}: "
                            "array<atomic<u32>>;\n")
            resources.append(view)
    head = (kb.header(s.storage, idx.storage, STORAGES["i64"]) + I64_OPS_WGSL if exact
            else kb.header(s.storage, idx.storage))
    load = LOAD64[s.storage.name].format(a="ss", i="gid") if exact else s.storage.load("ss", "gid")
    src = (head + lay.wgsl_struct("Params") + "\n" + "".join(bindings)
           + f"@group(0) @binding({len(resources)}) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + helpers
           + MAIN + "\n".join(_indexed_offset(rank, ax)) + "\n"
           + f"    let raw = {idx.storage.index('ids', 'gid')};\n"
           + f"    let t = base + {_wrap_index('raw', 'p.N')} * p.s{ax};\n"
           + f"    let v = {load};\n" + body + "}\n")
    return kb.launch(src, resources, kb.groups(idx.size, WG), (lay, values), label)


_FINISH = UniformLayout([("n", "u32"), ("extra", "u32")])


def _mean_finish(kb, acc: TensorView, cnt: TensorView, include_self: bool, floor: bool):
    div = "floor(a / f32(c))" if floor else "a / f32(c)"
    src = (_FINISH.wgsl_struct("Params") + "\n"
           "@group(0) @binding(0) var<storage, read_write> acc: array<atomic<u32>>;\n"
           "@group(0) @binding(1) var<storage, read_write> aux: array<atomic<u32>>;\n"
           "@group(0) @binding(2) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + MAIN
           + "    let hits = atomicLoad(&aux[gid]);\n"
           + "    if (hits == 0u) { return; }\n"
           + "    let c = hits + p.extra;\n"
           + "    let a = bitcast<f32>(atomicLoad(&acc[gid]));\n"
           + f"    atomicStore(&acc[gid], bitcast<u32>({div}));\n}}\n")
    return kb.launch(src, [acc, cnt], kb.groups(acc.size, WG), (_FINISH, {"n": acc.size, "extra": int(include_self)}),
                     "scatter_reduce.mean")


def _exact_mean_finish(kb, acc: TensorView, cnt: TensorView, include_self: bool):
    """Floor-divide each hit integer target by its count (+1 with ``x``'s value)."""
    wide = acc.storage.name == "i64"
    load = ("vec2<u32>(atomicLoad(&acc[2u * gid]), atomicLoad(&acc[2u * gid + 1u]))" if wide
            else "i64_from_i32(bitcast<i32>(atomicLoad(&acc[gid])))")
    store = ("    atomicStore(&acc[2u * gid], q.x);\n    atomicStore(&acc[2u * gid + 1u], q.y);\n" if wide
             else "    atomicStore(&acc[gid], q.x);\n")
    src = (kb.header(STORAGES["i64"]) + I64_OPS_WGSL + _FLOORDIV64_WGSL + _FINISH.wgsl_struct("Params") + "\n"
           "@group(0) @binding(0) var<storage, read_write> acc: array<atomic<u32>>;\n"
           "@group(0) @binding(1) var<storage, read_write> aux: array<atomic<u32>>;\n"
           "@group(0) @binding(2) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + MAIN
           + "    let hits = atomicLoad(&aux[gid]);\n"
           + "    if (hits == 0u) { return; }\n"
           + f"    let q = floordiv64_u32({load}, hits + p.extra);\n" + store + "}\n")
    return kb.launch(src, [acc, cnt], kb.groups(acc.size, WG), (_FINISH, {"n": acc.size, "extra": int(include_self)}),
                     "scatter_reduce.mean")


def _exact_scatter(kb, instr, inputs, out, reduce: str, include_self: bool, idx, s, rank, ax, values):
    """Launches of an integer ``scatter_reduce`` into ``out`` (already a copy of ``x``), exactly."""
    wide = out.storage.name == "i64"
    if wide and reduce == "prod":
        raise KernelError.of(instr, inputs, "an int64 scatter_reduce 'prod' needs a 64-bit atomic that WGSL "
                                            "lacks; cast to float64 first or use backend='cpu'")
    def run(body, helpers, label, aux=None):
        return _per_src(kb, s, idx, out, aux, rank, ax, body, helpers, label, values, exact=True)

    targets = ["2u * t", "2u * t + 1u"] if wide else ["t"]
    if reduce == "assign":
        aux = TensorView(kb.scratch(out.size * 4, "scatter_reduce assign marks"), out.shape, np.dtype(np.int32),
                         STORAGES["i32"])
        words = "".join(f"atomicStore(&acc[{w}], v.{c}); " for w, c in zip(targets, "xy"))
        return [fill_launch(kb, aux, 0, "scatter_reduce.marks"),
                run("    atomicMax(&aux[t], gid + 1u);\n", "", "scatter_reduce.last", aux),
                run(f"    if (atomicLoad(&aux[t]) == gid + 1u) {{ {words}}}\n", "", "scatter_reduce.assign", aux)]
    launches = []
    if wide and reduce in ("amax", "amin"):
        # 1. the targets agree on the high word (signed), 2. each low word restarts from x's when x has
        # that high word (else from the identity), 3. the values with that high word combine their low words.
        hi = TensorView(kb.scratch(out.size * 4, "scatter_reduce high words"), out.shape, np.dtype(np.int32),
                        STORAGES["i32"])
        ident_lo, ident_hi = _identity_words(reduce, out.storage)
        better = ">" if reduce == "amax" else "<"
        start = "atomicLoad(&acc[2u * t + 1u])" if include_self else f"{ident_hi}u"
        launches.append(run(f"    atomicStore(&aux[t], {start});\n", "", "scatter_reduce.high start", hi))
        launches.append(run("    var old = atomicLoad(&aux[t]);\n    loop {\n"
                            f"        if (!(bitcast<i32>(v.y) {better} bitcast<i32>(old))) {{ break; }}\n"
                            "        let r = atomicCompareExchangeWeak(&aux[t], old, v.y);\n"
                            "        if (r.exchanged) { break; }\n        old = r.old_value;\n    }\n",
                            "", "scatter_reduce.high", hi))
        keep = "atomicLoad(&acc[2u * t + 1u]) == atomicLoad(&aux[t])" if include_self else "false"
        launches.append(run(f"    if (!({keep})) {{ atomicStore(&acc[2u * t], {ident_lo}u); }}\n", "",
                            "scatter_reduce.low start", hi))
        low = "atomicMax" if reduce == "amax" else "atomicMin"
        launches.append(run(f"    if (v.y == atomicLoad(&aux[t])) {{ {low}(&acc[2u * t], v.x); }}\n"
                            "    atomicStore(&acc[2u * t + 1u], atomicLoad(&aux[t]));\n", "",
                            f"scatter_reduce.{reduce}", hi))
        return launches
    if not include_self:
        words = "".join(f"atomicStore(&acc[{w}], {k}u); "
                        for w, k in zip(targets, _identity_words(reduce, out.storage)))
        launches.append(run(f"    {words}\n", "", "scatter_reduce.identity"))
    aux = None
    if reduce == "mean":
        aux = TensorView(kb.scratch(out.size * 4, "scatter_reduce mean counts"), out.shape, np.dtype(np.int32),
                         STORAGES["i32"])
        launches.append(fill_launch(kb, aux, 0, "scatter_reduce.counts"))
    count = "    atomicAdd(&aux[t], 1u);\n" if reduce == "mean" else ""
    if reduce in ("sum", "mean"):
        body, helpers = "    atomic_add_words(t, v);\n", atomic_add_words_wgsl(out.storage)
    else:
        body, helpers = "    combine(t, v);\n", _exact_i32_combine_wgsl(reduce)
    launches.append(run(body + count, helpers, f"scatter_reduce.{reduce}", aux))
    if reduce == "mean":
        launches.append(_exact_mean_finish(kb, out, aux, include_self))
    return launches


def scatter_reduce(kb, instr, inputs, out):
    """``torch.scatter_reduce`` / ``torch.scatter`` into a copy of ``x``."""
    x, idx, s = inputs
    if out.size == 0:
        return []
    reduce, include_self = instr.attrs["reduce"], bool(instr.attrs["include_self"])
    if out.storage.name in ("i32", "i64"):
        return exact_scatter_reduce(kb, instr, inputs, out, reduce, include_self)
    rank = max(len(idx.shape), 1)
    shape = tuple(x.shape) or (1,)
    ax = normalize_axis(instr.attrs["axis"], len(shape))
    acc, finish = _accumulator(kb, out)
    launches = [_as_f32_copy(kb, x, acc)]
    if not idx.size:
        return launches + finish
    if not idx.shape:  # a 0-d index addresses a 0-d x viewed as shape (1,)
        idx = TensorView(idx.buffer, (1,), idx.dtype, idx.storage)
        s = TensorView(s.buffer, (1,), s.dtype, s.storage)
    values = _index_values(idx, _contig(shape), ax, shape[ax])
    aux = None
    if reduce in ("assign", "mean"):
        aux = TensorView(kb.scratch(out.size * 4, f"scatter_reduce {reduce} marks"), out.shape, np.dtype(np.int32),
                         STORAGES["i32"])
        launches.append(fill_launch(kb, aux, 0, "scatter_reduce.marks"))
    if reduce == "assign":  # the last writer of each target, then only it writes
        launches.append(_per_src(kb, s, idx, acc, aux, rank, ax, "    atomicMax(&aux[t], gid + 1u);\n", "",
                                 "scatter_reduce.last", values))
        launches.append(_per_src(kb, s, idx, acc, aux, rank, ax,
                                 "    if (atomicLoad(&aux[t]) == gid + 1u) { atomicStore(&acc[t], bitcast<u32>(v)); }\n",
                                 "", "scatter_reduce.assign", values))
        return launches + finish
    if not include_self:
        ident = STORAGES["f32"].literal(_IDENTITY[reduce])
        launches.append(_per_src(kb, s, idx, acc, None, rank, ax, f"    atomicStore(&acc[t], bitcast<u32>({ident}));\n",
                                 "", "scatter_reduce.identity", values))
    count = "    atomicAdd(&aux[t], 1u);\n" if reduce == "mean" else ""
    launches.append(_per_src(kb, s, idx, acc, aux, rank, ax, "    combine(t, v);\n" + count, _combine_wgsl(reduce),
                             f"scatter_reduce.{reduce}", values))
    if reduce == "mean":
        launches.append(_mean_finish(kb, acc, aux, include_self, floor=not out.storage.is_float))
    return launches + finish


def exact_scatter_reduce(kb, instr, inputs, out, reduce: str, include_self: bool):
    """Launches of ``scatter_reduce`` (or ``scatter_add``: ``"sum"``) into an int32/int64 ``out``, exactly."""
    x, idx, s = inputs
    shape = tuple(x.shape) or (1,)
    st = contiguous_strides(shape)
    launches = [copy_view_launch(kb, x, out.buffer, shape, 0, st, 0, st, "scatter_reduce copy")]
    if not idx.size:
        return launches
    if not idx.shape:
        idx = TensorView(idx.buffer, (1,), idx.dtype, idx.storage)
        s = TensorView(s.buffer, (1,), s.dtype, s.storage)
    rank = max(len(idx.shape), 1)
    ax = normalize_axis(instr.attrs["axis"], len(shape))
    values = _index_values(idx, _contig(shape), ax, shape[ax])
    return launches + _exact_scatter(kb, instr, inputs, out, reduce, include_self, idx, s, rank, ax, values)


def scatter_add(kb, instr, inputs, out):
    """``torch.scatter_add``: integers exactly (as ``scatter_reduce``'s sum), floats by the movement kernel."""
    if out.storage.name in ("i32", "i64"):
        return exact_scatter_reduce(kb, instr, inputs, out, "sum", True)
    return float_scatter_add(kb, instr, inputs, out)


KERNELS = {"scatter_reduce": scatter_reduce, "scatter_add": scatter_add}
