"""WGSL source generator for tiled, register-blocked, batched matmul.

``C[b] = op(A[b]) @ op(B[b])`` where ``op`` optionally transposes. One
generator covers every variant; :class:`TileConfig` says how work is split
and :class:`MatmulLayout` how operands sit in memory.

How the kernel is built, and why:

* A workgroup computes a ``bm x bn`` tile of C; each thread a ``tm x tn``
  block held in *named* ``vec4`` accumulators (``acc_r_c``). naga lowers a
  function-local array to memory the driver often cannot keep in registers;
  named variables always become registers.
* Operand tiles go through shared memory stored k-major (``As[k][m]``,
  ``Bs[k][n]``) so the inner loop reads one ``vec4`` of A and one of B per
  4x4 outer product. Rows are padded by ``pad`` floats so that the transposing
  stores from a k-contiguous operand hit distinct banks.
* A thread's rows are ``tm/4`` groups of 4 spaced by ``4 * threads_y`` (same
  for columns): neighbouring threads then read neighbouring ``vec4``s, which
  is conflict-free, instead of strided ones.
* Two shared buffers: the next k-tile is fetched from global memory into
  registers while the current one is multiplied, then stored to the other
  buffer; one barrier per k-tile.
* Global loads are ``vec4`` when the contiguous dimension, leading dimension,
  batch stride and offset are multiples of 4 (``MatmulLayout.vec_*``).
* Interior tiles run without bounds checks; the branch is uniform per
  workgroup, so edge tiles pay for checks and interior ones do not.
* Workgroups are numbered linearly (split over x/y/z by the dispatcher) and
  visited in groups of ``group_m`` tile-rows so that concurrently running
  tiles share rows of A and columns of B in L2.
* Sizes, strides and offsets are uniforms: one pipeline per (config, layout).
* ``MatmulLayout.gather_b`` names a B that is never written out but gathered
  element by element as its tiles are loaded (:data:`GATHERS`): an implicit-GEMM
  convolution. ``"columns"``: the column (im2col) matrix of a convolution's input,
  a B row index a window tap ``(c, i, j)`` and a column index an output position
  (with ``trans_b`` the other way round, the weight gradient's ``cols^T``), zero in
  the padding. ``"grad_columns"``: for the input gradient, a row index a tap
  ``(o, i, j)`` of the output gradient and a column index an input pixel, zero
  where no window of that tap covers the pixel. The window geometry is a second
  uniform block (:data:`CONV_UNIFORMS`). A thread loads the same B columns of
  every k-tile, so what a gather needs from an output position or input pixel
  alone (its image, window origin) is computed once, before the k-loop.

Example::

    >>> src = generate_matmul_wgsl(TileConfig(64, 64, 8, 4, 4), MatmulLayout())
    >>> "fn main" in src and "acc_3_0" in src
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pipelines import LINEAR_WORKGROUP_WGSL, UniformLayout
from .nn_conv_geometry import CONV_UNIFORMS

MATMUL_UNIFORMS = UniformLayout(
    [
        ("M", "u32"), ("N", "u32"), ("K", "u32"), ("total", "u32"),
        ("lda", "u32"), ("ldb", "u32"), ("ldc", "u32"), ("tiles_n", "u32"),
        ("sa", "u32"), ("sb", "u32"), ("sc", "u32"), ("tiles_m", "u32"),
        ("oa", "u32"), ("ob", "u32"), ("oc", "u32"), ("inner", "u32"),
        ("sa_outer", "u32"), ("sb_outer", "u32"), ("sc_outer", "u32"), ("pad0", "u32"),
    ]
)

#: Where batch entry ``bidx``'s three matrices start. The batch index is ``outer * inner + i``
#: with a stride per level (``sa_outer``, ``sa``), so two batch dimensions of any strides run
#: in one launch: (batch, heads) of a ``(B, T, H, D)`` tensor read in place, without a transpose.
BATCH_BASES_WGSL = (
    "let bout = bidx / p.inner;",
    "let binn = bidx % p.inner;",
    "let Abase = p.oa + bout * p.sa_outer + binn * p.sa;",
    "let Bbase = p.ob + bout * p.sb_outer + binn * p.sb;",
    "let cbase = p.oc + bout * p.sc_outer + binn * p.sc;",
)


@dataclass(frozen=True)
class TileConfig:
    """How a matmul is split: workgroup tile ``bm x bn``, k-step ``bk``,
    per-thread block ``tm x tn``; ``pad`` floats of shared-row padding;
    ``group_m`` tile-rows per L2 swizzle group; ``a_rows``: keep a
    k-contiguous A as rows in shared memory (no transposing stores) and read
    4 k-steps of a row per vec4, instead of transposing it to k-major;
    ``warp_cols``: lay each 32-thread warp out as a ``32/warp_cols x
    warp_cols`` block of thread tiles (0: threads row-major across the tile),
    which changes how many distinct shared-memory vec4s a warp reads.

    Example::

        >>> cfg = TileConfig(128, 128, 8, 8, 8)
        >>> cfg.threads, cfg.name
        (256, '128x128x8_8x8')
    """

    bm: int = 128
    bn: int = 128
    bk: int = 8
    tm: int = 8
    tn: int = 8
    pad: int = 4
    group_m: int = 8
    a_rows: bool = False
    warp_cols: int = 0


    @property
    def threads_x(self) -> int:
        return self.bn // self.tn

    @property
    def threads_y(self) -> int:
        return self.bm // self.tm

    @property
    def threads(self) -> int:
        return self.threads_x * self.threads_y

    @property
    def name(self) -> str:
        return (f"{self.bm}x{self.bn}x{self.bk}_{self.tm}x{self.tn}" + ("_arows" if self.a_rows else "")
                + (f"_w{32 // self.warp_cols}x{self.warp_cols}" if self.warp_cols else ""))

    def shared_bytes(self) -> int:
        """Workgroup memory used, at most (two f32 buffers of each padded operand tile)."""
        return 2 * self.bk * ((self.bm + self.pad) + (self.bn + self.pad)) * 4

    def problems(self, max_threads: int = 1024, max_shared: int = 16384) -> list[str]:
        """Reasons this config cannot be generated (empty when it can)."""
        out = []
        if self.tm % 4 or self.tn % 4:
            out.append("tm and tn must be multiples of 4 (vec4 accumulators)")
        if self.bm % self.tm or self.bn % self.tn:
            out.append("bm, bn must be multiples of tm, tn")
        if self.pad % 4:
            out.append("pad must be a multiple of 4 (vec4-aligned shared rows)")
        if self.bk % 4:
            out.append("bk must be a multiple of 4")
        if self.warp_cols and (self.threads_x % self.warp_cols or self.threads_y % (32 // self.warp_cols)
                               or 32 % self.warp_cols):
            out.append("warp_cols must divide 32 and the thread grid")
        if self.threads > max_threads:
            out.append(f"{self.threads} threads exceed {max_threads}")
        if self.shared_bytes() > max_shared:
            out.append(f"{self.shared_bytes()} bytes of workgroup memory exceed {max_shared}")
        return out


@dataclass(frozen=True)
class MatmulLayout:
    """Operand memory layout: transposes, vec4-ability, storage dtype.

    ``trans_a``: A is stored K x M (so ``op(A) = A^T``); ``trans_b``: B is
    stored N x K. ``vec_a/vec_b/vec_c`` say the operand can be read/written as
    ``vec4`` (see :func:`vec4_ok`). ``dtype`` is the storage type (``f32`` or
    ``f16``, the latter needs the ``shader-f16`` feature); accumulation is f32.

    Example::

        >>> MatmulLayout(trans_b=True).key
        'nt_v111_f32'
    """

    trans_a: bool = False
    trans_b: bool = False
    vec_a: bool = True
    vec_b: bool = True
    vec_c: bool = True
    dtype: str = "f32"
    gather_b: str = ""  # a key of GATHERS: B gathered as it is loaded (implicit GEMM; see module doc)
    gather_kernel: tuple = ()  # (kh, kw) of the gathered convolution, constants of the kernel

    @property
    def key(self) -> str:
        t = ("t" if self.trans_a else "n") + ("t" if self.trans_b else "n")
        v = "".join("1" if f else "0" for f in (self.vec_a, self.vec_b, self.vec_c))
        gather = f"_{self.gather_b}{self.gather_kernel[0]}x{self.gather_kernel[1]}" if self.gather_b else ""
        return f"{t}_v{v}_{self.dtype}{gather}"


def batch_params(batch: int, inner_batch: int | None, outer_strides: tuple[int, int, int]) -> dict:
    """The uniforms of the two batch levels (see :data:`BATCH_BASES_WGSL`): ``inner_batch``
    entries per outer index (all of ``batch`` when None) and the outer strides of A, B and C.

    Example::

        >>> batch_params(256, 8, (131072, 131072, 131072))["inner"], batch_params(3, None, (0, 0, 0))["inner"]
        (8, 3)
    """
    inner = max(1, batch if inner_batch is None else inner_batch)
    if batch % inner:
        raise ValueError(f"matmul: a batch of {batch} is not a whole number of inner batches of {inner}")
    sa, sb, sc = outer_strides if batch > inner else (0, 0, 0)
    return dict(inner=inner, sa_outer=sa, sb_outer=sb, sc_outer=sc)


def _bucket(n: int) -> int:
    """Round up to a power of 4 (16, 64, 256, ...): classes coarse enough to
    tune rarely, fine enough that one tile shape suits the whole class."""
    b = 16
    while b < n:
        b *= 4
    return b


def shape_class(M: int, N: int, K: int, batch: int, layout: MatmulLayout) -> str:
    """Key under which a tuned choice is stored.

    Example::

        >>> shape_class(4096, 4096, 4096, 1, MatmulLayout())
        'm4096_n4096_k4096_b1_nn_v111_f32'
        >>> shape_class(7, 13, 5, 3, MatmulLayout(vec_a=False))
        'm16_n16_k16_b8_nn_v011_f32'
    """
    b = 1 if batch == 1 else (8 if batch <= 8 else 64)
    return f"m{_bucket(M)}_n{_bucket(N)}_k{_bucket(K)}_b{b}_{layout.key}"


def vec4_ok(contiguous_extent: int, ld: int, batch_stride: int, offset: int, *more_strides: int) -> bool:
    """Whether an operand can be accessed as vec4: everything a multiple of 4
    (``more_strides``: the outer batch level's stride, where there is one).

    The extent condition makes each vec4 entirely inside or outside the
    matrix, so edge checks stay per-vec4.

    Example::

        >>> vec4_ok(64, 64, 4096, 0), vec4_ok(13, 13, 169, 0)
        (True, False)
    """
    return all(v % 4 == 0 for v in (contiguous_extent, ld, batch_stride, offset, *more_strides))


class _Writer:
    """Indented line collector (keeps the generator readable)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, line: str = "") -> None:
        self.lines.append("    " * self.depth + line if line else "")

    def open(self, line: str) -> None:
        self((line + " {").strip())
        self.depth += 1

    def close(self, suffix: str = "") -> None:
        self.depth -= 1
        self("}" + suffix)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass(frozen=True)
