"""Singular values (``svdvals``) and their gradient (``svdvals_grad``) by one-sided Jacobi.

One workgroup owns one matrix of the batch. It copies the matrix into scratch as ``k = min(m, n)``
vectors of length ``L = max(m, n)`` (the columns of a tall matrix, the rows of a wide one), divided
by the largest ``|a|`` so squares neither overflow nor underflow in f32, and orthogonalises them
by Hestenes' method: a plane rotation of each pair of vectors makes them orthogonal, the same
rotation applied to ``V`` (started at the identity) keeps ``W = A V``. A sweep visits every pair
once, in round-robin rounds of disjoint pairs (one pair per thread, a storage barrier between
rounds); sweeps repeat until one rotates nothing (every pair orthogonal to ``TOL`` relative to its
norms), at most ``MAX_SWEEPS`` times. Then ``s_j = |w_j|`` (times the scale), ``u_j = w_j / s_j``:

* ``svdvals`` writes each ``s_j`` at its rank (the number of larger values, ties by index):
  descending order;
* ``svdvals_grad`` forms ``U diag(g) Vh = sum_j g[rank j] / s_j w_j v_j^T`` in the matrix's own
  orientation; a zero ``s_j`` contributes 0 (the core's convention).

A matrix holding NaN or +-inf (seen from its bits, which shader compilers may not fold away)
gives NaN everywhere. The work is ``O(sweeps * k^2 * L)`` per matrix on one workgroup: meant for
matrices up to a few hundred rows; larger ones are correct but slow.

Example::

    >>> "workgroupUniformLoad" in svd_wgsl(STORAGES["f32"], STORAGES["f32"], grad=False)
    True
"""

from __future__ import annotations

from .api import LINEAR_WORKGROUP_WGSL, STORAGES, KernelBuilder, KernelError, Storage, UniformLayout
from .storage import header

WORKGROUP = 64
MAX_SWEEPS = 40
LAYOUT = UniformLayout([("batch", "u32"), ("m", "u32"), ("n", "u32"), ("k", "u32"), ("L", "u32"),
                        ("tall", "u32"), ("tol", "f32")])


def tolerance(length: int) -> float:
    """Relative size of ``w_i . w_j`` below which a pair counts as orthogonal: f32 rounding over ``length`` terms.

    >>> tolerance(4) < tolerance(256)
    True
    """
    return 1.2e-7 * max(float(length), 8.0)


def _bindings(x: Storage, g: Storage | None, out: Storage) -> str:
    lines = [f"@group(0) @binding(0) var<storage, read> a: {x.array};"]
    if g is not None:
        lines.append(f"@group(0) @binding(1) var<storage, read> gs: {g.array};")
    slot = len(lines)
    lines += [f"@group(0) @binding({slot}) var<storage, read_write> out: {out.array};",
              f"@group(0) @binding({slot + 1}) var<storage, read_write> work: array<f32>;",
              LAYOUT.wgsl_struct("Params"),
              f"@group(0) @binding({slot + 2}) var<uniform> p: Params;"]
    return "\n".join(lines)


