"""WGSL kernel of ``scatter_reduce`` (assign, sum, prod, mean, amax, amin; ``include_self``).

One thread per output element scans the index along the scatter axis and reduces the
``src`` values aimed at it, in index order. That order makes the result deterministic
(``assign``: the later position wins, as on the cpu backend) and needs no float atomics,
which WGSL lacks for max/min/product. Values are combined in f32 and stored in the
output's storage; an index outside the axis is clamped after wrapping negatives, as in
``take``/``gather`` on this backend.

Example::

    >>> "fn main" in scatter_reduce_wgsl(STORAGES["f32"], STORAGES["i64"], 2, 1, "amax", True)
    True
"""

from __future__ import annotations

from rustyasg.core.shapes import normalize_axis

from .api import STORAGES, KernelBuilder, LINEAR_WORKGROUP_WGSL, Storage, UniformLayout  # noqa: F401  (STORAGES: the example)
from .elementwise import contiguous_strides
from .movement_ops import MAIN, WG, _wrap_index

_COMBINE = {
    "assign": "acc = v;",
    "sum": "acc = acc + v;",
    "mean": "acc = acc + v;",
    "prod": "acc = acc * v;",
    # NaN propagates (as PyTorch): once acc is NaN no comparison replaces it.
    "amax": "if (is_nan(v) || v > acc) { acc = v; }",
    "amin": "if (is_nan(v) || v < acc) { acc = v; }",
}


# A bit test: the shader compiler may assume ``v != v`` is false.
_IS_NAN = "fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }\n"


def _layout(rank: int) -> UniformLayout:
    return UniformLayout([("n", "u32"), ("N", "u32"), ("J", "u32"), ("ts", "u32")]
                         + [(f"d{j}", "u32") for j in range(rank)] + [(f"e{j}", "u32") for j in range(rank)]
                         + [(f"t{j}", "u32") for j in range(rank)])


def scatter_reduce_wgsl(st: Storage, ist: Storage, rank: int, ax: int, reduce: str, include_self: bool) -> str:
    """WGSL of one (storage, index storage, rank, axis, reduce, include_self) variant."""
    lay = _layout(rank)
    body = ["    var rem = gid;", "    var ibase = 0u;", "    var inside = true;"]
    for j in reversed(range(rank)):
        body += [f"    let c{j} = rem % p.d{j};", f"    rem = rem / p.d{j};"]
        if j != ax:
            body += [f"    if (c{j} >= p.e{j}) {{ inside = false; }}", f"    ibase = ibase + c{j} * p.t{j};"]
    fresh = "true" if reduce == "assign" or not include_self else "false"
    body += [f"    var acc = {st.load('xs', 'gid')};", "    var cnt = 0u;",
             "    if (inside) {",
             "        for (var j = 0u; j < p.J; j = j + 1u) {",
             "            let ip = ibase + j * p.ts;",
             f"            let raw = {ist.index('ids', 'ip')};",
             f"            if ({_wrap_index('raw', 'p.N')} == c{ax}) {{",
             f"                let v = {st.load('ss', 'ip')};",
             f"                if (cnt == 0u && {fresh}) {{ acc = v; }} else {{ {_COMBINE[reduce]} }}",
             "                cnt = cnt + 1u;",
             "            }", "        }", "    }"]
    if reduce == "mean":
        total = "f32(cnt + 1u)" if include_self else "f32(cnt)"
        mean = f"acc / {total}" if st.is_float else f"floor(acc / {total})"
        body.append(f"    if (cnt > 0u) {{ acc = {mean}; }}")
    body.append(f"    {st.store('dst', 'gid', 'acc')};")
    return (KernelBuilder.header(st, ist) + lay.wgsl_struct("Params") + "\n"
            f"@group(0) @binding(0) var<storage, read> xs: {st.array};\n"
            f"@group(0) @binding(1) var<storage, read> ids: {ist.array};\n"
            f"@group(0) @binding(2) var<storage, read> ss: {st.array};\n"
            f"@group(0) @binding(3) var<storage, read_write> dst: {st.array};\n"
            "@group(0) @binding(4) var<uniform> p: Params;\n" + _IS_NAN + LINEAR_WORKGROUP_WGSL + MAIN
            + "\n".join(body) + "\n}\n")


def scatter_reduce(kb, instr, inputs, out):
    """``torch.scatter_reduce`` / ``torch.scatter`` into a copy of ``x``."""
    x, idx, s = inputs
    if out.size == 0:
        return []
    shape = tuple(x.shape) or (1,)
    ishape = tuple(idx.shape) or (1,)
    rank = len(shape)
    ax = normalize_axis(instr.attrs["axis"], rank)
    strides = contiguous_strides(ishape)
    src = scatter_reduce_wgsl(x.storage, idx.storage, rank, ax, instr.attrs["reduce"], bool(instr.attrs["include_self"]))
    lay = _layout(rank)
    values = {"n": out.size, "N": max(shape[ax], 1), "J": ishape[ax] if idx.size else 0, "ts": strides[ax]}
    values.update({f"d{j}": shape[j] for j in range(rank)})
    values.update({f"e{j}": ishape[j] for j in range(rank)})
    values.update({f"t{j}": strides[j] for j in range(rank)})
    return [kb.launch(src, [x, idx, s, out], kb.groups(out.size, WG), (lay, values), "scatter_reduce")]


KERNELS = {"scatter_reduce": scatter_reduce}
