"""Flash attention in WGSL: ``attention``, ``attention_lse`` and ``attention_backward``.

The kernels never hold the ``(L, S)`` score matrix (the op's semantics are in
:mod:`rustyasg.core.ops.attention`):

- **forward** (``attention``, and ``attention_lse`` the same loop without values): a
  workgroup per (batch, block of ``BR`` queries), one thread per query row holding its
  query and output accumulator in registers. Tiles of ``BC`` keys (and values) are
  staged in workgroup memory; each thread folds the tile's keys one by one into an online
  softmax (running max ``m``, running sum ``l``, accumulator rescaled by
  ``exp(m_old - m_new)`` when the maximum grows: a few times per row, and no per-tile
  score array in registers). Under ``causal`` the loop stops at the block's last query:
  tiles past the diagonal are never loaded.
- **backward**, without float atomics: ``wrt="q"`` runs a thread per query row over key
  tiles (``p = exp(s - lse)``, ``ds = p * (dout . v - delta)``, ``dq += ds * k``);
  ``wrt="k"`` and ``wrt="v"`` run a thread per key row over tiles of queries with their
  ``dout``, ``lse`` and ``delta`` staged (``dk += ds * q``, ``dv += p * dout``); a causal
  key block starts at its first key's query.

Edge rows follow the float64 reference exactly, spelled out because WGSL leaves
``max``/``min``/``exp`` of NaN and inf to the driver: a key that is not allowed is
skipped (a NaN in its value never reaches the output); an allowed NaN or ``+inf``
score makes the row NaN; a row whose allowed scores are all ``-inf`` (or that has no
allowed key) is NaN in ``attention`` and ``-inf`` in ``attention_lse``; an allowed
key of score ``-inf`` still multiplies its value by 0 (``0 * inf`` is NaN, as in
numpy); ``S == 0`` gives zeros.

Vectors of 4 are used for the feature axes when both head sizes are multiples of 4.
Head sizes are compile-time constants (each shape has its own pipeline), up to
:data:`MAX_HEAD_DIM`; the key tile ``BC`` is the largest that fits the adapter's
workgroup memory.

Example::

    >>> spec = AttnSpec("forward", E=64, EV=64, causal=True, keep=True)
    >>> src = attention_wgsl(spec)
    >>> "var<workgroup> ks" in src and "var<workgroup> kp" in src and "CAUSAL: bool = true" in src
    True
    >>> spec.shared_bytes  # 32 keys, their values and keep flags
    16512
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from textwrap import indent
from typing import Any, Sequence

import numpy as np

from ..pipelines import LINEAR_WORKGROUP_WGSL, KernelLaunch
from .api import KernelError, header
from .attention_common import EDGE_HELPERS_WGSL, ATTN_UNIFORMS
from .attention_tc_wgsl import tc_attention_wgsl, tc_subgroups
from .matmul_tc import tensor_core_shape
from .storage import STORAGES

#: Largest head size (of queries/keys and of values) the kernels hold in registers.
MAX_HEAD_DIM = 256
#: Query (forward, dq) or key (dk, dv) rows per workgroup: one thread each.
ROWS = 64
#: Key (or query) rows per staged tile, at most; fewer where workgroup memory is small.
TILE = 32

# Which operands each kernel binds, in order (the optional key_keep is bound after them, the output last).
_OPERANDS = {"forward": ("q", "k", "v"), "lse": ("q", "k"), "q": ("q", "k", "v", "dout", "lse", "delta"),
             "k": ("q", "k", "v", "dout", "lse", "delta"), "v": ("q", "k", "v", "dout", "lse", "delta")}
_STATS = ("lse", "delta")


@dataclass(frozen=True)
class AttnSpec:
    """One attention kernel: ``kind`` (``forward``, ``lse``, or the gradient ``q``/``k``/``v``),
    head sizes, masks, storages (names in :data:`~rustyasg.wgpu.kernels.storage.STORAGES`)
    and the key tile.

    Example::

        >>> AttnSpec("k", E=8, EV=6, keep=True).bindings
        ('q', 'k', 'v', 'dout', 'lse', 'delta', 'keep', 'out')
        >>> AttnSpec("k", E=8, EV=6).width, AttnSpec("k", E=8, EV=8).width
        (1, 4)
    """

    kind: str
    E: int
    EV: int
    causal: bool = False
    keep: bool = False
    elem: str = "f32"
    out_elem: str = "f32"
    tile: int = TILE

    @property
    def bindings(self) -> tuple:
        return _OPERANDS[self.kind] + (("keep",) if self.keep else ()) + ("out",)

    @property
    def width(self) -> int:
        """Vector width of the feature axes: 4 where both head sizes allow it."""
        return 4 if self.E % 4 == 0 and self.EV % 4 == 0 else 1

    @property
    def staged(self) -> dict:
        """Workgroup arrays: name -> (vector count per tile row, is a feature row)."""
        if self.kind in ("forward", "lse", "q"):
            rows = {"ks": self.E, "vs": self.EV} if self.kind != "lse" else {"ks": self.E}
            return {**rows, **({"kp": 1} if self.keep else {})}
        return {"qs": self.E, "ds": self.EV, "ls": 1, **({"dl": 1} if self.kind == "k" else {})}

    @property
    def shared_bytes(self) -> int:
        """Bytes of workgroup memory the kernel declares."""
        return 4 * self.tile * sum(self.staged.values())


def _vec(spec: AttnSpec) -> str:
    return "vec4<f32>" if spec.width == 4 else "f32"


def _dot(spec: AttnSpec, a: str, b: str) -> str:
    return f"dot({a}, {b})" if spec.width == 4 else f"({a} * {b})"


def _vload(spec: AttnSpec, storage: str, arr: str, base: str) -> str:
    """WGSL: ``width`` consecutive elements of ``arr`` from ``base`` as one f32 vector (or scalar)."""
    st = STORAGES[storage]
    if spec.width == 1:
        return st.load(arr, base)
    return "vec4<f32>(" + ", ".join(st.load(arr, f"{base} + {c}u") for c in range(4)) + ")"


def _vstore(spec: AttnSpec, arr: str, base: str, value: str) -> str:
    st = STORAGES[spec.out_elem]
    if spec.width == 1:
        return st.store(arr, base, value) + ";"
    return " ".join(st.store(arr, f"{base} + {c}u", f"{value}[{c}]") + ";" for c in range(4))


def _decls(spec: AttnSpec) -> str:
    lines = []
    for n, name in enumerate(spec.bindings):
        if name == "out":
            access, elem = "read_write", STORAGES[spec.out_elem].elem
        else:
            access = "read"
            elem = "u32" if name == "keep" else ("f32" if name in _STATS else STORAGES[spec.elem].elem)
        lines.append(f"@group(0) @binding({n}) var<storage, {access}> {name}: array<{elem}>;")
    lines.append(f"@group(0) @binding({len(spec.bindings)}) var<uniform> p: Params;")
    for name, per_row in spec.staged.items():
        vec = _vec(spec) if per_row > 1 else ("u32" if name == "kp" else "f32")
        count = per_row // spec.width if per_row > 1 else 1
        lines.append(f"var<workgroup> {name}: array<{vec}, {spec.tile * count}>;")
    return "\n".join(lines)


def _stage(spec: AttnSpec, name: str, src: str, row: str, limit: str) -> str:
    """WGSL: every thread copies its share of tile ``name`` (rows ``t0 + r`` of ``src`` in this
    batch, zero past ``limit``) from storage to workgroup memory."""
    per_row = spec.staged[name]
    if per_row == 1:
        if name == "kp":
            load = "keep[b * p.S + t0 + r]"
            zero = "0u"
        else:
            load, zero = f"{src}[b * p.L + t0 + r]", "0.0"
        return (f"    for (var r = lane; r < BC; r = r + BR) {{\n"
                f"        if (t0 + r < {limit}) {{ {name}[r] = {load}; }} else {{ {name}[r] = {zero}; }}\n    }}")
    n = per_row // spec.width
    base = f"(b * {row} + t0 + r) * {per_row}u + c * {spec.width}u"
    return (f"    for (var x = lane; x < BC * {n}u; x = x + BR) {{\n"
            f"        let r = x / {n}u;\n        let c = x % {n}u;\n"
            f"        if (t0 + r < {limit}) {{ {name}[x] = {_vload(spec, spec.elem, src, base)}; }}"
            f" else {{ {name}[x] = {_vec(spec)}(0.0); }}\n    }}")


def _row_load(spec: AttnSpec, reg: str, src: str, n: int, row: str) -> str:
    return (f"    var {reg}: array<{_vec(spec)}, {n // spec.width}>;\n"
            f"    for (var c = 0u; c < {n // spec.width}u; c = c + 1u) {{\n"
            f"        {reg}[c] = {_vload(spec, spec.elem, src, f'{row} * {n}u + c * {spec.width}u')};\n    }}")


def _dot_loop(spec: AttnSpec, reg: str, tile: str, n: int, r: str) -> str:
    nv = n // spec.width
    return (f"var acc_dot = 0.0;\n"
            f"                    for (var c = 0u; c < {nv}u; c = c + 1u) {{ acc_dot += "
            f"{_dot(spec, f'{reg}[c]', f'{tile}[{r} * {nv}u + c]')}; }}")


def _forward_body(spec: AttnSpec) -> str:
    nv = spec.EV // spec.width
    vec = _vec(spec)
    keep_ok = " && kp[jj] != 0u" if spec.keep else ""
    values = spec.kind == "forward"
    stage = _stage(spec, "ks", "k", "p.S", "p.S")
    if values:
        stage += "\n" + _stage(spec, "vs", "v", "p.S", "p.S")
    if spec.keep:
        stage += "\n" + _stage(spec, "kp", "keep", "p.S", "p.S")
    acc_decl = (f"    var acc: array<{vec}, {nv}>;\n"
                f"    for (var c = 0u; c < {nv}u; c = c + 1u) {{ acc[c] = {vec}(0.0); }}\n") if values else ""
    rescale = f"                            for (var c = 0u; c < {nv}u; c = c + 1u) {{ acc[c] = acc[c] * alpha; }}\n" if values else ""
    accumulate = (f"                        for (var c = 0u; c < {nv}u; c = c + 1u) "
                  f"{{ acc[c] = acc[c] + pj * vs[jj * {nv}u + c]; }}\n") if values else ""
    if values:
        finish = (f"    let orow = (b * p.L + i) * {spec.EV}u;\n"
                  f"    for (var c = 0u; c < {nv}u; c = c + 1u) {{\n"
                  f"        var o = acc[c] / l;\n"
                  f"        if (bad || is_ninf(m)) {{ o = {vec}(nan_f()); }}\n"
                  f"        if (p.S == 0u) {{ o = {vec}(0.0); }}\n"
                  f"        {_vstore(spec, 'out', f'orow + c * {spec.width}u', 'o')}\n    }}")
    else:
        finish = ("    var lse = m + log(l);\n    if (is_ninf(m)) { lse = ninf_f(); }\n"
                  "    if (bad) { lse = nan_f(); }\n    " + STORAGES[spec.out_elem].store("out", "b * p.L + i", "lse") + ";")
    return f"""
    let i = i0 + lane;
    let live = i < p.L;
    let qrow = b * p.L + min(i, p.L - 1u);
{_row_load(spec, "qr", "q", spec.E, "qrow")}
{acc_decl}    var m = ninf_f();
    var l = 0.0;
    var bad = false;
    // Keys past the block's last query are never allowed under causal: stop there.
    var kend = p.S;
    if (CAUSAL) {{ kend = min(p.S, i0 + BR); }}
    for (var t0 = 0u; t0 < kend; t0 = t0 + BC) {{
        workgroupBarrier();
{indent(stage, '    ')}
        workgroupBarrier();
        if (live) {{
            for (var jj = 0u; jj < BC; jj = jj + 1u) {{
                let j = t0 + jj;
                if (j < kend && (!CAUSAL || j <= i){keep_ok}) {{
                    {_dot_loop(spec, "qr", "ks", spec.E, "jj")}
                    let s = p.scale * acc_dot;
                    if (isnan_f(s) || is_pinf(s)) {{ bad = true; }} else {{
                        // A new maximum rescales what was summed so far (an old m of -inf scales it by 0).
                        if (s > m) {{
                            let alpha = exp_f(m - s);
                            l = l * alpha;
{rescale}                            m = s;
                        }}
                        var pj = 0.0;  // an allowed key of score -inf still multiplies its value (0 * inf is NaN)
                        if (!is_ninf(s)) {{ pj = exp_f(s - m); }}
                        l = l + pj;
{accumulate}                    }}
                }}
            }}
        }}
    }}
    if (!live) {{ return; }}
{finish}
"""


def _dq_body(spec: AttnSpec) -> str:
    nq, nv = spec.E // spec.width, spec.EV // spec.width
    vec = _vec(spec)
    keep_ok = " && kp[jj] != 0u" if spec.keep else ""
    stage = _stage(spec, "ks", "k", "p.S", "p.S") + "\n" + _stage(spec, "vs", "v", "p.S", "p.S")
    if spec.keep:
        stage += "\n" + _stage(spec, "kp", "keep", "p.S", "p.S")
    return f"""
    let i = i0 + lane;
    let live = i < p.L;
    let qrow = b * p.L + min(i, p.L - 1u);
{_row_load(spec, "qr", "q", spec.E, "qrow")}
{_row_load(spec, "gr", "dout", spec.EV, "qrow")}
    let lse_i = lse[qrow];
    let delta_i = delta[qrow];
    var acc: array<{vec}, {nq}>;
    for (var c = 0u; c < {nq}u; c = c + 1u) {{ acc[c] = {vec}(0.0); }}
    var kend = p.S;
    if (CAUSAL) {{ kend = min(p.S, i0 + BR); }}
    for (var t0 = 0u; t0 < kend; t0 = t0 + BC) {{
        workgroupBarrier();
{indent(stage, '    ')}
        workgroupBarrier();
        if (live) {{
            for (var jj = 0u; jj < BC; jj = jj + 1u) {{
                let j = t0 + jj;
                if (j < kend && (!CAUSAL || j <= i){keep_ok}) {{
                    {_dot_loop(spec, "qr", "ks", spec.E, "jj")}
                    let pj = exp_f(p.scale * acc_dot - lse_i);
                    var dp = 0.0;
                    for (var c = 0u; c < {nv}u; c = c + 1u) {{ dp += {_dot(spec, "gr[c]", f"vs[jj * {nv}u + c]")}; }}
                    let ds = pj * (dp - delta_i);
                    for (var c = 0u; c < {nq}u; c = c + 1u) {{ acc[c] = acc[c] + ds * ks[jj * {nq}u + c]; }}
                }}
            }}
        }}
    }}
    if (!live) {{ return; }}
    for (var c = 0u; c < {nq}u; c = c + 1u) {{
        {_vstore(spec, 'out', f'qrow * {spec.E}u + c * {spec.width}u', 'p.scale * acc[c]')}
    }}
