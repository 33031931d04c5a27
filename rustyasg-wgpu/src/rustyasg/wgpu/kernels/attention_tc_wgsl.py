"""Flash attention on tensor cores (Dawn's subgroup matrices): f16 operands, f32 sums.

The same five kernels as :mod:`.attention_wgsl` (``forward``, ``lse``, and the
gradients ``q``, ``k``, ``v``), with the same bindings, uniforms and edge-value
rules, but the two products of each step run on ``16 x 16 x 16`` subgroup-matrix
fragments instead of one thread per row with scalar FMAs.

How a kernel is laid out (FlashAttention-2's split, in WGSL):

* A workgroup of ``SG`` subgroups owns ``16 * SG`` **rows** (queries for
  ``forward``/``lse``/``q``, keys for ``k``/``v``); each subgroup owns 16 of them.
  Its row operands (``q``, or ``q`` and ``dout``; ``k``, or ``k`` and ``v``) are
  staged once and kept in registers as left fragments.
* **Columns** (keys, or queries for ``k``/``v``) come in tiles of :data:`BC`, staged
  in workgroup memory by the whole workgroup. Per tile and subgroup: the scores
  ``S = R K^T`` (and ``dP = dO V^T`` for the gradients) on the tensor cores into an
  f32 scratch; then two lanes per row turn them into ``P`` (online softmax for the
  forward, ``exp(s - lse)`` for the gradients) or ``dS``, written as f16; then the
  second product ``P V`` (or ``dS K``, ``dS Q``, ``P dO``) on the tensor cores. The
  gradients keep their sums in result fragments across tiles; the forward rescales
  its output rows, so each tile's ``P V`` goes through the scratch into per-lane
  f32 accumulators.
* **Masks.** A key dropped by ``key_keep``, or past the end, is staged as a zero
  row and its probability is 0. Under ``causal`` a 16 x 16 fragment is *full*
  (every pair allowed), *diagonal* or *empty*: empty fragments are skipped, never
  multiplied. A zero probability times a finite value is 0, which is what the
  reference gets by skipping the pair; where a staged row of the operand of the
  second product is NaN or infinite, ``0 * inf`` would differ, so the workgroup
  counts such rows as it stages them and that tile's second product runs as
  per-lane sums over the allowed pairs only (rare: it exists for the edge values).

The default for f16 attention where they fit (``$RUSTYASG_WGPU_ATTENTION_TC=0`` turns them off, see
:func:`.attention_wgsl.tensor_core_attention`). Their first runs on an H100 (2026-12-07) found two
faults, both fixed: fragments shifted by a 4-byte workgroup variable (see
:func:`.matmul_tc_wgsl.check_fragment_alignment`), and dq/dk wrong where the value head differs from
the query head (the second row operand's staging stride). They beat the scalar fused kernels but not
yet the unfused chain on tensor-core GEMMs (``benchmarks/gpu/NOTES.md``).
``tests/wgpu/test_tensor_core_attention.py`` is the check to run on a GPU.

The row-axis length must make whole 16-row fragments only for speed: rows past
the end are staged as zeros and never written. Head sizes must be multiples of
16 (the fragment's k); :func:`tc_subgroups` says whether a spec fits the adapter.

Example::

    >>> from rustyasg.wgpu.kernels.attention_wgsl import AttnSpec
    >>> src = tc_attention_wgsl(AttnSpec("forward", 64, 64, causal=True, elem="f16", out_elem="f16"), 4, 32)
    >>> "subgroupMatrixMultiplyAccumulate" in src and "const THREADS: u32 = 128u;" in src
    True
    >>> tc_shared_bytes(AttnSpec("q", 64, 64, elem="f16"), 4)
    40336
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..pipelines import LINEAR_WORKGROUP_WGSL
from .attention_common import EDGE_HELPERS_WGSL, ATTN_UNIFORMS
from .matmul_tc_wgsl import check_fragment_alignment
from .matmul_wgsl import _Writer
from .storage import STORAGES

FR = 16   # fragment edge (m = n = k) the kernels are written for
BC = 32   # columns per staged tile
PAD = 8   # halves of padding per staged row (fragment rows start in different banks)

# kind -> (row operands, column operands, index of the column operand of the second product)
_ROLES = {
    "forward": (("q",), ("k", "v"), 1),
    "lse": (("q",), ("k",), None),
    "q": (("q", "dout"), ("k", "v"), 0),
    "k": (("k", "v"), ("q", "dout"), 0),
    "v": (("k",), ("q", "dout"), 1),
}
_ROWS_ARE_KEYS = ("k", "v")

# Whether any of four halves is infinite or NaN (exponent bits all set).
_NONFINITE4 = """
fn nonfinite4(x: vec4<f16>) -> bool {
    let u = bitcast<vec2<u32>>(x);
    let e = vec4<u32>(u.x & 0x7c00u, (u.x >> 16u) & 0x7c00u, u.y & 0x7c00u, (u.y >> 16u) & 0x7c00u);
    return any(e == vec4<u32>(0x7c00u));
}
"""


def _width(spec, name: str) -> int:
    return spec.EV if name in ("v", "dout") else spec.E


def _out_width(spec) -> int:
    return {"forward": spec.EV, "lse": 1, "q": spec.E, "k": spec.E, "v": spec.EV}[spec.kind]


def _scratch_cols(spec) -> int:
    """f32 scratch columns per row of a subgroup: the scores (and dP), or the output tile."""
    rows, _, _ = _ROLES[spec.kind]
    return max(BC * len(rows), _out_width(spec))


def tc_shared_bytes(spec, subgroups: int) -> int:
    """Workgroup memory of the tensor-core kernel ``spec`` with ``subgroups`` subgroups."""
    rows, cols, _ = _ROLES[spec.kind]
    br = FR * subgroups
    staged_rows = br * (max(_width(spec, n) for n in rows) + PAD)
    staged_cols = sum(BC * (_width(spec, n) + PAD) for n in cols)
    stats = 3 * BC  # column flags, lse, delta
    scratch = subgroups * FR * _scratch_cols(spec)
    probs = subgroups * FR * (BC + PAD)
    return 2 * (staged_rows + staged_cols + probs) + 4 * (stats + scratch) + 16


def tc_subgroups(spec, frag: Any, shared_limit: int) -> int | None:
    """Subgroups per workgroup for ``spec`` on fragments ``frag`` (None: the tensor-core kernels
    cannot run it: no f16 storage, a head size not a multiple of 16, too little workgroup memory).

    Example::

        >>> from rustyasg.wgpu.kernels.attention_wgsl import AttnSpec
        >>> from rustyasg.wgpu.kernels.matmul_tc_wgsl import FragmentShape
        >>> frag = FragmentShape(16, 16, 16, 32)
        >>> [tc_subgroups(AttnSpec("k", e, e, elem="f16"), frag, 49152) for e in (8, 64, 128, 256)]
        [None, 4, 2, None]
    """
    if frag is None or (frag.m, frag.n, frag.k) != (FR, FR, FR) or frag.subgroup_size % FR:
        return None
    if spec.elem != "f16" or spec.E % FR or spec.EV % FR:
        return None
    for sg in (4, 2):
        if tc_shared_bytes(spec, sg) <= shared_limit:
            return sg
    return None


def _stage(w: _Writer, arr: str, src: str, width: int, rows: int, first: str, count: str, valid: str,
           flag: bool, stride: int) -> None:
    """Copy ``rows`` rows of ``src`` (f16, ``width`` per row) from row ``first`` of this batch into
    ``arr``, ``stride`` halves apart (the stride its fragment loads use); rows failing ``valid``
    (an expression of ``g``) or past ``count`` are zeros. With ``flag`` a non-finite value in a
    kept row bumps the workgroup's ``nonfinite`` counter."""
    n4 = width // 4
    w.open(f"for (var x = lid; x < {rows * n4}u; x = x + THREADS)")
    w(f"let rr = x / {n4}u;")
    w(f"let g = {first} + rr;")
    w("var val = vec4<f16>(0.0h);")
    w.open(f"if (g < {count} && {valid})")
    w(f"val = {src}[(b * {count} + g) * {n4}u + x % {n4}u];")
    if flag:
        w("if (nonfinite4(val)) { atomicAdd(&nonfinite[0], 1u); }")
    w.close()
    w(f"let o = rr * {stride}u + (x % {n4}u) * 4u;")
    w(f"{arr}[o] = val.x; {arr}[o + 1u] = val.y; {arr}[o + 2u] = val.z; {arr}[o + 3u] = val.w;")
    w.close()


