"""Reductions, softmax/log_softmax and sum_to from one generator with two layouts.

Every reduction is first brought to the form ``[A, R, B]`` (outer, reduced, inner)
by collapsing dims; reduced axes that are not one contiguous block are first moved
last by a strided copy into scratch. Then:

* **rows** (``B == 1``): one workgroup per row; threads stride over the row and combine
  through a shared-memory tree (a second/third pass over the row for ``var``,
  ``logsumexp``, ``softmax``, ``log_softmax``, which need the max or the mean first).
* **cols** (``B > 1``): one thread per ``(a, b)`` walks ``r`` — adjacent threads read
  adjacent memory. When ``A*B`` is too small to fill the GPU and the op is associative
  (``sum`` ``mean`` ``max`` ``min`` ``prod``), the ``R`` axis is split into chunks whose
  partial results land in scratch and are combined by a second cols pass (bias
  gradients: ``(8192, 512) -> (512,)``).

Floats accumulate in f32. Integers and bools (``sum`` ``mean`` ``prod`` ``max`` ``min``
``argmax`` ``argmin``) accumulate exactly as two's-complement 64-bit (lo, hi) words, partial
results included, and wrap on store as the result dtype does (numpy's int32 sum is modulo
2**32). A ``mean`` divides the exact sum: of int32 or bool it cannot wrap (fewer than 2**32
terms); of int64 it is kept as two 64-bit sums, of the unsigned low words and of the signed high
words, which cannot wrap either, and only the final ``hi * 2**32 + lo`` is rounded to f32.
``argmax``/``argmin`` keep the first index on ties (numpy's rule).

Example::

    >>> reduce_form((2, 3, 4), (1,))
    ((2, 3, 4), None)
    >>> reduce_form((2, 3, 4), (0, 2))[1]
    (1, 0, 2)
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from rustyasg.core.backend_api import normalize_axes, normalize_axis, outer_reduced_inner, sum_to_axes

from .api import STORAGES, KernelBuilder, LINEAR_WORKGROUP_WGSL, Storage, TensorView, UniformLayout
from .elementwise import contiguous_strides
from .ew_ops import I64_OPS_WGSL, LOAD64, STORE64
from .movement_ops import copy_view_launch

# op -> (identity, combine(a, b), finalize(acc) with {R} = row length as f32)
SIMPLE = {
    "sum": ("0.0", "{a} + {b}", "{acc}"),
    "mean": ("0.0", "{a} + {b}", "{acc} / {R}"),
    "prod": ("1.0", "{a} * {b}", "{acc}"),
    # NaN propagates as in numpy (WGSL's max/min and subgroupMax/Min need not); a bit test, as
    # drivers may fold a != a away. The identities are -inf and +inf, by their bits read at run
    # time (WGSL has no inf literal, and Tint refuses a non-finite constant expression), so a row
    # of infinities reduces to inf, not to the largest finite float.
    "max": ("f32_from_bits(0xff800000u)", "select({b}, {a}, ({a} > {b}) | ((bitcast<u32>({a}) & 0x7fffffffu) > "
            "0x7f800000u))", "{acc}"),
    "min": ("f32_from_bits(0x7f800000u)", "select({b}, {a}, ({a} < {b}) | ((bitcast<u32>({a}) & 0x7fffffffu) > "
            "0x7f800000u))", "{acc}"),
}
#: The same ops on exact (lo, hi) words; max/min identities are int64's extremes.
EXACT_SIMPLE = {
    "sum": ("vec2<u32>(0u, 0u)", "add64({a}, {b})", "{acc}"),
    "mean": ("vec2<u32>(0u, 0u)", "add64({a}, {b})", "i64_to_f32({acc}) / {R}"),
    "prod": ("vec2<u32>(1u, 0u)", "mul64({a}, {b})", "{acc}"),
    "max": ("vec2<u32>(0u, 0x80000000u)", "select({b}, {a}, lt64({b}, {a}))", "{acc}"),
    "min": ("vec2<u32>(0xffffffffu, 0x7fffffffu)", "select({b}, {a}, lt64({a}, {b}))", "{acc}"),
}
#: An int64 mean's accumulator: (sum of low words, sum of high words) as two (lo, hi) word pairs.
WIDE_MEAN = ("vec4<u32>(0u, 0u, 0u, 0u)", "vec4<u32>(add64({a}.xy, {b}.xy), add64({a}.zw, {b}.zw))",
             "wide_to_f32({acc}) / {R}")
WIDE_WGSL = """
fn widen64(v: vec2<u32>) -> vec4<u32> {
    return vec4<u32>(v.x, 0u, v.y, select(0u, 0xffffffffu, (v.y & 0x80000000u) != 0u));
}
fn wide_to_f32(w: vec4<u32>) -> f32 {
    // value = top * 2**32 + low with top = high sum + carry of the low sum; rounded once per part,
    // the parts of one sign (no cancellation).
    let top = add64(w.zw, vec2<u32>(w.y, 0u));
    let low = w.x;
    if (neg_p(top) && low != 0u) {
        return -(i64_to_f32(neg64(add64(top, vec2<u32>(1u, 0u)))) * 4294967296.0 + f32(~low + 1u));
    }
    return i64_to_f32(top) * 4294967296.0 + f32(low);
}
"""
#: Partial results of an int64 mean: the accumulator's four words.
WIDE = Storage("wide", "vec4<u32>", 16)
# "value {v} beats the best so far {b}", and "{v} equals {b}", by accumulator kind (exact or f32)
BETTER = {False: {"argmax": "{v} > {b}", "argmin": "{v} < {b}"},
          True: {"argmax": "lt64({b}, {v})", "argmin": "lt64({v}, {b})"}}
EQUAL = {False: "{v} == {b}", True: "all({v} == {b})"}
ASSOCIATIVE = frozenset(SIMPLE)  # ops whose partial results combine by the op itself
LAYOUT = UniformLayout([("A", "u32"), ("R", "u32"), ("B", "u32"), ("C", "u32"), ("chunk", "u32"),
                        ("extra", "f32")])
COLS_THREADS = 262144  # enough (a, b, chunk) threads to keep a big GPU busy
PARTIALS_STEP = 32  # partial results combined per thread in each further pass of a column reduction
ROWS_CHUNK_BELOW = 512  # fewer rows than this (a GPU has ~100 multiprocessors) ...
ROW_CHUNK = 16384  # ... and rows at least twice this long are reduced in chunks of this length


def reduce_form(shape: Sequence[int], axes: Sequence[int]) -> Tuple[Tuple[int, int, int], Optional[tuple]]:
    """``((A, R, B), permutation)``: the reduce shape, and the transpose needed first (or None)."""
    red = sorted(i for i in set(axes) if shape[i] != 1)  # reducing a size-1 axis is a no-op
    arb = outer_reduced_inner(shape, red)
    if arb is not None:
        return arb, None
    perm = tuple(i for i in range(len(shape)) if i not in red) + tuple(red)
    A = int(np.prod([shape[i] for i in range(len(shape)) if i not in red], dtype=np.int64))
    return (A, int(np.prod([shape[i] for i in red], dtype=np.int64)), 1), perm


def is_exact(op: str, storage) -> Optional[str]:
    """The exact accumulator of ``op`` over this input storage: ``"words"`` (a 64-bit integer),
    ``"wide"`` (an int64 mean, see :data:`WIDE_MEAN`), or None (f32).

    Example::

        >>> is_exact("sum", STORAGES["i32"]), is_exact("sum", STORAGES["f32"]), is_exact("mean", STORAGES["i64"])
        ('words', None, 'wide')
    """
    if op == "mean" and storage.name in ("i64", "wide"):
        return "wide"  # a 64-bit sum could wrap; numpy's mean does not
    return "words" if not storage.is_float and (op in SIMPLE or op in ("argmax", "argmin")) else None


def _simple(op: str, exact: Optional[str]):
    """(identity, combine, finalize) of an associative op for the accumulator kind."""
    if exact == "wide":
        return WIDE_MEAN
    return (EXACT_SIMPLE if exact else SIMPLE)[op]


def _load(storage, exact: Optional[str], arr: str, idx: str) -> str:
    """WGSL: element ``idx`` of ``arr`` as the accumulator reads it (f32, exact words, or wide words)."""
    if exact == "wide":
        return f"{arr}[{idx}]" if storage is WIDE else f"widen64({arr}[{idx}])"
    return LOAD64[storage.name].format(a=arr, i=idx) if exact else storage.load(arr, idx)


def _store(out, words: bool, arr: str, idx: str, value: str) -> str:
    """WGSL statement storing ``value``: exact words when ``words``, wrapped as ``out``'s dtype does."""
    if not words:
        return out.store(arr, idx, value)
    if out is WIDE:
        return f"{arr}[{idx}] = {value}"
    if out.is_float:
        return out.store(arr, idx, f"i64_to_f32({value})")
    return f"{arr}[{idx}] = " + STORE64[out.name].format(v=value)