"""


def _dkv_body(spec: AttnSpec) -> str:
    nq, nv = spec.E // spec.width, spec.EV // spec.width
    vec = _vec(spec)
    wrt_k = spec.kind == "k"
    n_out = nq if wrt_k else nv
    stage = "\n".join([_stage(spec, "qs", "q", "p.L", "p.L"), _stage(spec, "ds", "dout", "p.L", "p.L"),
                       _stage(spec, "ls", "lse", "", "p.L")] + ([_stage(spec, "dl", "delta", "", "p.L")] if wrt_k else []))
    keep = "keep[krow] != 0u" if spec.keep else "true"
    if wrt_k:
        update = (f"for (var c = 0u; c < {nv}u; c = c + 1u) {{ dp += {_dot(spec, 'ds[ii * ' + str(nv) + 'u + c]', 'vr[c]')}; }}\n"
                  f"                    let g = pj * (dp - dl[ii]);\n"
                  f"                    for (var c = 0u; c < {nq}u; c = c + 1u) {{ acc[c] = acc[c] + g * qs[ii * {nq}u + c]; }}")
        extra = _row_load(spec, "vr", "v", spec.EV, "krow")
        result, width_n = "p.scale * acc[c]", spec.E
    else:
        update = (f"for (var c = 0u; c < {nv}u; c = c + 1u) {{ acc[c] = acc[c] + pj * ds[ii * {nv}u + c]; }}")
        # dv reads neither v nor delta; a never-taken use keeps them in the binding layout.
        extra, result, width_n = "    if (p.groups == 0u) { _ = v[0]; _ = delta[0]; }", "acc[c]", spec.EV
    return f"""
    let j = i0 + lane;
    let krow = b * p.S + min(j, p.S - 1u);
    let live = j < p.S;
    let attends = live && {keep};
{_row_load(spec, "kr", "k", spec.E, "krow")}
{extra}
    var acc: array<{vec}, {n_out}>;
    for (var c = 0u; c < {n_out}u; c = c + 1u) {{ acc[c] = {vec}(0.0); }}
    // Queries before the block's first key never attend it under causal: start there.
    var qstart = 0u;
    if (CAUSAL) {{ qstart = i0; }}
    for (var t0 = qstart; t0 < p.L; t0 = t0 + BC) {{
        workgroupBarrier();
{indent(stage, '    ')}
        workgroupBarrier();
        if (attends) {{
            for (var ii = 0u; ii < BC; ii = ii + 1u) {{
                let i = t0 + ii;
                if (i < p.L && (!CAUSAL || j <= i)) {{
                    {_dot_loop(spec, "kr", "qs", spec.E, "ii")}
                    let pj = exp_f(p.scale * acc_dot - ls[ii]);
                    var dp = 0.0;
                    {update}
                }}
            }}
        }}
    }}
    if (!live) {{ return; }}
    for (var c = 0u; c < {n_out}u; c = c + 1u) {{
        {_vstore(spec, 'out', f'krow * {width_n}u + c * {spec.width}u', result)}
    }}
