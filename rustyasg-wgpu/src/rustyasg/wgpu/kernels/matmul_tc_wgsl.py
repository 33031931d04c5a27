"""WGSL for f16 matmul on tensor cores (Dawn's subgroup matrices), f32 accumulation.

``C[b] = op(A[b]) @ op(B[b])`` with f16 operands, like :mod:`.matmul_wgsl`
(same uniforms, same :class:`~.matmul_wgsl.MatmulLayout`), but the inner
product runs on ``subgroup_matrix`` fragments (WGSL extension
``chromium_experimental_subgroup_matrix``; Dawn lowers it to Vulkan's
cooperative matrices, i.e. the GPU's tensor cores).

How the kernel is built, and why:

* A workgroup of ``sg_m x sg_n`` subgroups computes a ``bm x bn`` tile; each
  subgroup a ``bm/sg_m x bn/sg_n`` block of ``fm x fn`` result fragments held
  in named variables (registers).
* Operand tiles are staged in workgroup memory in the operand's own layout
  (``subgroupMatrixLoad``'s ``col_major`` flag absorbs transposes, so the
  staging copy never transposes). Rows are padded by 8 halves (16 bytes) so
  fragment loads of consecutive rows start in different banks.
* Double buffering: the next k-tile is fetched from global memory into
  registers while the tensor cores work on the current one, then stored into
  the other buffer; one barrier per k-tile. ``buffers=1`` keeps one staged
  tile (the register prefetch stays) and pays a second barrier per k-tile
  for twice the k-depth in the same workgroup memory.
* ``staged=False`` skips workgroup memory: fragments are loaded straight from
  storage (L1/L2 serve the reuse); it needs full tiles, and is kept as a
  tuner candidate (best where shared memory limits the staged tiles).
* Interior workgroups (tile inside M, N, and K a multiple of ``bk``) load
  without bounds checks and store f32 results straight from the fragments;
  edge workgroups and f16 outputs go through a per-subgroup f32 scratch
  fragment and write element by element with checks and conversion.
* A gathered B (``MatmulLayout.gather_b``: an implicit-GEMM convolution's
  column matrix, never written out) is staged like any other tile, but each
  element comes from ``gather_at`` of :mod:`.matmul_wgsl`'s :data:`GATHERS`
  as it is fetched, with the part that depends on the load unit's fixed n
  (``gather_fixed``) computed once before the k-loop. Staged configs only.
* Fragment offsets come from ``@builtin(subgroup_id)``: subgroup-matrix
  loads and stores need subgroup-uniform offsets, which Tint proves for that
  builtin (not for ``local_invocation_index / 32``). The workgroup has
  ``subgroups * subgroup_size`` invocations for the adapter's one subgroup
  size (32 on NVIDIA).

Example::

    >>> src = generate_tc_matmul_wgsl(TcConfig(), MatmulLayout(dtype="f16"), FragmentShape())
    >>> "subgroupMatrixMultiplyAccumulate" in src and "@workgroup_size(128)" in src
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..pipelines import LINEAR_WORKGROUP_WGSL
from .matmul_wgsl import BATCH_BASES_WGSL, MATMUL_UNIFORMS, MatmulLayout, _Writer, gather_wgsl

PAD = 8  # halves of padding per staged row (16 bytes)

#: Fragment loads and stores on NVIDIA round a workgroup address down to this many bytes.
FRAGMENT_ALIGN = 16
_TYPE_BYTES = {"f16": 2, "f32": 4, "u32": 4, "i32": 4, "atomic<u32>": 4, "vec4<f16>": 8, "vec4<f32>": 16}
_WORKGROUP_VAR = re.compile(r"var<workgroup>\s+(\w+)\s*:\s*([^;]+);")


def workgroup_bytes(src: str) -> dict:
    """Each workgroup variable of ``src`` with its size in bytes.

    >>> workgroup_bytes("var<workgroup> As: array<f16, 40>;\\nvar<workgroup> n: array<atomic<u32>, 4>;")
    {'As': 80, 'n': 16}
    """
    out = {}
    for name, typ in _WORKGROUP_VAR.findall(src):
        typ = typ.strip()
        count = 1
        if typ.startswith("array<"):
            typ, _, n = typ[len("array<"):-1].rpartition(",")
            typ, count = typ.strip(), int(n.strip().rstrip("u"))
        out[name] = _TYPE_BYTES[typ] * count
    return out


def check_fragment_alignment(src: str, what: str) -> str:
    """``src``, after checking that every workgroup variable is a multiple of :data:`FRAGMENT_ALIGN`
    bytes. The driver lays the variables out one after the other, and a fragment load or store
    rounds its address down to 16 bytes: behind a 4-byte variable every fragment read two halves
    early (measured on an H100 under Dawn, where the scalar reads and writes were right)."""
    bad = {n: b for n, b in workgroup_bytes(src).items() if b % FRAGMENT_ALIGN}
    if bad:
        raise ValueError(f"{what}: workgroup variables {bad} (bytes) are not multiples of {FRAGMENT_ALIGN}: "
                         "pad them, or fragments after them read shifted data")
    return src
KERNEL_VERSION = 3  # bump when generated code changes: tuned choices of older versions are dropped


@dataclass(frozen=True)
class FragmentShape:
    """One subgroup-matrix configuration of the adapter: ``m x k`` times
    ``k x n`` f16 fragments into an ``m x n`` f32 result, on subgroups of
    ``subgroup_size`` invocations.

    Example::

        >>> FragmentShape.from_configs([{"component_type": "f16", "result_component_type": "f32",
        ...     "m": 16, "n": 16, "k": 16, "min_subgroup_size": 32, "max_subgroup_size": 32}])
        FragmentShape(m=16, n=16, k=16, subgroup_size=32)
    """

    m: int = 16
    n: int = 16
    k: int = 16
    subgroup_size: int = 32

    @classmethod
    def from_configs(cls, configs) -> "FragmentShape | None":
        """The best f16 x f16 -> f32 shape among Dawn's ``subgroup_matrix_configs`` (None if none fits).

        The kernel needs one subgroup size (min == max) to lay subgroups out.
        """
        fits = [c for c in configs if c.get("component_type") == "f16" and c.get("result_component_type") == "f32"
                and c.get("min_subgroup_size") == c.get("max_subgroup_size")]
        if not fits:
            return None
        best = max(fits, key=lambda c: (c["m"] * c["n"] * c["k"], c["k"]))
        return cls(best["m"], best["n"], best["k"], best["max_subgroup_size"])


@dataclass(frozen=True)
class TcConfig:
    """How a tensor-core matmul is split: workgroup tile ``bm x bn``, k-step
    ``bk``, ``sg_m x sg_n`` subgroups per workgroup.

    Example::

        >>> TcConfig(128, 128, 32, 2, 4).name
        'tc128x128x32_2x4'
    """

    bm: int = 128
    bn: int = 128
    bk: int = 32
    sg_m: int = 2
    sg_n: int = 2
    staged: bool = True  # False: fragments straight from storage (tiles need not fit shared memory)
    buffers: int = 2     # staged k-tiles in workgroup memory: 2 (double buffering) or 1

    @property
    def subgroups(self) -> int:
        return self.sg_m * self.sg_n

    @property
    def name(self) -> str:
        suffix = "_direct" if not self.staged else ("_sb" if self.buffers == 1 else "")
        return f"tc{self.bm}x{self.bn}x{self.bk}_{self.sg_m}x{self.sg_n}" + suffix

    def tile_halves(self, lay: MatmulLayout) -> tuple[int, int]:
        """Halves in one staged A tile and one B tile (padded rows)."""
        a = self.bm * (self.bk + PAD) if not lay.trans_a else self.bk * (self.bm + PAD)
        b = self.bk * (self.bn + PAD) if not lay.trans_b else self.bn * (self.bk + PAD)
        return a, b

    def shared_bytes(self, frag: FragmentShape) -> int:
        """Workgroup memory at most (``buffers`` of each tile in f16, plus f32 scratch fragments)."""
        lay_worst = max(sum(self.tile_halves(MatmulLayout(trans_a=ta, trans_b=tb))) for ta in (0, 1) for tb in (0, 1))
        tiles = 2 * self.buffers * lay_worst if self.staged else 0
        return tiles + 4 * self.subgroups * frag.m * frag.n

    def problems(self, frag: FragmentShape, max_threads: int = 1024, max_shared: int = 49152) -> list[str]:
        """Reasons this config cannot run with fragments ``frag`` (empty when it can)."""
        out = []
        wm, wn = self.bm // self.sg_m, self.bn // self.sg_n
        if self.bm % self.sg_m or self.bn % self.sg_n or wm % frag.m or wn % frag.n:
            out.append(f"subgroup blocks {wm}x{wn} must be multiples of the {frag.m}x{frag.n} fragment")
        if self.bk % frag.k or self.bk % 4:
            out.append(f"bk={self.bk} must be a multiple of the fragment's k={frag.k} and of 4")
        if self.buffers not in (1, 2):
            out.append(f"buffers={self.buffers} must be 1 or 2")
        threads = self.subgroups * frag.subgroup_size
        if threads > max_threads:
            out.append(f"{threads} invocations exceed {max_threads}")
        for extent in (self.bm * self.bk, self.bn * self.bk) if self.staged else ():
            if extent % (4 * threads):
                out.append(f"a {extent}-element tile does not split into vec4 loads over {threads} invocations")
        if self.shared_bytes(frag) > max_shared:
            out.append(f"{self.shared_bytes(frag)} bytes of workgroup memory exceed {max_shared}")
        return out


@dataclass(frozen=True)
class _Stage:
    """One operand's staged tile: ``rows x cols`` in its own layout."""

    name: str      # A or B
    smem: str      # workgroup array
    rows: int
    cols: int
    vec: bool
    ld: str        # uniform name of the leading dimension
    row_origin: str
    col_origin: str
    row_extent: str
    col_extent: str
    reg: str
    gather: bool = False  # B gathered element by element (implicit GEMM), see matmul_wgsl.GATHERS
    n_is_row: bool = False  # B's n (a gather's fixed coordinate) runs along the staged rows

    def n_of(self, j: int) -> str:
        """Load unit ``j``'s offset along n in the tile."""
        return f"{self.reg}r{j}" if self.n_is_row else f"{self.reg}c{j}"

    def k_of(self, j: int) -> str:
        """Load unit ``j``'s offset along k in the tile."""
        return f"{self.reg}c{j}" if self.n_is_row else f"{self.reg}r{j}"

    @property
    def stride(self) -> int:
        return self.cols + PAD

    @property
    def tile(self) -> int:
        return self.rows * self.stride