SUBGROUP_OPS = {"{a} + {b}": "subgroupAdd", "max({a}, {b})": "subgroupMax", "min({a}, {b})": "subgroupMin"}


def _tree(var: str, combine: str, wg: int, subgroups: bool = False) -> str:
    """WGSL: workgroup-wide combine of each thread's ``var`` into ``sh[0]`` (all threads call).

    With ``subgroups``, each subgroup combines in registers first and one value per
    subgroup goes through shared memory (subgroups of a 1-D workgroup are consecutive
    invocations on Vulkan drivers); otherwise a shared-memory tree.
    """
    if subgroups and combine in SUBGROUP_OPS:
        return (f"    let sgv_{var} = {SUBGROUP_OPS[combine]}({var});\n"
                f"    if (sg_lane == 0u) {{ sh[lid / sg_size] = sgv_{var}; }}\n    workgroupBarrier();\n"
                "    if (lid == 0u) {\n        var t = sh[0];\n"
                f"        for (var i = 1u; i < ({wg}u + sg_size - 1u) / sg_size; i = i + 1u) {{ "
                f"t = {combine.format(a='t', b='sh[i]')}; }}\n"
                "        sh[0] = t;\n    }\n    workgroupBarrier();\n")
    return (f"    sh[lid] = {var};\n    workgroupBarrier();\n"
            f"    for (var s = {wg // 2}u; s > 0u; s = s >> 1u) {{\n"
            f"        if (lid < s) {{ sh[lid] = {combine.format(a='sh[lid]', b='sh[lid + s]')}; }}\n"
            "        workgroupBarrier();\n    }\n")


