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

An index outside the axis is clamped after wrapping negatives, as in ``take``/``gather``.

Example::

    >>> "atomicCompareExchangeWeak" in _combine_wgsl("amax")
    True
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.shapes import normalize_axis

from .api import STORAGES, LINEAR_WORKGROUP_WGSL, TensorView, UniformLayout
from .movement_ops import (MAIN, WG, _accumulator, _as_f32_copy, _contig, _index_layout, _index_values,
                           _indexed_offset, _wrap_index, fill_launch)

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


def _per_src(kb, s, idx, acc, aux, rank, ax, body: str, helpers: str, label: str, values):
    """A launch over the ``src`` elements; ``body`` sees ``t`` (the target), ``v`` (the value), ``gid``."""
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
    src = (kb.header(s.storage, idx.storage) + lay.wgsl_struct("Params") + "\n" + "".join(bindings)
           + f"@group(0) @binding({len(resources)}) var<uniform> p: Params;\n" + LINEAR_WORKGROUP_WGSL + helpers
           + MAIN + "\n".join(_indexed_offset(rank, ax)) + "\n"
           + f"    let raw = {idx.storage.index('ids', 'gid')};\n"
           + f"    let t = base + {_wrap_index('raw', 'p.N')} * p.s{ax};\n"
           + f"    let v = {s.storage.load('ss', 'gid')};\n" + body + "}\n")
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


def scatter_reduce(kb, instr, inputs, out):
    """``torch.scatter_reduce`` / ``torch.scatter`` into a copy of ``x``."""
    x, idx, s = inputs
    if out.size == 0:
        return []
    reduce, include_self = instr.attrs["reduce"], bool(instr.attrs["include_self"])
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


KERNELS = {"scatter_reduce": scatter_reduce}