def _not_empty(spec, f: int) -> str:
    """WGSL: fragment column ``f`` of the tile has an allowed pair for this subgroup's rows."""
    if not spec.causal:
        return "true"
    c0 = f"t0 + {f * FR}u"
    return f"{c0} >= r0" if spec.kind in _ROWS_ARE_KEYS else f"{c0} <= r0"


def _allowed(spec) -> str:
    """WGSL: row ``row`` may use column ``c`` (global column ``t0 + c``)."""
    causal = ""
    if spec.causal:
        causal = " && row <= t0 + c" if spec.kind in _ROWS_ARE_KEYS else " && t0 + c <= row"
    keep = " && row_kept" if spec.kind in _ROWS_ARE_KEYS and spec.keep else ""
    return f"cv[c] != 0u{causal}{keep}"


@lru_cache(maxsize=None)
def tc_attention_wgsl(spec, subgroups: int, lanes: int) -> str:
    """WGSL of the tensor-core attention kernel ``spec`` (an :class:`~.attention_wgsl.AttnSpec` with
    f16 operands) for ``subgroups`` subgroups of ``lanes`` invocations each."""
    rows_ops, col_ops, second = _ROLES[spec.kind]
    keys_rows = spec.kind in _ROWS_ARE_KEYS
    lpr = lanes // FR                  # lanes per row
    cw = BC // lpr                     # columns of a tile per lane
    ow = _out_width(spec)
    wl = ow // lpr                     # output columns per lane
    scw = _scratch_cols(spec)
    rstride = max(_width(spec, n) for n in rows_ops) + PAD
    pst = BC + PAD
    left = f"subgroup_matrix_left<f16, {FR}, {FR}>"
    right = f"subgroup_matrix_right<f16, {FR}, {FR}>"
    result = f"subgroup_matrix_result<f32, {FR}, {FR}>"
    nrows, ncols = ("p.S", "p.L") if keys_rows else ("p.L", "p.S")
    out_st = STORAGES[spec.out_elem]

    w = _Writer()
    w("enable f16;")
    w("enable subgroups;")
    w("enable chromium_experimental_subgroup_matrix;")
    w(ATTN_UNIFORMS.wgsl_struct("Params"))
    w(f"const SG: u32 = {subgroups}u;")
    w(f"const THREADS: u32 = {subgroups * lanes}u;")
    w(f"const BR: u32 = {FR * subgroups}u;")
    w(f"const BC: u32 = {BC}u;")
    w(f"const CAUSAL: bool = {str(spec.causal).lower()};")
    for n, name in enumerate(spec.bindings):
        if name == "out":
            w(f"@group(0) @binding({n}) var<storage, read_write> out: array<{out_st.elem}>;")
        else:
            elem = {"keep": "u32", "lse": "f32", "delta": "f32"}.get(name, "vec4<f16>")
            w(f"@group(0) @binding({n}) var<storage, read> {name}: array<{elem}>;")
    w(f"@group(0) @binding({len(spec.bindings)}) var<uniform> p: Params;")
    w(f"var<workgroup> Rs: array<f16, {FR * subgroups * rstride}>;")
    for i, name in enumerate(col_ops):
        w(f"var<workgroup> C{i}s: array<f16, {BC * (_width(spec, name) + PAD)}>;")
    w(f"var<workgroup> cv: array<u32, {BC}>;")
    w(f"var<workgroup> cl: array<f32, {BC}>;")
    w(f"var<workgroup> cd: array<f32, {BC}>;")
    w(f"var<workgroup> Sc: array<f32, {subgroups * FR * scw}>;")
    w(f"var<workgroup> Ps: array<f16, {subgroups * FR * pst}>;")
    # Every workgroup variable is a multiple of 16 bytes (see check_fragment_alignment): a lone
    # 4-byte counter ahead of an operand array shifted every fragment by two halves on an H100.
    w("var<workgroup> nonfinite: array<atomic<u32>, 4>;  // element 0 counts; 16 bytes keep the rest aligned")
    w(EDGE_HELPERS_WGSL + _NONFINITE4)
    w(LINEAR_WORKGROUP_WGSL)
    w("@compute @workgroup_size(THREADS)")
    w.open("fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, "
           "@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32, "
           "@builtin(subgroup_invocation_id) lane: u32)")
    w("let wg = linear_workgroup(wid, nwg);")
    w("if (wg >= p.groups) { return; }")
    w("let b = wg / p.blocks;")
    w("let i0 = (wg % p.blocks) * BR;")
    w(f"let r0 = i0 + sg * {FR}u;  // this subgroup's first row")
    w(f"let r = lane / {lpr}u;      // this lane's row among the subgroup's 16")
    w(f"let h = lane % {lpr}u;      // which part of the row's columns it takes")
    w("let row = r0 + r;")
    w(f"let sbase = sg * {FR * scw}u + r * {scw}u;")
    w(f"let pbase = sg * {FR * pst}u;")
    w("if (lid == 0u) { atomicStore(&nonfinite[0], 0u); }")
    if spec.kind == "v":  # dv reads neither v nor delta; a never-taken use keeps them in the binding layout
        w("if (p.groups == 0u) { _ = v[0]; _ = delta[0]; }")

    # Row operands: staged one after the other through Rs, then held as left fragments.
    for i, name in enumerate(rows_ops):
        if i:
            w("workgroupBarrier();")
        # Both row operands share Rs and its stride (the wider one's): of different widths (dout
        # or v narrower than q or k), each staged at its own stride gave wrong gradients on an H100.
        _stage(w, "Rs", name, _width(spec, name), FR * subgroups, "i0", nrows, "true", False, rstride)
        w("workgroupBarrier();")
        for e in range(_width(spec, name) // FR):
            w(f"let rf{i}_{e} = subgroupMatrixLoad<{left}>(&Rs, sg * {FR * rstride}u + {e * FR}u, false, {rstride}u);")

    # Per-row statistics and per-lane state.
    if spec.kind == "q":
        w("let lse_i = lse[b * p.L + min(row, p.L - 1u)];")
        w("let delta_i = delta[b * p.L + min(row, p.L - 1u)];")
    if keys_rows and spec.keep:
        w("let row_kept = keep[b * p.S + min(row, p.S - 1u)] != 0u;")
    if spec.kind in ("forward", "lse"):
        w("var m = ninf_f();")
        w("var l = 0.0;")
        w("var bad = false;")
    if spec.kind != "lse":
        w(f"var acc: array<f32, {wl}>;")
        w(f"for (var u = 0u; u < {wl}u; u = u + 1u) {{ acc[u] = 0.0; }}")
    if spec.kind in ("q", "k", "v"):
        for e in range(ow // FR):
            w(f"var out_{e} = {result}();")

    w("var t_start = 0u;")
    w(f"var t_end = {ncols};")
    if keys_rows:
        w("if (CAUSAL) { t_start = i0; }  // queries before the block's first key attend none of it")
    else:
        w(f"if (CAUSAL) {{ t_end = min({ncols}, i0 + BR); }}  // keys past the block's last query: none")
    w("var seen = 0u;")
    w.open("for (var t0 = t_start; t0 < t_end; t0 = t0 + BC)")
    w("workgroupBarrier();")
    for i, name in enumerate(col_ops):
        valid = "keep[b * p.S + g] != 0u" if (spec.keep and not keys_rows) else "true"
        _stage(w, f"C{i}s", name, _width(spec, name), BC, "t0", ncols, valid, i == second, _width(spec, name) + PAD)
    w.open("for (var c = lid; c < BC; c = c + THREADS)")
    w("let g = t0 + c;")
    if keys_rows:
        w("cv[c] = select(0u, 1u, g < p.L);")
        w("cl[c] = lse[b * p.L + min(g, p.L - 1u)];")
        if spec.kind == "k":
            w("cd[c] = delta[b * p.L + min(g, p.L - 1u)];")
    else:
        kept = " && keep[b * p.S + min(g, p.S - 1u)] != 0u" if spec.keep else ""
        w(f"cv[c] = select(0u, 1u, g < p.S{kept});")
    w.close()
    w("workgroupBarrier();")
    w("let count = workgroupUniformLoad(&nonfinite[0]);")
    w("let exact = count != seen;  // a non-finite value in this tile's second operand")
    w("seen = count;")

    # First products: S (and dP) for every fragment column with an allowed pair.
    for f in range(BC // FR):
        w.open(f"if ({_not_empty(spec, f)})")
        products = [("s", 0, 0)] + ([("d", 1, 1)] if spec.kind in ("q", "k") else [])
        for tag, ri, ci in products:
            cstride = _width(spec, col_ops[ci]) + PAD
            w(f"var {tag}_acc = {result}();")
            for e in range(_width(spec, rows_ops[ri]) // FR):
                w(f"{tag}_acc = subgroupMatrixMultiplyAccumulate(rf{ri}_{e}, subgroupMatrixLoad<{right}>("
                  f"&C{ci}s, {f * FR * cstride + e * FR}u, true, {cstride}u), {tag}_acc);")
            off = f * FR + (BC if tag == "d" else 0)
            w(f"subgroupMatrixStore(&Sc, sg * {FR * scw}u + {off}u, {tag}_acc, false, {scw}u);")
        w.close()
    w("workgroupBarrier();")

    # Per-lane pass: probabilities (or dS) of this lane's columns, as f16 for the second product.
    if spec.kind in ("forward", "lse"):
        w(f"var sv: array<f32, {cw}>;")
        w("var tmax = ninf_f();")
        w("var tbad = 0u;")
        w.open(f"for (var u = 0u; u < {cw}u; u = u + 1u)")
        w(f"let c = h * {cw}u + u;")
        w("var s = ninf_f();")
        w.open(f"if ({_allowed(spec)})")
        w("s = p.scale * Sc[sbase + c];")
        w("if (isnan_f(s) || is_pinf(s)) { tbad = 1u; s = ninf_f(); }")
        w("tmax = max(tmax, s);")
        w.close()
        w("sv[u] = s;")
        w.close()
        x = 1
        while x < lpr:
            w(f"tmax = max(tmax, subgroupShuffleXor(tmax, {x}u));")
            w(f"tbad = tbad | subgroupShuffleXor(tbad, {x}u);")
            x *= 2
        w("let m_new = max(m, tmax);")
        w("// What was summed so far, rescaled to the new maximum (nothing was while it is -inf).")
        w("let alpha = select(exp_f(m - m_new), 1.0, is_ninf(m_new));")
        w("var psum = 0.0;")
        w.open(f"for (var u = 0u; u < {cw}u; u = u + 1u)")
        w("let pv = select(0.0, exp_f(sv[u] - m_new), sv[u] > ninf_f());")
        w("psum = psum + pv;")
        if spec.kind == "forward":
            w(f"Ps[pbase + r * {pst}u + h * {cw}u + u] = f16(pv);")
        w.close()
        x = 1
        while x < lpr:
            w(f"psum = psum + subgroupShuffleXor(psum, {x}u);")
            x *= 2
        w("l = l * alpha + psum;")
        w("m = m_new;")
        w("bad = bad || tbad != 0u;")
    else:
        w.open(f"for (var u = 0u; u < {cw}u; u = u + 1u)")
        w(f"let c = h * {cw}u + u;")
        w("var ds = 0.0;")
        w.open(f"if ({_allowed(spec)})")
        lse_c = "cl[c]" if keys_rows else "lse_i"
        w(f"let pj = exp_f(p.scale * Sc[sbase + c] - {lse_c});")
        if spec.kind == "v":
            w("ds = pj;")
        else:
            delta_c = "cd[c]" if keys_rows else "delta_i"
            w(f"ds = pj * (Sc[sbase + {BC}u + c] - {delta_c});")
        w.close()
        w(f"Ps[pbase + r * {pst}u + h * {cw}u + u] = f16(ds);")
        w.close()

    if spec.kind != "lse":
        w("workgroupBarrier();")
        # Second product: P (or dS) times the column operand, on the tensor cores unless exact.
        sname = col_ops[second]
        sstride = _width(spec, sname) + PAD
        w.open("if (exact)")
        w("// Per-lane sums over the allowed pairs only: 0 * inf of a skipped pair must not count.")
        if spec.kind == "forward":
            w(f"for (var u = 0u; u < {wl}u; u = u + 1u) {{ acc[u] = acc[u] * alpha; }}")
        w.open("for (var c = 0u; c < BC; c = c + 1u)")
        w.open(f"if ({_allowed(spec)})")
        w(f"let pc = f32(Ps[pbase + r * {pst}u + c]);")
        w(f"for (var u = 0u; u < {wl}u; u = u + 1u) {{ acc[u] = acc[u] + pc * "
          f"f32(C{second}s[c * {sstride}u + h * {wl}u + u]); }}")
        w.close()
        w.close()
        w.close(" else {")
        w.depth += 1
        for e in range(ow // FR):
            target = f"o_acc_{e}" if spec.kind == "forward" else f"out_{e}"
            if spec.kind == "forward":
                w(f"var {target} = {result}();")
            for f in range(BC // FR):
                w(f"if ({_not_empty(spec, f)}) {{ {target} = subgroupMatrixMultiplyAccumulate("
                  f"subgroupMatrixLoad<{left}>(&Ps, pbase + {f * FR}u, false, {pst}u), "
                  f"subgroupMatrixLoad<{right}>(&C{second}s, {f * FR * sstride + e * FR}u, false, {sstride}u), "
                  f"{target}); }}")
            if spec.kind == "forward":
                w(f"subgroupMatrixStore(&Sc, sg * {FR * scw}u + {e * FR}u, {target}, false, {scw}u);")
        if spec.kind == "forward":
            w("workgroupBarrier();")
            w(f"for (var u = 0u; u < {wl}u; u = u + 1u) {{ acc[u] = acc[u] * alpha + Sc[sbase + h * {wl}u + u]; }}")
        w.close()
    w.close()  # tile loop

    # Results.
    if spec.kind in ("q", "k", "v"):
        w("workgroupBarrier();")
        for e in range(ow // FR):
            w(f"subgroupMatrixStore(&Sc, sg * {FR * scw}u + {e * FR}u, out_{e}, false, {scw}u);")
        w("workgroupBarrier();")
    w(f"if (row >= {nrows}) {{ return; }}")
    if spec.kind == "lse":
        w("var lse_out = m + log(l);")
        w("if (is_ninf(m)) { lse_out = ninf_f(); }")
        w("if (bad) { lse_out = nan_f(); }")
        w(f"if (h == 0u) {{ {out_st.store('out', 'b * p.L + row', 'lse_out')}; }}")
    else:
        w.open(f"for (var u = 0u; u < {wl}u; u = u + 1u)")
        w(f"let col = h * {wl}u + u;")
        if spec.kind == "forward":
            w("var o = acc[u] / l;")
            w("if (bad || is_ninf(m)) { o = nan_f(); }")
            w("if (p.S == 0u) { o = 0.0; }")
        else:
            scale = "p.scale * " if spec.kind in ("q", "k") else ""
            w(f"let o = {scale}(Sc[sbase + col] + acc[u]);")
        w(f"{out_st.store('out', f'(b * {nrows} + row) * {ow}u + col', 'o')};")
        w.close()
    w.close()
    return check_fragment_alignment(w.text(), f"tensor-core attention {spec}")