def _header(x: TensorView, out: TensorView, extra: str = "", exact: Optional[str] = None) -> str:
    head = (KernelBuilder.header(x.storage, out.storage, STORAGES["i64"]) + I64_OPS_WGSL if exact
            else KernelBuilder.header(x.storage, out.storage))
    if exact == "wide":
        head += WIDE_WGSL
    return (head + LAYOUT.wgsl_struct("Params") + "\n"
            f"@group(0) @binding(0) var<storage, read> xs: {x.storage.array};\n"
            f"@group(0) @binding(1) var<storage, read_write> dst: {out.storage.array};\n"
            "@group(0) @binding(2) var<uniform> p: Params;\n" + extra + LINEAR_WORKGROUP_WGSL)


def rows_wgsl(op: str, x: TensorView, out: TensorView, wg: int, chunked: bool = False,
              subgroups: bool = False, divisor: str = "Rf", exact: Optional[str] = None) -> str:
    """One workgroup per row of length R (B == 1), or per chunk of a row when ``chunked``;
    ``subgroups`` combines through subgroup operations (see :func:`_tree`); ``mean`` divides
    by ``divisor`` (``p.extra`` when the row holds partial sums); ``exact`` (default: as
    :func:`is_exact` says for ``x``) picks the accumulator of a second pass over partials."""
    exact = is_exact(op, x.storage) if exact is None else exact or None
    sg = subgroups and not exact and op not in ("argmax", "argmin", "prod")
    load = _load(x.storage, exact, "xs", "base + r")
    loop = "    for (var r = lid; r < len; r = r + {wg}u) {{\n{body}    }}\n"
    arg = op in ("argmax", "argmin")
    acc_type = {"words": "vec2<u32>", "wide": "vec4<u32>", None: "f32"}[exact]
    extra = (f"var<workgroup> sh: array<{acc_type}, {wg}>;\n"
             + (f"var<workgroup> shi: array<u32, {wg}>;\n" if arg else ""))
    # A workgroup reduces chunk c of row a (C chunks per row; C == 1 unless the rows are
    # few and long, then partial results go to scratch and a second pass combines them).
    src = [_header(x, out, extra, exact), f"@compute @workgroup_size({wg})",
           "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,",
           "        @builtin(local_invocation_index) lid: u32" + (
               ", @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32) {"
               if sg else ") {"),
           "    let row = linear_workgroup(wid, nwg);",
           "    if (row >= p.A * p.C) { return; }",
           "    let base = (row / p.C) * p.R + (row % p.C) * p.chunk;",
           "    let len = min(p.chunk, p.R - (row % p.C) * p.chunk);",
           "    let Rf = f32(p.R);"]
    b = []
    if op in SIMPLE:
        ident, comb, fin = _simple(op, exact)
        b.append(f"    var acc = {ident};")
        b.append(loop.format(wg=wg, body=f"        acc = {comb.format(a='acc', b=load)};\n"))
        b.append(_tree("acc", comb, wg, sg))
        fin = "{acc}" if chunked else fin
        words = exact and fin == "{acc}"
        b.append("    if (lid == 0u) { " + _store(out.storage, words, "dst", "row", fin.format(acc="sh[0]", R=divisor))
                 + "; }")
    elif arg:
        better, equal = BETTER[bool(exact)][op], EQUAL[bool(exact)]
        start = (_simple("max" if op == "argmin" else "min", True)[0] if exact
                 else "-3.4028234663852886e38" if op == "argmax" else "3.4028234663852886e38")
        b += [f"    var best = {start};",
              "    var bi = 0xffffffffu;",
              loop.format(wg=wg, body=f"        let v = {load};\n"
                                      f"        if ({better.format(v='v', b='best')} || bi == 0xffffffffu) "
                                      "{ best = v; bi = r; }\n"),
              "    sh[lid] = best;\n    shi[lid] = bi;\n    workgroupBarrier();",
              f"    for (var s = {wg // 2}u; s > 0u; s = s >> 1u) {{",
              "        if (lid < s) {",
              "            let v = sh[lid + s]; let i = shi[lid + s];",
              f"            if (i != 0xffffffffu && (shi[lid] == 0xffffffffu || {better.format(v='v', b='sh[lid]')} || "
              f"({equal.format(v='v', b='sh[lid]')} && i < shi[lid]))) {{",
              "                sh[lid] = v; shi[lid] = i;",
              "            }",
              "        }",
              "        workgroupBarrier();",
              "    }",
              "    if (lid == 0u) { " + out.storage.store_index("dst", "row", "i32(shi[0])") + "; }"]
    else:
        # Two-pass ops: the first pass finds the max (or the mean), the second sums.
        if op == "var":
            b += ["    var acc = 0.0;", loop.format(wg=wg, body=f"        acc = acc + {load};\n"),
                  _tree("acc", "{a} + {b}", wg, sg), "    let mu = sh[0] / Rf;", "    workgroupBarrier();",
                  "    var acc2 = 0.0;",
                  loop.format(wg=wg, body=f"        let d = {load} - mu;\n        acc2 = acc2 + d * d;\n"),
                  _tree("acc2", "{a} + {b}", wg, sg),
                  "    if (lid == 0u) { " + out.storage.store("dst", "row", "sh[0] / (Rf - p.extra)") + "; }"]
        else:
            b += ["    var m = -3.4028234663852886e38;",
                  loop.format(wg=wg, body=f"        m = max(m, {load});\n"),
                  _tree("m", "max({a}, {b})", wg, sg),
                  "    var mx = sh[0];",
                  _INFINITE_MAX[op == "logsumexp"],
                  "    workgroupBarrier();",
                  "    var acc = 0.0;",
                  loop.format(wg=wg, body=f"        acc = acc + exp({load} - mx);\n"),
                  _tree("acc", "{a} + {b}", wg, sg),
                  "    let total = sh[0];"]
            if op == "logsumexp":
                b.append("    if (lid == 0u) { " + out.storage.store("dst", "row", "log(total) + mx") + "; }")
            else:
                expr = f"exp({load} - mx) / total" if op == "softmax" else f"{load} - mx - log(total)"
                b.append(loop.format(wg=wg, body="        " + out.storage.store("dst", "base + r", expr) + ";\n"))
    return "\n".join(src + b) + "\n}\n"