_JACOBI = """
const WG: u32 = {wg}u;
const MAX_SWEEPS: u32 = {sweeps}u;
var<workgroup> amax_bits: atomic<u32>;
var<workgroup> rotated: atomic<u32>;
var<workgroup> flag: u32;

// Rotate vectors i and j of W (at wb, length L) and of V (at vb, length k) to make w_i . w_j = 0.
fn rotate(wb: u32, vb: u32, i: u32, j: u32) -> bool {{
    let oi = wb + i * p.L;
    let oj = wb + j * p.L;
    var al = 0.0;
    var be = 0.0;
    var ga = 0.0;
    for (var e = 0u; e < p.L; e = e + 1u) {{
        let x = work[oi + e];
        let y = work[oj + e];
        al = al + x * x;
        be = be + y * y;
        ga = ga + x * y;
    }}
    if (abs(ga) <= p.tol * sqrt(al) * sqrt(be)) {{ return false; }}
    let zeta = (be - al) / (2.0 * ga);
    var t: f32;
    if (abs(zeta) > 1e15) {{
        t = 0.5 / zeta;
    }} else {{
        t = select(1.0, -1.0, zeta < 0.0) / (abs(zeta) + sqrt(1.0 + zeta * zeta));
    }}
    let c = 1.0 / sqrt(1.0 + t * t);
    let s = c * t;
    for (var e = 0u; e < p.L; e = e + 1u) {{
        let x = work[oi + e];
        let y = work[oj + e];
        work[oi + e] = c * x - s * y;
        work[oj + e] = s * x + c * y;
    }}
    let vi = vb + i * p.k;
    let vj = vb + j * p.k;
    for (var e = 0u; e < p.k; e = e + 1u) {{
        let x = work[vi + e];
        let y = work[vj + e];
        work[vi + e] = c * x - s * y;
        work[vj + e] = s * x + c * y;
    }}
    return true;
}}

@compute @workgroup_size({wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let mat = linear_workgroup(wid, nwg);
    if (mat >= p.batch) {{ return; }}
    let mn = p.m * p.n;
    let abase = mat * mn;
    let wb = mat * (p.k * p.L + p.k * p.k + 2u * p.k);  // W (k x L), V (k x k), norms (k), weights (k)
    let vb = wb + p.k * p.L;
    let sb = vb + p.k * p.k;
    let cb = sb + p.k;

    // Largest |a| by its bits: NaN and inf are the patterns >= 0x7f800000.
    if (lid == 0u) {{ atomicStore(&amax_bits, 0u); }}
    workgroupBarrier();
    var mine = 0u;
    for (var i = lid; i < mn; i = i + WG) {{
        mine = max(mine, bitcast<u32>({load_a}) & 0x7fffffffu);
    }}
    atomicMax(&amax_bits, mine);
    workgroupBarrier();
    if (lid == 0u) {{ flag = atomicLoad(&amax_bits); }}
    let big = workgroupUniformLoad(&flag);
    if (big >= 0x7f800000u) {{
        let nan = bitcast<f32>(0x7fc00000u);
        for (var i = lid; i < {out_count}; i = i + WG) {{ {store_nan}; }}
        return;
    }}
    let scale = select(1.0, bitcast<f32>(big), big >= 0x00800000u);

    for (var i = lid; i < p.k * p.L; i = i + WG) {{
        let j = i / p.L;
        let e = i % p.L;
        let src = select(j * p.n + e, e * p.n + j, p.tall == 1u);
        work[wb + i] = {load_src} / scale;
    }}
    for (var i = lid; i < p.k * p.k; i = i + WG) {{
        work[vb + i] = select(0.0, 1.0, i / p.k == i % p.k);
    }}
    storageBarrier();

    let k2 = p.k + (p.k & 1u);  // an odd count gets a dummy vector that sits out its round
    for (var sweep = 0u; sweep < MAX_SWEEPS; sweep = sweep + 1u) {{
        if (lid == 0u) {{ atomicStore(&rotated, 0u); }}
        workgroupBarrier();
        for (var r = 0u; r + 1u < k2; r = r + 1u) {{
            for (var q = lid; q < k2 / 2u; q = q + WG) {{
                var i = k2 - 1u;
                var j = r;
                if (q > 0u) {{
                    i = (r + q) % (k2 - 1u);
                    j = (r + k2 - 1u - q) % (k2 - 1u);
                }}
                if (i < p.k && j < p.k && rotate(wb, vb, i, j)) {{ atomicStore(&rotated, 1u); }}
            }}
            storageBarrier();
        }}
        workgroupBarrier();
        if (lid == 0u) {{ flag = atomicLoad(&rotated); }}
        if (workgroupUniformLoad(&flag) == 0u) {{ break; }}
    }}

    for (var j = lid; j < p.k; j = j + WG) {{
        var ss = 0.0;
        for (var e = 0u; e < p.L; e = e + 1u) {{
            let w = work[wb + j * p.L + e];
            ss = ss + w * w;
        }}
        work[sb + j] = sqrt(ss);
    }}
    storageBarrier();
    for (var j = lid; j < p.k; j = j + WG) {{
        let sj = work[sb + j];
        var rank = 0u;
        for (var i = 0u; i < p.k; i = i + 1u) {{
            let si = work[sb + i];
            if (si > sj || (si == sj && i < j)) {{ rank = rank + 1u; }}
        }}
{finish_rank}
    }}
{finish}
}}
"""

