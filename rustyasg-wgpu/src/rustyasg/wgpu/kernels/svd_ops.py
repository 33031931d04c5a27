"""Singular values (``svdvals``) and their gradient (``svdvals_grad``) by one-sided Jacobi.

A matrix is held in scratch as ``k = min(m, n)`` vectors of length ``L = max(m, n)`` (the columns
of a tall matrix, the rows of a wide one), divided by its largest ``|a|`` so squares neither
overflow nor underflow in f32, and orthogonalised by Hestenes' method: a plane rotation of each
pair of vectors makes them orthogonal, the same rotation applied to ``V`` (started at the
identity) keeps ``W = A V``. A sweep visits every pair once, in round-robin rounds of disjoint
pairs (one pair per thread, a storage barrier between rounds); sweeps repeat until one rotates
nothing (every pair orthogonal to :func:`tolerance` relative to its norms), at most ``MAX_SWEEPS``.
Then ``s_j = |w_j|`` (times the scale) and ``u_j = w_j / s_j``. One workgroup owns one matrix.

The work is split into launches (stages of :func:`svd_wgsl`): ``prepare`` (scale, NaN/inf check,
``W`` and ``V``), ``sweep`` (a run of rounds; a matrix marked converged returns at once), and
``finish``: ``svdvals`` writes each ``s_j`` at its rank (the number of larger values, ties by
index), descending; ``svdvals_grad`` stores ``g[rank j] / s_j`` (0 for a zero ``s_j``, the
core's convention) and the ``gradient`` stage forms ``U diag(g) Vh = sum_j g[rank j] / s_j
w_j v_j^T`` with one thread per element. A sweep is cut into launches of at most
``LOOP_BUDGET`` loop iterations per thread because software Vulkan (llvmpipe) stops any
invocation after 65535 loop iterations in all, without an error.

A matrix holding NaN or +-inf (seen from its bits, which shader compilers may not fold away)
gives NaN everywhere. The work is ``O(sweeps * k^2 * L)`` per matrix on one workgroup: meant
for matrices up to a few hundred rows; larger ones are correct but slow.

Example::

    >>> "workgroupUniformLoad" in svd_wgsl("sweep", STORAGES["f32"], STORAGES["f32"])
    True
"""

from __future__ import annotations

from .api import LINEAR_WORKGROUP_WGSL, STORAGES, KernelBuilder, KernelError, Storage, UniformLayout
from .storage import header

WORKGROUP = 128
MAX_SWEEPS = 30
LOOP_BUDGET = 60000  # loop iterations one thread may run in one launch (llvmpipe's limit is 65535)
LAYOUT = UniformLayout([("batch", "u32"), ("m", "u32"), ("n", "u32"), ("k", "u32"), ("L", "u32"),
                        ("tall", "u32"), ("tol", "f32"), ("r0", "u32"), ("r1", "u32"), ("first", "u32"),
                        ("last", "u32")])
STAGES = ("prepare", "sweep", "finish", "gradient")


def tolerance(length: int) -> float:
    """Relative size of ``w_i . w_j`` below which a pair counts as orthogonal: the f32 rounding of a
    ``length``-term dot product (which grows as its square root).

    >>> tolerance(4) < tolerance(256)
    True
    """
    return 2.4e-7 * max(float(length) ** 0.5, 4.0)