#: What an infinite row maximum becomes (indexed by "is the op logsumexp"). logsumexp returns the
#: infinite max itself (``log(sum(exp(x - 0))) + 0``), as PyTorch does; softmax and log_softmax
#: keep it, so ``x - max`` is NaN (``inf - inf``) and the whole row is NaN, as in PyTorch.
_INFINITE_MAX = {True: "    if (abs(mx) > 3.0e38) { mx = 0.0; }", False: ""}


def cols_wgsl(op: str, x: TensorView, out: TensorView, chunked: bool, divisor: str = "Rf",
              exact: Optional[str] = None) -> str:
    """One thread per (a, [chunk,] b), walking r with stride B (B > 1 or chunked); ``mean``
    divides by ``divisor``; ``exact`` as in :func:`rows_wgsl`."""
    wg = 256
    at = "(a * p.R + r) * p.B + b"
    exact = is_exact(op, x.storage) if exact is None else exact or None
    load = _load(x.storage, exact, "xs", at)
    src = [_header(x, out, "", exact), f"@compute @workgroup_size({wg})",
           "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,",
           "        @builtin(local_invocation_index) lid: u32) {",
           f"    let gid = linear_workgroup(wid, nwg) * {wg}u + lid;",
           "    if (gid >= p.A * p.C * p.B) { return; }",
           "    let b = gid % p.B;",
           "    let ac = gid / p.B;",
           "    let c = ac % p.C;",
           "    let a = ac / p.C;",
           "    let r0 = c * p.chunk;",
           "    let r1 = min(r0 + p.chunk, p.R);",
           "    let Rf = f32(p.R);"]
    loop = "    for (var r = r0; r < r1; r = r + 1u) {{\n{body}    }}\n"
    b = []
    oi = "(a * p.C + c) * p.B + b"
    if op in SIMPLE:
        ident, comb, fin = _simple(op, exact)
        fin = "{acc}" if chunked else fin
        words = exact and fin == "{acc}"
        # Four independent accumulators: four loads in flight per thread instead of one.
        loads = [_load(x.storage, exact, "xs", f"(a * p.R + r + {k}u) * p.B + b") for k in range(4)]
        unrolled = "".join(f"        acc{k} = {comb.format(a=f'acc{k}', b=loads[k])};\n" for k in range(4))
        b += [f"    var acc0 = {ident};", f"    var acc1 = {ident};", f"    var acc2 = {ident};", f"    var acc3 = {ident};",
              "    var r = r0;",
              f"    for (; r + 4u <= r1; r = r + 4u) {{\n{unrolled}    }}",
              f"    for (; r < r1; r = r + 1u) {{ acc0 = {comb.format(a='acc0', b=load)}; }}",
              f"    let acc = {comb.format(a=comb.format(a='acc0', b='acc1'), b=comb.format(a='acc2', b='acc3'))};",
              "    " + _store(out.storage, words, "dst", oi, fin.format(acc="acc", R=divisor)) + ";"]
    elif op in ("argmax", "argmin"):
        better = BETTER[bool(exact)][op].format(v="v", b="best")
        b += ["    var best = " + ("vec2<u32>(0u, 0u);" if exact else "0.0;"), "    var bi = 0u;",
              loop.format(body=f"        let v = {load};\n        if (r == r0 || {better}) {{ best = v; bi = r; }}\n"),
              "    " + out.storage.store_index("dst", oi, "i32(bi)") + ";"]
    elif op == "var":
        b += ["    var acc = 0.0;", loop.format(body=f"        acc = acc + {load};\n"), "    let mu = acc / Rf;",
              "    var acc2 = 0.0;", loop.format(body=f"        let d = {load} - mu;\n        acc2 = acc2 + d * d;\n"),
              "    " + out.storage.store("dst", oi, "acc2 / (Rf - p.extra)") + ";"]
    else:
        b += ["    var mx = -3.4028234663852886e38;", loop.format(body=f"        mx = max(mx, {load});\n"),
              _INFINITE_MAX[op == "logsumexp"],
              "    var total = 0.0;", loop.format(body=f"        total = total + exp({load} - mx);\n")]
        if op == "logsumexp":
            b.append("    " + out.storage.store("dst", oi, "log(total) + mx") + ";")
        else:
            expr = f"exp({load} - mx) / total" if op == "softmax" else f"{load} - mx - log(total)"
            b.append(loop.format(body="        " + out.storage.store("dst", at, expr) + ";\n"))
    return "\n".join(src + b) + "\n}\n"