"""


@lru_cache(maxsize=None)
def attention_wgsl(spec: AttnSpec) -> str:
    """WGSL of the attention kernel ``spec``: ``ROWS`` threads per workgroup, one per query
    (forward, ``lse``, ``q``) or key (``k``, ``v``) row of one batch entry."""
    body = {"forward": _forward_body, "lse": _forward_body, "q": _dq_body, "k": _dkv_body, "v": _dkv_body}[spec.kind]
    storages = [STORAGES[spec.elem], STORAGES[spec.out_elem]]
    return "\n".join([
        header(*storages),
        ATTN_UNIFORMS.wgsl_struct("Params"),
        f"const BR: u32 = {ROWS}u;\nconst BC: u32 = {spec.tile}u;\nconst CAUSAL: bool = {str(spec.causal).lower()};",
        _decls(spec), EDGE_HELPERS_WGSL, LINEAR_WORKGROUP_WGSL,
        "@compute @workgroup_size(BR)",
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,",
        "        @builtin(local_invocation_index) lane: u32) {",
        "    let wg = linear_workgroup(wid, nwg);",
        "    if (wg >= p.groups) { return; }",
        "    let b = wg / p.blocks;",
        "    let i0 = (wg % p.blocks) * BR;",
        body(spec),
        "}",
    ]) + "\n"


def tile_for(spec: AttnSpec, shared_limit: int) -> int:
    """Largest key tile (a power of two up to :data:`TILE`) whose staged arrays fit ``shared_limit`` bytes.

    Example::

        >>> spec = AttnSpec("forward", E=64, EV=64, keep=True)
        >>> tile_for(spec, 16384), tile_for(spec, 49152)
        (16, 32)
    """
    per_tile = AttnSpec(spec.kind, spec.E, spec.EV, keep=spec.keep, tile=1).shared_bytes
    tile = TILE
    while tile > 1 and tile * per_tile > shared_limit:
        tile //= 2
    return tile


#: ``0`` keeps f16 attention on the scalar kernels; by default the tensor-core kernels
#: (:mod:`.attention_tc_wgsl`) run where they fit: on an H100 (2026-12-07) they pass every attention
#: test and beat the scalar fused kernels (forward 0.33 against 0.39 ms, forward + backward 1.42
#: against 2.01 ms at W5's shape), though the unfused chain of tensor-core GEMMs is faster still.
TENSOR_CORE_ATTENTION_ENV = "RUSTYASG_WGPU_ATTENTION_TC"


def tensor_core_attention() -> bool:
    """Whether the tensor-core attention kernels may run (``$RUSTYASG_WGPU_ATTENTION_TC``; ``0``: no)."""
    return os.environ.get(TENSOR_CORE_ATTENTION_ENV, "1").strip() != "0"


def make_attention_kernel(op: str):
    """The kernel (interface of :mod:`.api`) of ``op``: ``attention``, ``attention_lse`` or
    ``attention_backward`` (which of ``dq``/``dk``/``dv`` it writes comes from ``wrt``).

    Example::

        >>> make_attention_kernel("attention_backward").__name__
        'attention_backward'
    """
    n_operands = {"attention": 3, "attention_lse": 2, "attention_backward": 6}[op]

    def kernel(kb: Any, instr: Any, inputs: Sequence[Any], out: Any) -> list[KernelLaunch]:
        attrs = instr.attrs
        kind = {"attention": "forward", "attention_lse": "lse"}.get(op) or attrs["wrt"]
        q, k = inputs[0], inputs[1]
        E = int(q.shape[-1])
        EV = int(inputs[2].shape[-1]) if n_operands > 2 else E
        L, S = int(q.shape[-2]), int(k.shape[-2])
        if max(E, EV) > MAX_HEAD_DIM:
            raise KernelError.of(instr, inputs, f"head sizes up to {MAX_HEAD_DIM} are supported (got query/key "
                                 f"{E}, value {EV}); split the heads or run this op on the cpu backend")
        floats = {v.storage.name for v in inputs[:min(n_operands, 4)]}
        if len(floats) != 1 or not floats <= {"f32", "f16", "bf16"}:
            raise KernelError.of(instr, inputs, "query, key, value and dout need one float storage")
        spec = AttnSpec(kind, E, EV, bool(attrs.get("causal", False)), len(inputs) > n_operands,
                        floats.pop(), out.storage.name)
        shared = kb.limit("max-compute-workgroup-storage-size", 16384)
        spec = AttnSpec(**{**spec.__dict__, "tile": tile_for(spec, shared)})
        if out.size == 0:
            return []
        nb = int(np.prod(q.shape[:-2], dtype=np.int64))
        rows = S if kind in ("k", "v") else L
        frag = tensor_core_shape(kb.ctx) if tensor_core_attention() else None
        subgroups = tc_subgroups(spec, frag, shared)
        if subgroups:  # f16 heads of multiples of 16 on an adapter with subgroup matrices
            wgsl, per_group, label = tc_attention_wgsl(spec, subgroups, frag.subgroup_size), 16 * subgroups, "tc "
        else:
            wgsl, per_group, label = attention_wgsl(spec), ROWS, ""
        blocks = -(-rows // per_group)
        values = dict(L=L, S=S, groups=nb * blocks, blocks=blocks, scale=float(attrs.get("scale", 1.0)))
        return [kb.launch(wgsl, list(inputs) + [out], values["groups"], (ATTN_UNIFORMS, values),
                          f"{op} {label}{kind}")]

    kernel.__name__ = kernel.__qualname__ = op
    kernel.__doc__ = f"Kernel of ``{op}`` (see :mod:`rustyasg.wgpu.kernels.attention_wgsl`)."
    return kernel


KERNELS = {op: make_attention_kernel(op) for op in ("attention", "attention_lse", "attention_backward")}