_RANK_VALUES = "        {store};"
_RANK_WEIGHTS = "        work[cb + j] = select(0.0, {g} / sj, sj > 0.0);"
_GRAD_OUT = """    storageBarrier();
    for (var i = lid; i < mn; i = i + WG) {{
        let r = i / p.n;
        let c = i % p.n;
        let e = select(c, r, p.tall == 1u);  // position along the vectors
        let v = select(r, c, p.tall == 1u);  // position in V
        var acc = 0.0;
        for (var j = 0u; j < p.k; j = j + 1u) {{
            acc = acc + work[cb + j] * work[wb + j * p.L + e] * work[vb + j * p.k + v];
        }}
        {store};
    }}"""


def svd_wgsl(x: Storage, out: Storage, grad: bool, g: Storage | None = None) -> str:
    """WGSL of ``svdvals`` (``grad=False``) or ``svdvals_grad`` over storages ``x`` (and ``g``), writing ``out``."""
    if grad:
        g = g or x
        finish_rank = _RANK_WEIGHTS.format(g=g.load("gs", "mat * p.k + rank"))
        finish = _GRAD_OUT.format(store=out.store("out", "abase + i", "acc"))
        out_count, store_nan = "mn", out.store("out", "abase + i", "nan")
    else:
        finish_rank = _RANK_VALUES.format(store=out.store("out", "mat * p.k + rank", "sj * scale"))
        finish = ""
        out_count, store_nan = "p.k", out.store("out", "mat * p.k + i", "nan")
    body = _JACOBI.format(wg=WORKGROUP, sweeps=MAX_SWEEPS, load_a=x.load("a", "abase + i"),
                          load_src=x.load("a", "abase + src"), out_count=out_count, store_nan=store_nan,
                          finish_rank=finish_rank, finish=finish)
    used = (x, out) + ((g,) if grad else ())
    return header(*used) + _bindings(x, g if grad else None, out) + LINEAR_WORKGROUP_WGSL + body


def _launch(kb: KernelBuilder, instr, inputs, out, grad: bool):
    x = inputs[0]
    if x.storage.name not in ("f32", "f16"):
        raise KernelError.of(instr, inputs, f"{instr.op} of {x.dtype} is not supported on wgpu (float only)")
    m, n = (int(d) for d in x.shape[-2:])
    k, length = min(m, n), max(m, n)
    batch = x.size // (m * n) if m * n else 0
    if k == 0 or batch == 0:
        return []
    nbytes = 4 * batch * (k * length + k * k + 2 * k)
    limit = kb.limit("max-storage-buffer-binding-size", 1 << 27)
    if nbytes > limit:
        raise KernelError.of(instr, inputs, f"{instr.op} of {batch} matrices of {m}x{n} needs {nbytes} bytes of "
                                            f"Jacobi workspace; this adapter binds at most {limit}: split the batch")
    work = kb.scratch(nbytes, f"{instr.op} workspace")
    src = svd_wgsl(x.storage, out.storage, grad, inputs[1].storage if grad else None)
    values = {"batch": batch, "m": m, "n": n, "k": k, "L": length, "tall": int(m >= n), "tol": tolerance(length)}
    return [kb.launch(src, list(inputs) + [out, work], kb.groups(batch, 1), (LAYOUT, values), instr.op)]


def svdvals(kb: KernelBuilder, instr, inputs, out):
    """Kernel for ``svdvals``: descending singular values of each matrix."""
    return _launch(kb, instr, inputs, out, grad=False)


def svdvals_grad(kb: KernelBuilder, instr, inputs, out):
    """Kernel for ``svdvals_grad``: ``U diag(g) Vh`` of each matrix."""
    return _launch(kb, instr, inputs, out, grad=True)


KERNELS = {"svdvals": svdvals, "svdvals_grad": svdvals_grad}
__all__ = ["KERNELS", "svd_wgsl", "tolerance", "STORAGES"]