def _values(A, R, B, C=1, chunk=None, extra=0.0):
    return {"A": A, "R": R, "B": B, "C": C, "chunk": chunk if chunk is not None else max(R, 1), "extra": extra}


def _partials(kb: KernelBuilder, op: str, x: TensorView, shape) -> TensorView:
    """Scratch for the partial results of a two-pass reduction: f32, exact int64 words, or wide words."""
    exact = is_exact(op, x.storage)
    dtype, storage = ((np.dtype(np.int64), WIDE if exact == "wide" else STORAGES["i64"]) if exact
                      else (np.dtype(np.float32), STORAGES["f32"]))
    size = int(np.prod(shape, dtype=np.int64))
    return TensorView(kb.scratch(size * storage.itemsize, "reduce partials"), shape, dtype, storage)


def reduce_launches(kb: KernelBuilder, op: str, x: TensorView, out: TensorView, axes: Sequence[int],
                    extra: float = 0.0) -> List:
    """Launches reducing ``x`` over ``axes`` with ``op`` into ``out`` (same element count as the kept dims,
    or as ``x`` for softmax/log_softmax)."""
    (A, R, B), perm = reduce_form(x.shape, axes)
    launches = []
    if perm is not None:  # move the reduced axes last (a strided copy into scratch)
        moved_shape = tuple(x.shape[i] for i in perm)
        st = contiguous_strides(x.shape)
        buf = kb.scratch(x.nbytes, "reduce transpose")
        launches.append(copy_view_launch(kb, x, buf, moved_shape, 0, [st[i] for i in perm], 0,
                                         contiguous_strides(moved_shape), "reduce transpose"))
        x = TensorView(buf, moved_shape, x.dtype, x.storage)
        if op in ("softmax", "log_softmax"):
            raise ValueError("softmax over non-adjacent axes")  # single-axis ops never get here
    if B == 1:
        wg = 64 if R <= 512 else 256
        if op in ASSOCIATIVE and A < ROWS_CHUNK_BELOW and R >= 2 * ROW_CHUNK:
            chunks = -(-R // ROW_CHUNK)
            part = _partials(kb, op, x, (A, chunks))
            launches.append(kb.launch(rows_wgsl(op, x, part, 256, True, kb.has_subgroups), [x, part], A * chunks,
                                      (LAYOUT, _values(A, R, 1, chunks, ROW_CHUNK)), f"reduce row chunks {op}"))
            # the second pass combines partial results; a mean divides their sum by the full length
            src = rows_wgsl(op, part, out, 256, False, kb.has_subgroups, "p.extra", is_exact(op, x.storage))
            vals = _values(A, chunks, 1, extra=float(R))
            launches.append(kb.launch(src, [part, out], max(A, 1), (LAYOUT, vals), f"reduce rows final {op}"))
            return launches
        launches.append(kb.launch(rows_wgsl(op, x, out, wg, False, kb.has_subgroups), [x, out], max(A, 1),
                                  (LAYOUT, _values(A, R, 1, extra=extra)), f"reduce rows {op}"))
        return launches
    chunks = 1
    if op in ASSOCIATIVE and A * B < COLS_THREADS and R >= 64:
        chunks = int(min(-(-COLS_THREADS // (A * B)), -(-R // 32)))
    if chunks <= 1:
        launches.append(kb.launch(cols_wgsl(op, x, out, False), [x, out], kb.groups(A * B, 256),
                                  (LAYOUT, _values(A, R, B, extra=extra)), f"reduce cols {op}"))
        return launches
    chunk = -(-R // chunks)
    chunks = -(-R // chunk)
    part = _partials(kb, op, x, (A, chunks, B))
    launches.append(kb.launch(cols_wgsl(op, x, part, True), [x, part], kb.groups(A * chunks * B, 256),
                              (LAYOUT, _values(A, R, B, chunks, chunk)), f"reduce partial {op}"))
    exact = is_exact(op, x.storage)
    # Few (a, b) threads each walking many partial results wait on memory latency (a bias gradient
    # (8192, 512) -> (512,): 512 threads over 256 partials each): combine them 32 at a time first.
    while chunks >= 2 * PARTIALS_STEP:
        fewer = -(-chunks // PARTIALS_STEP)
        step = _partials(kb, op, x, (A, fewer, B))
        launches.append(kb.launch(cols_wgsl(op, part, step, True, exact=exact or ""), [part, step],
                                  kb.groups(A * fewer * B, 256), (LAYOUT, _values(A, chunks, B, fewer, PARTIALS_STEP)),
                                  f"reduce partial {op}"))
        part, chunks = step, fewer
    src = cols_wgsl(op, part, out, False, "p.extra", exact)  # a mean divides by the full R
    vals = _values(A, chunks, B, extra=float(R))
    launches.append(kb.launch(src, [part, out], kb.groups(A * B, 256), (LAYOUT, vals), f"reduce final {op}"))
    return launches


def _axes(instr, ndim):
    return list(normalize_axes(instr.attrs["axis"], ndim))


def reduction(kb, instr, inputs, out):
    """sum, mean, max, min, prod, logsumexp over ``axis`` (None: all)."""
    (x,) = inputs
    return reduce_launches(kb, instr.op, x, out, _axes(instr, x.ndim))


def variance(kb, instr, inputs, out):
    (x,) = inputs
    return reduce_launches(kb, "var", x, out, _axes(instr, x.ndim), float(instr.attrs["correction"]))


def arg_reduction(kb, instr, inputs, out):
    (x,) = inputs
    axis = instr.attrs["axis"]
    axes = list(range(x.ndim)) if axis is None else [normalize_axis(axis, x.ndim)]
    if axis is None or x.ndim == 0:  # a 0-d tensor is its own single-element axis
        x = TensorView(x.buffer, (x.size,), x.dtype, x.storage)
        axes = [0]
    return reduce_launches(kb, instr.op, x, out, axes)


def softmax_like(kb, instr, inputs, out):
    (x,) = inputs
    # normalize_axes: a 0-d tensor has no axis to reduce (its own element is the whole row)
    return reduce_launches(kb, instr.op, x, out, list(normalize_axes(instr.attrs["axis"], x.ndim)))


def sum_to(kb, instr, inputs, out):
    """Sum a broadcast result down to ``shape``: the leading extra axes and the size-1 ones."""
    (x,) = inputs
    return reduce_launches(kb, "sum", x, out, list(sum_to_axes(x.shape, instr.attrs["shape"])))


KERNELS = {name: reduction for name in ("sum", "mean", "max", "min", "prod", "logsumexp")}
KERNELS.update({"var": variance, "argmax": arg_reduction, "argmin": arg_reduction, "softmax": softmax_like,
                "log_softmax": softmax_like, "sum_to": sum_to})