def _stages(cfg: TcConfig, lay: MatmulLayout) -> tuple[_Stage, _Stage]:
    if lay.trans_a:  # stored K x M
        a = _Stage("A", "As", cfg.bk, cfg.bm, lay.vec_a, "lda", "k0", "row0", "p.K", "p.M", "ra")
    else:
        a = _Stage("A", "As", cfg.bm, cfg.bk, lay.vec_a, "lda", "row0", "k0", "p.M", "p.K", "ra")
    gather = bool(lay.gather_b)
    if lay.trans_b:  # stored N x K
        b = _Stage("B", "Bs", cfg.bn, cfg.bk, lay.vec_b, "ldb", "col0", "k0", "p.N", "p.K", "rb", gather, True)
    else:
        b = _Stage("B", "Bs", cfg.bk, cfg.bn, lay.vec_b, "ldb", "k0", "col0", "p.K", "p.N", "rb", gather, False)
    return a, b


def _units(st: _Stage, threads: int) -> tuple[int, int]:
    vw = 4 if st.vec else 1
    return vw, (st.rows * st.cols // vw) // threads


def _emit_coords(w: _Writer, st: _Stage, threads: int) -> None:
    vw, per = _units(st, threads)
    per_row = st.cols // vw
    for j in range(per):
        w(f"let {st.reg}r{j} = (lid + {j * threads}u) / {per_row}u;")
        w(f"let {st.reg}c{j} = ((lid + {j * threads}u) % {per_row}u) * {vw}u;")
        w(f"var {st.reg}{j}: {'vec4<f16>' if vw == 4 else 'f16'};")
        if st.gather:  # what the unit's gathers need from its fixed n, once (see matmul_wgsl.GATHERS)
            w(f"let gb{j} = gather_fixed(min(col0 + {st.n_of(j)}, p.N - 1u));")


def _emit_loads(w: _Writer, st: _Stage, threads: int, checked: bool) -> None:
    vw, per = _units(st, threads)
    zero = "vec4<f16>(0.0h)" if vw == 4 else "0.0h"
    if st.gather:
        for j in range(per):
            n, k = f"(col0 + {st.n_of(j)})", f"(k0 + {st.k_of(j)})"
            if checked:
                w(f"if ({n} < p.N && {k} < p.K) {{ {st.reg}{j} = gather_at(gb{j}, Bbase, {k}); }} "
                  f"else {{ {st.reg}{j} = 0.0h; }}")
            else:
                w(f"{st.reg}{j} = gather_at(gb{j}, Bbase, {k});")
        return
    for j in range(per):
        gr, gc = f"({st.row_origin} + {st.reg}r{j})", f"({st.col_origin} + {st.reg}c{j})"
        idx = f"{st.name}base + {gr} * p.{st.ld} + {gc}"
        load = f"{st.name}[({idx}) / 4u]" if vw == 4 else f"{st.name}[{idx}]"
        if checked:
            w(f"if ({gr} < {st.row_extent} && {gc} < {st.col_extent}) {{ {st.reg}{j} = {load}; }} "
              f"else {{ {st.reg}{j} = {zero}; }}")
        else:
            w(f"{st.reg}{j} = {load};")


def _emit_stores(w: _Writer, st: _Stage, threads: int, buf: str) -> None:
    vw, per = _units(st, threads)
    for j in range(per):
        base = f"({buf}) * {st.tile}u + {st.reg}r{j} * {st.stride}u + {st.reg}c{j}"
        if vw == 1:
            w(f"{st.smem}[{base}] = {st.reg}{j};")
        else:
            for e in range(4):
                w(f"{st.smem}[{base} + {e}u] = {st.reg}{j}[{e}];")


def _emit_fetch(w: _Writer, stages, threads: int, k0: str) -> None:
    """Load k-tile ``k0`` into registers: unchecked in interior workgroups of a K that tiles evenly."""
    w(f"let k0 = {k0};")
    w.open("if (fast)")
    for st in stages:
        _emit_loads(w, st, threads, False)
    w.close(" else {")
    w.depth += 1
    for st in stages:
        _emit_loads(w, st, threads, True)
    w.close()


def _left_offset(lay: MatmulLayout, a: _Stage, m: str, k: str) -> tuple[str, str]:
    return (f"{k} * {a.stride}u + {m}", "true") if lay.trans_a else (f"{m} * {a.stride}u + {k}", "false")


def _right_offset(lay: MatmulLayout, b: _Stage, n: str, k: str) -> tuple[str, str]:
    return (f"{n} * {b.stride}u + {k}", "true") if lay.trans_b else (f"{k} * {b.stride}u + {n}", "false")


def _emit_staged_loop(w: _Writer, cfg: TcConfig, lay: MatmulLayout, frag: FragmentShape, a: _Stage, b: _Stage,
                      threads: int, fm_count: int, fn_count: int, left: str, right: str) -> None:
    """k-loop over tiles staged (double-buffered) in workgroup memory."""
    for st in (a, b):
        _emit_coords(w, st, threads)
    w(f"let nk = (p.K + {cfg.bk - 1}u) / {cfg.bk}u;")
    w.open("")
    _emit_fetch(w, (a, b), threads, "0u")
    for st in (a, b):
        _emit_stores(w, st, threads, "0u")
    w.close()
    w("workgroupBarrier();")
    w.open("for (var kt = 0u; kt < nk; kt = kt + 1u)")
    w("let cur = kt % 2u;" if cfg.buffers == 2 else "let cur = 0u;")
    w("let more = kt + 1u < nk;")
    w.open("if (more)")
    _emit_fetch(w, (a, b), threads, f"(kt + 1u) * {cfg.bk}u")
    w.close()
    w(f"let aoff = cur * {a.tile}u;")
    w(f"let boff = cur * {b.tile}u;")
    for s in range(cfg.bk // frag.k):
        ks = f"{s * frag.k}u"
        for i in range(fm_count):
            off, cm = _left_offset(lay, a, f"(wm0 + {i * frag.m}u)", ks)
            w(f"let a{s}_{i} = subgroupMatrixLoad<{left}>(&As, aoff + {off}, {cm}, {a.stride}u);")
        for j in range(fn_count):
            off, cm = _right_offset(lay, b, f"(wn0 + {j * frag.n}u)", ks)
            w(f"let b{s}_{j} = subgroupMatrixLoad<{right}>(&Bs, boff + {off}, {cm}, {b.stride}u);")
        for i in range(fm_count):
            for j in range(fn_count):
                w(f"acc_{i}_{j} = subgroupMatrixMultiplyAccumulate(a{s}_{i}, b{s}_{j}, acc_{i}_{j});")
    if cfg.buffers == 1:
        w("workgroupBarrier();")  # every subgroup has read the tile before it is overwritten
    w.open("if (more)")
    for st in (a, b):
        _emit_stores(w, st, threads, "1u - cur" if cfg.buffers == 2 else "0u")
    w.close()
    w("workgroupBarrier();")
    w.close()


def _emit_direct_loop(w: _Writer, cfg: TcConfig, lay: MatmulLayout, frag: FragmentShape,
                      fm_count: int, fn_count: int, left: str, right: str) -> None:
    """k-loop loading fragments straight from storage (the caller guarantees full tiles)."""
    w.open(f"for (var k = 0u; k < p.K; k = k + {frag.k}u)")
    for i in range(fm_count):
        m = f"(row0 + wm0 + {i * frag.m}u)"
        off, cm = (f"k * p.lda + {m}", "true") if lay.trans_a else (f"{m} * p.lda + k", "false")
        w(f"let a_{i} = subgroupMatrixLoad<{left}>(&A, Abase + {off}, {cm}, p.lda);")
    for j in range(fn_count):
        n = f"(col0 + wn0 + {j * frag.n}u)"
        off, cm = (f"{n} * p.ldb + k", "true") if lay.trans_b else (f"k * p.ldb + {n}", "false")
        w(f"let b_{j} = subgroupMatrixLoad<{right}>(&B, Bbase + {off}, {cm}, p.ldb);")
    for i in range(fm_count):
        for j in range(fn_count):
            w(f"acc_{i}_{j} = subgroupMatrixMultiplyAccumulate(a_{i}, b_{j}, acc_{i}_{j});")
    w.close()


def generate_tc_matmul_wgsl(cfg: TcConfig, lay: MatmulLayout, frag: FragmentShape, out_dtype: str = "f32") -> str:
    """WGSL for ``cfg``/``lay`` on fragments ``frag``; C is stored as ``out_dtype`` (f32 or f16).

    Bindings: A, B (f16), C, params (:data:`~.matmul_wgsl.MATMUL_UNIFORMS`); dispatch
    ``batch * tiles_m * tiles_n`` workgroups, linear as for :mod:`.matmul_wgsl`.
    """
    bad = cfg.problems(frag, max_threads=1 << 30, max_shared=1 << 30)
    if bad:
        raise ValueError(f"tensor-core config {cfg.name}: " + "; ".join(bad))
    if out_dtype not in ("f32", "f16"):
        raise ValueError(f"tensor-core matmul output must be f32 or f16, not {out_dtype}")
    if lay.gather_b and not cfg.staged:
        raise ValueError(f"tensor-core config {cfg.name} loads fragments from storage: it cannot gather B")
    threads = cfg.subgroups * frag.subgroup_size
    a, b = _stages(cfg, lay)
    wm, wn = cfg.bm // cfg.sg_m, cfg.bn // cfg.sg_n
    fm_count, fn_count = wm // frag.m, wn // frag.n
    left = f"subgroup_matrix_left<f16, {frag.k}, {frag.m}>"
    right = f"subgroup_matrix_right<f16, {frag.n}, {frag.k}>"
    result = f"subgroup_matrix_result<f32, {frag.n}, {frag.m}>"
    scratch = frag.m * frag.n

    w = _Writer()
    w("enable f16;")
    w("enable subgroups;")
    w("enable chromium_experimental_subgroup_matrix;")
    w(MATMUL_UNIFORMS.wgsl_struct("Params"))
    staged = cfg.staged
    a_t = "vec4<f16>" if (a.vec and staged) else "f16"
    b_t = "vec4<f16>" if (b.vec and staged) else "f16"
    w(f"@group(0) @binding(0) var<storage, read> A: array<{a_t}>;")
    w(f"@group(0) @binding(1) var<storage, read> B: array<{b_t}>;")
    w(f"@group(0) @binding(2) var<storage, read_write> C: array<{out_dtype}>;")
    w("@group(0) @binding(3) var<uniform> p: Params;")
    if lay.gather_b:
        w(gather_wgsl(lay, "f16"))
    if staged:
        w(f"var<workgroup> As: array<f16, {cfg.buffers * a.tile}>;")
        w(f"var<workgroup> Bs: array<f16, {cfg.buffers * b.tile}>;")
    w(f"var<workgroup> Cs: array<f32, {cfg.subgroups * scratch}>;")
    w(LINEAR_WORKGROUP_WGSL)
    w(f"@compute @workgroup_size({threads})")
    w.open("fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, "
           "@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32, "
           "@builtin(subgroup_invocation_id) lane: u32)")
    w("let lin = linear_workgroup(wid, nwg);")
    w("if (lin >= p.total) { return; }")
    w("let per_batch = p.tiles_m * p.tiles_n;")
    w("let bidx = lin / per_batch;")
    w("let t = lin % per_batch;")
    # Tile-rows visited in groups of 8 so that running workgroups share operands in L2.
    w("let group_size = 8u * p.tiles_n;")
    w("let first_m = (t / group_size) * 8u;")
    w("let rows_here = min(p.tiles_m - first_m, 8u);")
    w(f"let row0 = (first_m + (t % group_size) % rows_here) * {cfg.bm}u;")
    w(f"let col0 = ((t % group_size) / rows_here) * {cfg.bn}u;")
    w(f"let interior = row0 + {cfg.bm}u <= p.M && col0 + {cfg.bn}u <= p.N;")
    w(f"let fast = interior && p.K % {cfg.bk}u == 0u;")
    w(f"let wm0 = (sg / {cfg.sg_n}u) * {wm}u;")
    w(f"let wn0 = (sg % {cfg.sg_n}u) * {wn}u;")
    for line in BATCH_BASES_WGSL:
        w(line)
    for i in range(fm_count):
        for j in range(fn_count):
            w(f"var acc_{i}_{j} = {result}();")
    if staged:
        _emit_staged_loop(w, cfg, lay, frag, a, b, threads, fm_count, fn_count, left, right)
    else:
        _emit_direct_loop(w, cfg, lay, frag, fm_count, fn_count, left, right)
    if out_dtype == "f32":
        w.open("if (interior)")
        for i in range(fm_count):
            for j in range(fn_count):
                w(f"subgroupMatrixStore(&C, cbase + (row0 + wm0 + {i * frag.m}u) * p.ldc + col0 + wn0 + "
                  f"{j * frag.n}u, acc_{i}_{j}, false, p.ldc);")
        w("return;")
        w.close()
    # Edge tiles and f16 results: through this subgroup's scratch fragment, element by element.
    conv = "f16" if out_dtype == "f16" else ""
    for i in range(fm_count):
        for j in range(fn_count):
            w(f"subgroupMatrixStore(&Cs, sg * {scratch}u, acc_{i}_{j}, false, {frag.n}u);")
            w("workgroupBarrier();")
            w.open(f"for (var e = lane; e < {scratch}u; e = e + {frag.subgroup_size}u)")
            w(f"let r = row0 + wm0 + {i * frag.m}u + e / {frag.n}u;")
            w(f"let c = col0 + wn0 + {j * frag.n}u + e % {frag.n}u;")
            w(f"if (r < p.M && c < p.N) {{ C[cbase + r * p.ldc + c] = {conv}(Cs[sg * {scratch}u + e]); }}")
            w.close()
            w("workgroupBarrier();")
    w.close()
    return check_fragment_alignment(w.text(), f"tensor-core matmul {cfg.name}")