class _Operand:
    """What the generator needs to know to load one operand tile."""

    name: str        # buffer name in WGSL: A or B
    smem: str        # shared array name
    outer: int       # tile extent along M (A) or N (B)
    contig_k: bool   # contiguous storage along k (else along the outer dim)
    vec: bool
    ld: str          # uniform names
    stride: str
    offset: str
    extent: str      # "M" or "N"
    origin: str      # "row0" or "col0"
    reg: str         # prefetch register prefix
    rows: bool = False  # shared tile stored [o][k] (k-contiguous rows), else [k][o]


def _operands(cfg: TileConfig, lay: MatmulLayout) -> tuple[_Operand, _Operand]:
    # Only A may keep rows: a warp reads 2 distinct A rows per load (cheap);
    # B rows would put 16 threads on rows 4 apart, an 8-way bank conflict.
    a_rows = cfg.a_rows and not lay.trans_a and lay.vec_a
    a = _Operand("A", "As", cfg.bm, not lay.trans_a, lay.vec_a, "lda", "sa", "oa", "M", "row0", "pa", a_rows)
    b = _Operand("B", "Bs", cfg.bn, lay.trans_b, lay.vec_b, "ldb", "sb", "ob", "N", "col0", "pb")
    return a, b


def _load_plan(cfg: TileConfig, op: _Operand) -> tuple[int, int, int]:
    """(vector width, number of load units, loads per thread) for one tile."""
    vw = 4 if op.vec else 1
    units = op.outer * cfg.bk // vw
    return vw, units, -(-units // cfg.threads)


def _emit_load_coords(w: _Writer, cfg: TileConfig, op: _Operand) -> None:
    """Per-thread tile coordinates (o, k) of each load unit; fixed for the kernel."""
    vw, units, per_thread = _load_plan(cfg, op)
    for j in range(per_thread):
        i = f"(lid + {j * cfg.threads}u)"
        if op.contig_k:
            per_row = cfg.bk // vw
            w(f"let {op.reg}o{j} = {i} / {per_row}u;")
            w(f"let {op.reg}k{j} = ({i} % {per_row}u) * {vw}u;")
        else:
            per_row = op.outer // vw
            w(f"let {op.reg}k{j} = {i} / {per_row}u;")
            w(f"let {op.reg}o{j} = ({i} % {per_row}u) * {vw}u;")
        # Rows past the tile (when units do not divide by threads) are masked.
        w(f"let {op.reg}in{j} = {i} < {units}u;")


def _global_index(op: _Operand, j: int, k0: str) -> str:
    o = f"({op.origin} + {op.reg}o{j})"
    k = f"({k0} + {op.reg}k{j})"
    if op.contig_k:
        return f"{op.name}base + {o} * p.{op.ld} + {k}"
    return f"{op.name}base + {k} * p.{op.ld} + {o}"


#: The gathers of an implicit-GEMM B operand, by name and by which of B's coordinates a load unit
#: keeps over the k-loop: a thread loads the same B columns (index ``o``) of every k-tile, so what
#: depends on ``o`` alone is computed once per load unit before the loop (``gather_fixed(o)``, a
#: struct kept in registers) and each element costs only what depends on its ``k`` too
#: (``gather_at(fixed, base, k)``). A tap is ``(ch, i, j)``: a channel of the group, a kernel row
#: and column; KH and KW are constants of the generated kernel (one pipeline per kernel size), so a
#: tap's division and remainders by them are multiply-shifts, not ~20-instruction divisions by a
#: uniform.
#: ``columns``: the input value (input channel ``ch``) under the tap at output position ``pos`` (an
#: index over ``SPLIT`` images' positions, for a weight gradient summing several images), 0 in the
#: padding; B is (taps x positions), or with ``trans_b`` (positions x taps, the weight gradient's
#: ``cols^T``). ``grad_columns``: the output gradient (output channel ``ch``) that input pixel ``pos``
#: receives through the tap, 0 where that tap's window never covers the pixel (stride, padding, a
#: cropped gradient); B is (taps x pixels).
_TAP = """    let j = tap % KW;
    let i = (tap / KW) % KH;
    let ch = tap / (KW * KH);
"""
GATHERS = {
    # Forward: o is an output position (fixed per unit), k a tap.
    ("columns", False): """struct Gather { image: u32, h0: i32, w0: i32 }
fn gather_fixed(pos: u32) -> Gather {
    let per_image = cv.OH * cv.OW;
    let q = pos % per_image;
    return Gather((pos / per_image) * cv.C * cv.H * cv.W,
                  i32((q / cv.OW) * cv.SH) - i32(cv.PH), i32((q % cv.OW) * cv.SW) - i32(cv.PW));
}
fn gather_at(g: Gather, base: u32, tap: u32) -> GatherT {
""" + _TAP + """    let h = g.h0 + i32(i * cv.DH);
    let w = g.w0 + i32(j * cv.DW);
    if (h < 0 || h >= i32(cv.H) || w < 0 || w >= i32(cv.W)) { return GatherT(0.0); }
    return GatherT(B[base + g.image + (ch * cv.H + u32(h)) * cv.W + u32(w)]);
}
""",
    # Weight gradient (cols^T): o is a tap, k an output position. Nothing is kept per unit: holding
    # the tap's offsets in registers made these GEMMs 5-13% slower on an H100 than decomposing the
    # tap (by constants) per element.
    ("columns", True): """struct Gather { tap: u32 }
fn gather_fixed(tap: u32) -> Gather {
    return Gather(tap);
}
fn gather_at(g: Gather, base: u32, pos: u32) -> GatherT {
    let tap = g.tap;
""" + _TAP + """    let per_image = cv.OH * cv.OW;
    let q = pos % per_image;
    let h = i32((q / cv.OW) * cv.SH + i * cv.DH) - i32(cv.PH);
    let w = i32((q % cv.OW) * cv.SW + j * cv.DW) - i32(cv.PW);
    if (h < 0 || h >= i32(cv.H) || w < 0 || w >= i32(cv.W)) { return GatherT(0.0); }
    return GatherT(B[base + (((pos / per_image) * cv.C + ch) * cv.H + u32(h)) * cv.W + u32(w)]);
}
""",
    # Input gradient: o is an input pixel (fixed per unit), k a tap. Unit strides (a uniform
    # branch: no divergence) skip the stride divisions.
    ("grad_columns", False): """struct Gather { th: i32, tw: i32 }
fn gather_fixed(pos: u32) -> Gather {
    return Gather(i32(pos / cv.W + cv.PH), i32(pos % cv.W + cv.PW));
}
fn gather_at(g: Gather, base: u32, tap: u32) -> GatherT {
""" + _TAP + """    let th = g.th - i32(i * cv.DH);
    let tw = g.tw - i32(j * cv.DW);
    if (th < 0 || tw < 0) { return GatherT(0.0); }
    var oh = u32(th);
    var ow = u32(tw);
    if (cv.SH != 1u || cv.SW != 1u) {
        if (oh % cv.SH != 0u || ow % cv.SW != 0u) { return GatherT(0.0); }
        oh = oh / cv.SH;
        ow = ow / cv.SW;
    }
    if (oh >= cv.OH || ow >= cv.OW) { return GatherT(0.0); }
    return GatherT(B[base + (ch * cv.OH + oh) * cv.OW + ow]);
}
""",
}


def check_gather(lay: MatmulLayout) -> None:
    """Raise ValueError unless ``lay``'s gathered B (if any) is one of :data:`GATHERS`, read
    element by element, with the convolution's kernel size."""
    if lay.gather_b and (lay.vec_b or (lay.gather_b, lay.trans_b) not in GATHERS or len(lay.gather_kernel) != 2):
        raise ValueError(f"gather_b={lay.gather_b!r} with trans_b={lay.trans_b}: must be one of {sorted(GATHERS)}, "
                         f"read element by element (vec_b False), with the kernel size as gather_kernel "
                         f"(got {lay.gather_kernel})")


def gather_wgsl(lay: MatmulLayout, elem: str) -> str:
    """The declarations a kernel gathering B needs: the convolution's uniforms (binding 4), its
    kernel size as constants, and ``gather_fixed``/``gather_at`` returning ``elem`` values.

    Example::

        >>> src = gather_wgsl(MatmulLayout(vec_b=False, gather_b="columns", gather_kernel=(3, 3)), "f16")
        >>> "alias GatherT = f16;" in src and "const KH: u32 = 3u;" in src
        True
    """
    check_gather(lay)
    return "\n".join([CONV_UNIFORMS.wgsl_struct("Conv"), "@group(0) @binding(4) var<uniform> cv: Conv;",
                      f"const KH: u32 = {lay.gather_kernel[0]}u;", f"const KW: u32 = {lay.gather_kernel[1]}u;",
                      f"alias GatherT = {elem};", GATHERS[(lay.gather_b, lay.trans_b)]])


def _gather_load(op: _Operand, j: int, k0: str, clamp: bool) -> str:
    """The gathered value of B's load unit ``j`` (``clamp``: k kept inside the matrix, for edge tiles;
    the unit's fixed part, ``gb{j}``, was computed from a clamped ``o`` before the loop)."""
    k = f"({k0} + {op.reg}k{j})"
    return f"gather_at(gb{j}, Bbase, {f'min({k}, p.K - 1u)' if clamp else k})"


def _emit_gather_fixed(w: _Writer, cfg: TileConfig, op: _Operand) -> None:
    """Each B load unit's k-independent part of its gathers (see :data:`GATHERS`)."""
    for j in range(_load_plan(cfg, op)[2]):
        w(f"let gb{j} = gather_fixed(min({op.origin} + {op.reg}o{j}, p.N - 1u));")


def _emit_global_loads(w: _Writer, cfg: TileConfig, op: _Operand, lay: MatmulLayout, k0: str, checked: bool) -> None:
    vw, _, per_thread = _load_plan(cfg, op)
    vt = "vec4<f32>" if vw == 4 else "f32"
    if op.name == "B" and lay.gather_b:
        for j in range(per_thread):
            if checked:
                ok = f"{op.reg}in{j} && ({op.origin} + {op.reg}o{j} < p.N) && ({k0} + {op.reg}k{j} < p.K)"
                w(f"{op.reg}{j} = select(0.0, {_gather_load(op, j, k0, True)}, {ok});")
            else:
                w(f"{op.reg}{j} = {_gather_load(op, j, k0, False)};")
        return
    for j in range(per_thread):
        idx = f"({_global_index(op, j, k0)})" + (" / 4u" if vw == 4 else "")
        load = f"{op.name}[{idx}]" if lay.dtype == "f32" else f"{vt}({op.name}[{idx}])"
        if checked:
            ok = f"{op.reg}in{j} && ({op.origin} + {op.reg}o{j} < p.{op.extent}) && ({k0} + {op.reg}k{j} < p.K)"
            w(f"let {op.reg}ok{j} = {ok};")
            safe = f"{op.name}[select(0u, {idx}, {op.reg}ok{j})]"
            if lay.dtype != "f32":
                safe = f"{vt}({safe})"
            w(f"{op.reg}{j} = select({vt}(0.0), {safe}, {op.reg}ok{j});")
        else:
            w(f"{op.reg}{j} = {load};")


def _emit_shared_stores(w: _Writer, cfg: TileConfig, op: _Operand, buf: int) -> None:
    """Registers -> shared buffer ``buf`` (0 or 1, a constant: see module doc)."""
    vw, units, per_thread = _load_plan(cfg, op)
    masked = units % cfg.threads != 0
    for j in range(per_thread):
        last_partial = masked and j == per_thread - 1
        if last_partial:
            w.open(f"if ({op.reg}in{j})")
        krow = f"{buf * cfg.bk}u + {op.reg}k{j}"
        col, comp = f"{op.reg}o{j} / 4u", f"{op.reg}o{j} % 4u"
        if op.rows:
            w(f"{op.smem}[{buf * op.outer}u + {op.reg}o{j}][{op.reg}k{j} / 4u] = {op.reg}{j};")
        elif vw == 4 and not op.contig_k:
            w(f"{op.smem}[{krow}][{col}] = {op.reg}{j};")
        elif vw == 4:
            # k-contiguous vec4 -> four k-rows of the k-major tile.
            for e, c in enumerate("xyzw"):
                w(f"{op.smem}[{krow} + {e}u][{col}][{comp}] = {op.reg}{j}.{c};")
        else:
            w(f"{op.smem}[{krow}][{col}][{comp}] = {op.reg}{j};")
        if last_partial:
            w.close()


def _emit_tile_load(w: _Writer, cfg: TileConfig, lay: MatmulLayout, ops, k0: str) -> None:
    """Fetch one k-tile of both operands into registers, checked only at edges."""
    w.open(f"if (interior && {k0} + {cfg.bk}u <= p.K)")
    for op in ops:
        _emit_global_loads(w, cfg, op, lay, k0, checked=False)
    w.close(" else {")
    w.depth += 1
    for op in ops:
        _emit_global_loads(w, cfg, op, lay, k0, checked=True)
    w.close()


def _emit_compute(w: _Writer, cfg: TileConfig, ops, buf: int) -> None:
    """bk rank-1 updates of the thread's tm x tn block from shared buffer ``buf``.

    Fully unrolled, four k-steps per block. Row indices are constants plus
    loop-invariant terms, so naga's index clamps are hoisted and the driver
    folds the constants into the loads' addresses. A k-major tile yields a
    vec4 over 4 rows (or columns) per k; an A kept in rows yields a vec4 over
    4 k per row, and the same number of loads covers the same 4 k-steps.
    """
    a_op = ops[0]
    for kq in range(cfg.bk // 4):
        w.open("")
        if a_op.rows:
            for r in range(cfg.tm):
                w(f"let ar{r} = As[{buf * cfg.bm}u + arow{r}][{kq}];")
        else:
            for kk in range(4):
                for g in range(cfg.tm // 4):
                    w(f"let a{g}_{kk} = As[{buf * cfg.bk + 4 * kq + kk}][acol{g}];")
        for kk in range(4):
            for g in range(cfg.tn // 4):
                w(f"let b{g}_{kk} = Bs[{buf * cfg.bk + 4 * kq + kk}][bcol{g}];")
        for kk in range(4):
            for r in range(cfg.tm):
                a = f"ar{r}.{'xyzw'[kk]}" if a_op.rows else f"a{r // 4}_{kk}.{'xyzw'[r % 4]}"
                for c in range(cfg.tn // 4):
                    w(f"acc_{r}_{c} = fma(vec4<f32>({a}), b{c}_{kk}, acc_{r}_{c});")
        w.close()


def _emit_store_c(w: _Writer, cfg: TileConfig, lay: MatmulLayout) -> None:
    ct = "vec4<f32>" if lay.dtype == "f32" else "vec4<f16>"
    for r in range(cfg.tm):
        row = f"row0 + {(r // 4) * 4 * cfg.threads_y + r % 4}u + ty * 4u"
        w(f"let crow{r} = {row};")
    for r in range(cfg.tm):
        for c in range(cfg.tn // 4):
            col = f"col0 + {c * 4 * cfg.threads_x}u + tx * 4u"
            val = f"acc_{r}_{c}" if lay.dtype == "f32" else f"{ct}(acc_{r}_{c})"
            w.open("")
            w(f"let col = {col};")
            w(f"let ci = cbase + crow{r} * p.ldc + col;")
            if lay.vec_c:
                w(f"if (interior || (crow{r} < p.M && col < p.N)) {{ C[ci / 4u] = {val}; }}")
            else:
                for e, comp in enumerate("xyzw"):
                    w(f"if (interior || (crow{r} < p.M && col + {e}u < p.N)) {{ C[ci + {e}u] = {val}.{comp}; }}")
            w.close()


def generate_matmul_wgsl(cfg: TileConfig, lay: MatmulLayout) -> str:
    """WGSL compute shader for ``cfg`` and ``lay`` (bindings: A, B, C, params).

    Dispatch ``total = batch * tiles_m * tiles_n`` workgroups (linear, split
    by :func:`rustyasg.wgpu.pipelines.split_workgroups`).

    Example::

        >>> src = generate_matmul_wgsl(TileConfig(), MatmulLayout(trans_a=True))
        >>> "@workgroup_size(256)" in src
        True
    """
    bad = cfg.problems(max_threads=1 << 30, max_shared=1 << 30)
    if bad:
        raise ValueError(f"tile config {cfg.name}: " + "; ".join(bad))
    check_gather(lay)
    ops = _operands(cfg, lay)
    st = "f32" if lay.dtype == "f32" else "f16"
    a_t = f"vec4<{st}>" if lay.vec_a else st
    b_t = f"vec4<{st}>" if lay.vec_b else st
    c_t = f"vec4<{st}>" if lay.vec_c else st

    w = _Writer()
    if lay.dtype == "f16":
        w("enable f16;")
    w(MATMUL_UNIFORMS.wgsl_struct("Params"))
    w(f"@group(0) @binding(0) var<storage, read> A: array<{a_t}>;")
    w(f"@group(0) @binding(1) var<storage, read> B: array<{b_t}>;")
    w(f"@group(0) @binding(2) var<storage, read_write> C: array<{c_t}>;")
    w("@group(0) @binding(3) var<uniform> p: Params;")
    if lay.gather_b:
        w(gather_wgsl(lay, "f32"))
    # [2 buffers * bk rows][padded row of vec4]: row index = buffer*bk + k.
    if ops[0].rows:
        # [2 buffers * bm rows][bk/4 vec4]; unpadded: a quarter-warp's vec4
        # stores then cover 32 consecutive banks.
        w(f"var<workgroup> As: array<array<vec4<f32>, {cfg.bk // 4}>, {2 * cfg.bm}>;")
    else:
        w(f"var<workgroup> As: array<array<vec4<f32>, {(cfg.bm + cfg.pad) // 4}>, {2 * cfg.bk}>;")
    w(f"var<workgroup> Bs: array<array<vec4<f32>, {(cfg.bn + cfg.pad) // 4}>, {2 * cfg.bk}>;")
    w(LINEAR_WORKGROUP_WGSL)
    w(f"@compute @workgroup_size({cfg.threads})")
    w.open(
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, "
        "@builtin(local_invocation_index) lid: u32)"
    )
    w("let lin = linear_workgroup(wid, nwg);")
    w("if (lin >= p.total) { return; }")
    w("let per_batch = p.tiles_m * p.tiles_n;")
    w("let bidx = lin / per_batch;")
    w("let t = lin % per_batch;")
    w(f"let group_size = {cfg.group_m}u * p.tiles_n;")
    w(f"let first_m = (t / group_size) * {cfg.group_m}u;")
    w(f"let rows_here = min(p.tiles_m - first_m, {cfg.group_m}u);")
    w("let row0 = (first_m + (t % group_size) % rows_here) * " + f"{cfg.bm}u;")
    w("let col0 = ((t % group_size) / rows_here) * " + f"{cfg.bn}u;")
    w(f"let interior = row0 + {cfg.bm}u <= p.M && col0 + {cfg.bn}u <= p.N;")
    if cfg.warp_cols:
        wc, wr = cfg.warp_cols, 32 // cfg.warp_cols
        warps_x = cfg.threads_x // wc
        w("let lane = lid % 32u;")
        w("let warp = lid / 32u;")
        w(f"let tx = (warp % {warps_x}u) * {wc}u + lane % {wc}u;")
        w(f"let ty = (warp / {warps_x}u) * {wr}u + lane / {wc}u;")
    else:
        w(f"let tx = lid % {cfg.threads_x}u;")
        w(f"let ty = lid / {cfg.threads_x}u;")
    for line in BATCH_BASES_WGSL:
        w(line)
    for r in range(cfg.tm):
        for c in range(cfg.tn // 4):
            w(f"var acc_{r}_{c} = vec4<f32>(0.0);")
    for op in ops:
        _emit_load_coords(w, cfg, op)
        if op.name == "B" and lay.gather_b:
            _emit_gather_fixed(w, cfg, op)
        vw, _, per_thread = _load_plan(cfg, op)
        vt = "vec4<f32>" if vw == 4 else "f32"
        for j in range(per_thread):
            w(f"var {op.reg}{j}: {vt};")
    for g in range(cfg.tm // 4):
        w(f"let acol{g} = ty + {g * cfg.threads_y}u;")
    for r in range(cfg.tm):
        w(f"let arow{r} = ty * 4u + {(r // 4) * 4 * cfg.threads_y + r % 4}u;")
    for g in range(cfg.tn // 4):
        w(f"let bcol{g} = tx + {g * cfg.threads_x}u;")
    w(f"let nk = (p.K + {cfg.bk - 1}u) / {cfg.bk}u;")
    # Prologue: tile 0 into shared buffer 0.
    _emit_tile_load(w, cfg, lay, ops, "0u")
    for op in ops:
        _emit_shared_stores(w, cfg, op, 0)
    w("workgroupBarrier();")
    # Two k-tiles per iteration so each phase names its shared buffer by a
    # constant. Phase b multiplies buffer b while tile kt+b+1 is fetched into
    # registers, then stores it into buffer 1-b; one barrier per phase.
    w.open("for (var kt = 0u; kt < nk; kt = kt + 2u)")
    for phase in (0, 1):
        if phase == 1:
            w.open("if (kt + 1u < nk)")
        w(f"let more{phase} = kt + {phase + 1}u < nk;")
        w(f"let knext{phase} = (kt + {phase + 1}u) * {cfg.bk}u;")
        w.open(f"if (more{phase})")
        _emit_tile_load(w, cfg, lay, ops, f"knext{phase}")
        w.close()
        _emit_compute(w, cfg, ops, phase)
        w.open(f"if (more{phase})")
        for op in ops:
            _emit_shared_stores(w, cfg, op, 1 - phase)
        w.close()
        w("workgroupBarrier();")
        if phase == 1:
            w.close()
    w.close()
    _emit_store_c(w, cfg, lay)
    w.close()
    return w.text()