def rounds_per_launch(k: int, length: int) -> int:
    """How many round-robin rounds one ``sweep`` launch runs within :data:`LOOP_BUDGET`.

    >>> rounds_per_launch(8, 8), rounds_per_launch(256, 256)
    (7, 77)
    """
    per_round = -(-((k + 1) // 2) // WORKGROUP) * (2 * length + k + 4) + 2
    return max(1, min(k + (k & 1) - 1, LOOP_BUDGET // per_round))


_PRELUDE = """
const WG: u32 = {wg}u;
var<workgroup> amax_bits: atomic<u32>;
var<workgroup> flag: u32;

struct Offsets {{ a: u32, w: u32, v: u32, s: u32, c: u32, st: u32, }}

// Per matrix in scratch: W (k x L), V (k x k), norms (k), weights (k), then the status words
// scale, finite (1/0), rotated in this sweep (1/0), converged (1/0).
fn offsets(mat: u32) -> Offsets {{
    var o: Offsets;
    o.a = mat * p.m * p.n;
    o.w = mat * (p.k * p.L + p.k * p.k + 2u * p.k + 4u);
    o.v = o.w + p.k * p.L;
    o.s = o.v + p.k * p.k;
    o.c = o.s + p.k;
    o.st = o.c + p.k;
    return o;
}}

// thread 0's read of a status word, made uniform over the workgroup
fn status(i: u32, lid: u32) -> bool {{
    if (lid == 0u) {{ flag = select(0u, 1u, work[i] > 0.5); }}
    return workgroupUniformLoad(&flag) != 0u;
}}
"""

_MAIN = """
@compute @workgroup_size({wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    {touch}
    let mat = linear_workgroup(wid, nwg);
    if (mat >= p.batch) {{ return; }}
    let o = offsets(mat);
{body}
}}
"""

_PREPARE = """    let mn = p.m * p.n;
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
    let finite = big < 0x7f800000u;
    let scale = select(1.0, bitcast<f32>(big), big >= 0x00800000u && finite);
    if (lid == 0u) {{
        work[o.st] = scale;
        work[o.st + 1u] = select(0.0, 1.0, finite);
        work[o.st + 2u] = 0.0;
        work[o.st + 3u] = select(1.0, 0.0, finite);
    }}
    if (!finite) {{ return; }}
    for (var i = lid; i < p.k * p.L; i = i + WG) {{
        let j = i / p.L;
        let e = i % p.L;
        let src = select(j * p.n + e, e * p.n + j, p.tall == 1u);
        work[o.w + i] = {load_src} / scale;
    }}
    for (var i = lid; i < p.k * p.k; i = i + WG) {{
        work[o.v + i] = select(0.0, 1.0, i / p.k == i % p.k);
    }}"""

_SWEEP = """    if (status(o.st + 3u, lid)) {{ return; }}  // converged, or not finite
    if (p.first == 1u && lid == 0u) {{ work[o.st + 2u] = 0.0; }}
    storageBarrier();
    let k2 = p.k + (p.k & 1u);  // an odd count gets a dummy vector that sits out its round
    for (var r = p.r0; r < p.r1; r = r + 1u) {{
        for (var q = lid; q < k2 / 2u; q = q + WG) {{
            var i = k2 - 1u;
            var j = r;
            if (q > 0u) {{
                i = (r + q) % (k2 - 1u);
                j = (r + k2 - 1u - q) % (k2 - 1u);
            }}
            if (i < p.k && j < p.k && rotate(o.w, o.v, i, j)) {{ work[o.st + 2u] = 1.0; }}
        }}
        storageBarrier();
    }}
    if (p.last == 1u && lid == 0u && work[o.st + 2u] < 0.5) {{ work[o.st + 3u] = 1.0; }}"""

_ROTATE = """
// Rotate vectors i and j of W (at wb, length L) and of V (at vb, length k) to make w_i . w_j = 0.
fn rotate(wb: u32, vb: u32, i: u32, j: u32) -> bool {
    let oi = wb + i * p.L;
    let oj = wb + j * p.L;
    var al = 0.0;
    var be = 0.0;
    var ga = 0.0;
    for (var e = 0u; e < p.L; e = e + 1u) {
        let x = work[oi + e];
        let y = work[oj + e];
        al = al + x * x;
        be = be + y * y;
        ga = ga + x * y;
    }
    if (abs(ga) <= p.tol * sqrt(al) * sqrt(be)) { return false; }
    let zeta = (be - al) / (2.0 * ga);
    var t: f32;
    if (abs(zeta) > 1e15) {
        t = 0.5 / zeta;
    } else {
        t = select(1.0, -1.0, zeta < 0.0) / (abs(zeta) + sqrt(1.0 + zeta * zeta));
    }
    let c = 1.0 / sqrt(1.0 + t * t);
    let s = c * t;
    for (var e = 0u; e < p.L; e = e + 1u) {
        let x = work[oi + e];
        let y = work[oj + e];
        work[oi + e] = c * x - s * y;
        work[oj + e] = s * x + c * y;
    }
    let vi = vb + i * p.k;
    let vj = vb + j * p.k;
    for (var e = 0u; e < p.k; e = e + 1u) {
        let x = work[vi + e];
        let y = work[vj + e];
        work[vi + e] = c * x - s * y;
        work[vj + e] = s * x + c * y;
    }
    return true;
}
"""

_FINISH = """    if (!status(o.st + 1u, lid)) {{
        let nan = f32_from_bits(0x7fc00000u);
        for (var i = lid; i < {count}; i = i + WG) {{ {store_nan}; }}
        return;
    }}
    let scale = work[o.st];
    for (var j = lid; j < p.k; j = j + WG) {{
        var ss = 0.0;
        for (var e = 0u; e < p.L; e = e + 1u) {{
            let w = work[o.w + j * p.L + e];
            ss = ss + w * w;
        }}
        work[o.s + j] = sqrt(ss);
    }}
    storageBarrier();
    for (var j = lid; j < p.k; j = j + WG) {{
        let sj = work[o.s + j];
        var rank = 0u;
        for (var i = 0u; i < p.k; i = i + 1u) {{
            let si = work[o.s + i];
            if (si > sj || (si == sj && i < j)) {{ rank = rank + 1u; }}
        }}
        {at_rank};
    }}"""

_GRADIENT = """
@compute @workgroup_size({wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    {touch}
    let t = linear_workgroup(wid, nwg) * WG + lid;
    let mn = p.m * p.n;
    if (t >= p.batch * mn) {{ return; }}
    let o = offsets(t / mn);
    if (work[o.st + 1u] < 0.5) {{ return; }}  // not finite: the finish stage wrote NaN
    let r = (t % mn) / p.n;
    let c = t % p.n;
    let e = select(c, r, p.tall == 1u);  // position along the vectors
    let v = select(r, c, p.tall == 1u);  // position in V
    var acc = 0.0;
    for (var j = 0u; j < p.k; j = j + 1u) {{
        acc = acc + work[o.c + j] * work[o.w + j * p.L + e] * work[o.v + j * p.k + v];
    }}
    {store};
}}
"""


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


def svd_wgsl(stage: str, x: Storage, out: Storage, g: Storage | None = None) -> str:
    """WGSL of one stage (:data:`STAGES`) of ``svdvals`` (``g`` None) or ``svdvals_grad`` (``g`` the cotangent's storage).

    Every stage binds the same resources: ``a``, (``g``,) ``out``, the scratch, the parameters.
    """
    grad = g is not None
    if stage == "prepare":
        body = _PREPARE.format(load_a=x.load("a", "o.a + i"), load_src=x.load("a", "o.a + src"))
    elif stage == "sweep":
        body = _SWEEP.format()
    elif stage == "finish" and grad:
        body = _FINISH.format(count="p.m * p.n", store_nan=out.store("out", "o.a + i", "nan"),
                              at_rank=f"work[o.c + j] = select(0.0, {g.load('gs', 'mat * p.k + rank')} / sj, sj > 0.0)")
    elif stage == "finish":
        body = _FINISH.format(count="p.k", store_nan=out.store("out", "mat * p.k + i", "nan"),
                              at_rank=out.store("out", "mat * p.k + rank", "sj * scale"))
    elif stage == "gradient" and grad:
        body = None
    else:
        raise ValueError(f"unknown stage {stage!r} (grad={grad}); expected one of {STAGES}")
    used = (x, out) + ((g,) if grad else ())
    # every stage binds every resource: an unused one would drop out of the pipeline's layout
    touch = " ".join(f"_ = arrayLength(&{name});" for name in ("a", "out") + (("gs",) if grad else ()))
    main = (_GRADIENT.format(wg=WORKGROUP, store=out.store("out", "t", "acc"), touch=touch) if body is None
            else _MAIN.format(wg=WORKGROUP, body=body, touch=touch))
    return (header(*used) + _bindings(x, g, out) + LINEAR_WORKGROUP_WGSL + _PRELUDE.format(wg=WORKGROUP)
            + (_ROTATE if stage == "sweep" else "") + main)


def _launches(kb: KernelBuilder, instr, inputs, out, grad: bool):
    x = inputs[0]
    if x.storage.name not in ("f32", "f16"):
        raise KernelError.of(instr, inputs, f"{instr.op} of {x.dtype} is not supported on wgpu (float only)")
    m, n = (int(d) for d in x.shape[-2:])
    k, length = min(m, n), max(m, n)
    batch = x.size // (m * n) if m * n else 0
    if k == 0 or batch == 0:
        return []
    if -(-((k + 1) // 2) // WORKGROUP) * (2 * length + k + 4) > LOOP_BUDGET:
        raise KernelError.of(instr, inputs, f"{instr.op} of {m}x{n} matrices: one Jacobi round is longer than "
                                            f"the {LOOP_BUDGET} loop iterations a wgpu thread may run; "
                                            "use backend='cpu' for such shapes")
    nbytes = 4 * batch * (k * length + k * k + 2 * k + 4)
    limit = kb.limit("max-storage-buffer-binding-size", 1 << 27)
    if nbytes > limit:
        raise KernelError.of(instr, inputs, f"{instr.op} of {batch} matrices of {m}x{n} needs {nbytes} bytes of "
                                            f"Jacobi workspace; this adapter binds at most {limit}: split the batch")
    work = kb.scratch(nbytes, f"{instr.op} workspace")
    g = inputs[1].storage if grad else None
    resources = list(inputs) + [out, work]
    base = {"batch": batch, "m": m, "n": n, "k": k, "L": length, "tall": int(m >= n), "tol": tolerance(length),
            "r0": 0, "r1": 0, "first": 0, "last": 0}

    def launch(stage, groups, label, **values):
        return kb.launch(svd_wgsl(stage, x.storage, out.storage, g), resources, groups,
                         (LAYOUT, {**base, **values}), f"{instr.op} {label}")

    launches = [launch("prepare", batch, "prepare")]
    rounds, step = k + (k & 1) - 1, rounds_per_launch(k, length)
    for _ in range(MAX_SWEEPS):
        for r0 in range(0, rounds, step):
            r1 = min(r0 + step, rounds)
            launches.append(launch("sweep", batch, "sweep", r0=r0, r1=r1, first=int(r0 == 0), last=int(r1 == rounds)))
    launches.append(launch("finish", batch, "finish"))
    if grad:
        launches.append(launch("gradient", kb.groups(batch * m * n, WORKGROUP), "gradient"))
    return launches


def svdvals(kb: KernelBuilder, instr, inputs, out):
    """Kernel for ``svdvals``: descending singular values of each matrix."""
    return _launches(kb, instr, inputs, out, grad=False)


def svdvals_grad(kb: KernelBuilder, instr, inputs, out):
    """Kernel for ``svdvals_grad``: ``U diag(g) Vh`` of each matrix."""
    return _launches(kb, instr, inputs, out, grad=True)


KERNELS = {"svdvals": svdvals, "svdvals_grad": svdvals_grad}
__all__ = ["KERNELS", "svd_wgsl", "tolerance", "rounds_per_launch", "STAGES", "STORAGES"]
