"""GPU benchmarks for rustyasg.wgpu, compared with torch.cuda where present.

Sections (run all by default, or pick with ``--sections``):

* ``features``: the adapter, its features and limits.
* ``matmul``: every tile config on square problems (GFLOP/s), the
  autotuner's pick, transposed layouts, and torch's fp32 rate with TF32 off.
* ``elementwise``: a 64M-float add (and a fused chain, a broadcast bias add)
  in GB/s against a torch device-to-device copy and torch's add.
* ``experimental``: f16 storage matmul (``shader-f16``) and the
  cooperative-matrix path, when the adapter offers them.

New workloads (training steps) add a function to ``SECTIONS``.

Example::

    python benchmarks/gpu/run_gpu.py --sections matmul --sizes 1024,4096 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

_SRC = Path(__file__).resolve().parents[2] / "rustyasg-wgpu" / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from rustyasg.wgpu.buffers import BufferPool, Readback, upload  # noqa: E402
from rustyasg.wgpu.device import get_context  # noqa: E402
from rustyasg.wgpu.kernels.autotune import Autotuner, time_gpu, time_submit  # noqa: E402
from rustyasg.wgpu.kernels.elementwise import (  # noqa: E402
    ElementwisePlanner, ElementwiseSpec, EwOp, broadcast_strides, contiguous_strides,
)
from rustyasg.wgpu.kernels.matmul import MatmulPlanner, heuristic_config  # noqa: E402
from rustyasg.wgpu.pipelines import KernelLaunch, PipelineCache, uniform_buffer  # noqa: E402

try:
    import torch
    HAVE_CUDA = torch.cuda.is_available()
except ImportError:  # the benchmark still runs the wgpu half
    torch, HAVE_CUDA = None, False


def random_f32(shape, seed):
    """Random normal float32 (on the GPU through torch when it can: faster)."""
    if HAVE_CUDA:
        g = torch.Generator(device="cuda").manual_seed(seed)
        return torch.randn(*shape, generator=g, device="cuda", dtype=torch.float32).cpu().numpy()
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def torch_time(fn, min_seconds=0.1):
    """Median seconds per ``fn()`` with CUDA events, after warm-up."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); fn(); end.record(); torch.cuda.synchronize()
    reps = max(3, min(200, int(min_seconds / max(start.elapsed_time(end) / 1e3, 1e-6))))
    times = []
    for _ in range(5):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    return float(np.median(times))


def rel_err(out, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.linalg.norm(np.asarray(out, np.float64) - ref) / max(np.linalg.norm(ref), 1e-30))


def reference_matmul(a, b):
    """float64 product (on the GPU when torch+CUDA are there)."""
    if HAVE_CUDA:
        return (torch.from_numpy(a).cuda().double() @ torch.from_numpy(b).cuda().double()).cpu().numpy()
    return a.astype(np.float64) @ b.astype(np.float64)


# --------------------------------------------------------------------------- sections


def section_features(ctx, args, report):
    info = dict(ctx.info)
    keys = ("max-storage-buffer-binding-size", "max-buffer-size", "max-storage-buffers-per-shader-stage",
            "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
            "max-compute-workgroups-per-dimension")
    report["features"] = {
        "adapter": ctx.summary, "info": {k: str(v) for k, v in info.items()},
        "adapter_features": sorted(ctx.adapter.features), "device_features": sorted(ctx.features),
        "limits": {k: ctx.limits.get(k) for k in keys},
    }
    print(f"adapter: {ctx.summary}")
    print(f"device features: {sorted(ctx.features)}")


def _matmul_case(ctx, args, planner, pool, rb, n, layout, seed, configs, check=True):
    ta, tb = layout[0] == "t", layout[1] == "t"
    a = random_f32((n, n), seed)
    b = random_f32((n, n), seed + 1)
    abuf, bbuf = upload(ctx, a, pool), upload(ctx, b, pool)
    cbuf = pool.acquire(n * n * 4)
    ref = reference_matmul(a.T if ta else a, b.T if tb else b) if check else None
    rows = []
    for name in configs:
        row = {"n": n, "layout": layout, "config": name}
        try:
            launch = planner.launch(abuf, bbuf, cbuf, n, n, n, trans_a=ta, trans_b=tb, config=name)
            if check:
                ctx.queue.write_buffer(cbuf, 0, np.full(n * n, np.nan, np.float32).tobytes())
                launch.run()
                row["rel_err"] = rel_err(rb.read_array(cbuf, (n, n), np.float32), ref)
            secs = time_gpu(ctx, launch.encode, min_seconds=args.min_seconds)
            row.update(seconds=secs, gflops=2.0 * n**3 / secs / 1e9)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        rows.append(row)
        print(f"  matmul {layout} {n}^3 {name:>16}: "
              + (f"{row['gflops']:9.0f} GFLOP/s  err {row.get('rel_err', float('nan')):.1e}" if "gflops" in row else row["error"][:200]),
              flush=True)
    for buf in (abuf, bbuf, cbuf):
        pool.release(buf)
    return rows


def section_matmul(ctx, args, report):
    pool, rb = BufferPool(ctx), Readback(ctx)
    planner = MatmulPlanner(ctx, autotune=False)
    out = report.setdefault("matmul", {"sweep": [], "torch": [], "autotune": [], "layouts": []})
    sizes = [int(s) for s in args.sizes.split(",")]
    names = planner.candidates()
    ranking = None
    for n in sizes:
        configs = names if (ranking is None or n <= args.full_sweep_max) else ranking[: args.top]
        rows = _matmul_case(ctx, args, planner, pool, rb, n, "nn", 100 + n, configs, check=n <= args.check_max)
        out["sweep"] += rows
        good = [r for r in rows if "gflops" in r and r.get("rel_err", 0) < 1e-4]
        ranking = [r["config"] for r in sorted(good, key=lambda r: -r["gflops"])] or ranking
        if HAVE_CUDA:
            a = torch.randn(n, n, device="cuda"); b = torch.randn(n, n, device="cuda")
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                secs = torch_time(lambda: a @ b)
                out["torch"].append({"n": n, "tf32": tf32, "seconds": secs, "gflops": 2.0 * n**3 / secs / 1e9})
                print(f"  torch {n}^3 tf32={tf32}: {2.0 * n**3 / secs / 1e9:9.0f} GFLOP/s", flush=True)
            torch.backends.cuda.matmul.allow_tf32 = False
            del a, b
    # The autotuner end to end, on a fresh cache, for each size.
    with tempfile.TemporaryDirectory() as tmp:
        tuner = Autotuner(ctx, "matmul", path=Path(args.out_dir or tmp) / "autotune-matmul.json")
        tplanner = MatmulPlanner(ctx, tuner=tuner, autotune=True)
        for n in sizes[: args.autotune_sizes]:
            a, b = pool.acquire(n * n * 4), pool.acquire(n * n * 4)
            ctx.queue.write_buffer(a, 0, random_f32((n, n), 7).tobytes())
            ctx.queue.write_buffer(b, 0, random_f32((n, n), 8).tobytes())
            c = pool.acquire(n * n * 4)
            t0 = time.perf_counter()
            launch = tplanner.launch(a, b, c, n, n, n)
            tune_s = time.perf_counter() - t0
            chosen = launch.label.split()[-1]
            secs = time_gpu(ctx, launch.encode, min_seconds=args.min_seconds)
            out["autotune"].append({"n": n, "chosen": chosen, "tune_seconds": tune_s, "gflops": 2.0 * n**3 / secs / 1e9})
            print(f"  autotune {n}^3 -> {chosen} ({tune_s:.1f} s to tune): {2.0 * n**3 / secs / 1e9:9.0f} GFLOP/s", flush=True)
            for buf in (a, b, c):
                pool.release(buf)
    # Transposed layouts (x @ W^T is the common Linear layer) with the best configs.
    if ranking and args.layout_size:
        for layout in ("nt", "tn"):
            out["layouts"] += _matmul_case(ctx, args, planner, pool, rb, args.layout_size, layout, 5, ranking[:2])
    pool.trim()


def parse_case(text):
    """``"b32:512x512x64:nt"`` -> (batch, M, N, K, layout); batch and layout optional.

    Example::

        >>> parse_case("4095x4095x4095"), parse_case("b8:64x32x16:tn")
        ((1, 4095, 4095, 4095, 'nn'), (8, 64, 32, 16, 'tn'))
    """
    parts = text.split(":")
    batch = int(parts.pop(0)[1:]) if parts[0].startswith("b") else 1
    M, N, K = (int(v) for v in parts[0].split("x"))
    return batch, M, N, K, parts[1] if len(parts) > 1 else "nn"


def section_matmul_cases(ctx, args, report):
    """Model-shaped problems (odd sizes, batches, transposes) through the autotuner."""
    pool, rb = BufferPool(ctx), Readback(ctx)
    out = report.setdefault("matmul_cases", [])
    path = Path(args.out_dir or tempfile.mkdtemp()) / "autotune-cases.json"
    planner = MatmulPlanner(ctx, tuner=Autotuner(ctx, "matmul", path=path), autotune=True)
    for text in args.cases.split(","):
        batch, M, N, K, layout = parse_case(text)
        ta, tb = layout[0] == "t", layout[1] == "t"
        a = random_f32((batch,) + ((K, M) if ta else (M, K)), 31)
        b = random_f32((batch,) + ((N, K) if tb else (K, N)), 32)
        abuf, bbuf, cbuf = upload(ctx, a, pool), upload(ctx, b, pool), pool.acquire(batch * M * N * 4)
        row = {"case": text}
        try:
            t0 = time.perf_counter()
            launch = planner.launch(abuf, bbuf, cbuf, M, N, K, batch=batch, trans_a=ta, trans_b=tb)
            row["tune_seconds"] = time.perf_counter() - t0
            row["chosen"] = launch.label.split()[-1]
            heur = planner.launch(abuf, bbuf, cbuf, M, N, K, batch=batch, trans_a=ta, trans_b=tb,
                                  config=heuristic_config(M, N, batch))
            launch.run()
            at = np.swapaxes(a, 1, 2) if ta else a
            bt = np.swapaxes(b, 1, 2) if tb else b
            ref = np.stack([reference_matmul(np.ascontiguousarray(at[i]), np.ascontiguousarray(bt[i])) for i in range(batch)])
            row["rel_err"] = rel_err(rb.read_array(cbuf, (batch, M, N), np.float32), ref)
            flops = 2.0 * batch * M * N * K
            row["gflops"] = flops / time_gpu(ctx, launch.encode, min_seconds=args.min_seconds) / 1e9
            row["heuristic_gflops"] = flops / time_gpu(ctx, heur.encode, min_seconds=args.min_seconds) / 1e9
            if HAVE_CUDA:
                ta_, tb_ = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
                fa = (lambda: ta_.transpose(1, 2)) if ta else (lambda: ta_)
                fb = (lambda: tb_.transpose(1, 2)) if tb else (lambda: tb_)
                row["torch_gflops"] = flops / torch_time(lambda: torch.bmm(fa(), fb())) / 1e9
            print(f"  case {text:>22}: {row['chosen']:>22} {row['gflops']:8.0f} GFLOP/s (heuristic {row['heuristic_gflops']:7.0f},"
                  f" torch {row.get('torch_gflops', float('nan')):7.0f}) err {row['rel_err']:.1e} tune {row['tune_seconds']:.1f}s",
                  flush=True)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            print(f"  case {text} failed: {row['error'][:300]}", flush=True)
        out.append(row)
        for buf in (abuf, bbuf, cbuf):
            pool.release(buf)
    pool.trim()


def section_elementwise(ctx, args, report):
    pool = BufferPool(ctx)
    ew = ElementwisePlanner(ctx)
    n = args.ew_n
    out = report.setdefault("elementwise", [])
    x, y = random_f32((n,), 1), random_f32((n,), 2)
    xb, yb = upload(ctx, x, pool), upload(ctx, y, pool)
    zb = pool.acquire(n * 4)
    rb = Readback(ctx)
    flat = (1,)
    cases = [
        ("add", ElementwiseSpec(("x", "y"), (EwOp("z", "add", ("x", "y")),), ("z",)), 3),
        ("fused x*y+1 relu", ElementwiseSpec(("x", "y"), (EwOp("m", "mul", ("x", "y")), EwOp("s", "add", ("m", 1.0)),
                                                           EwOp("z", "relu", ("s",))), ("z",)), 3),
    ]
    for name, spec, words in cases:
        launch = ew.launch(spec, (n,), [(xb, flat, 0), (yb, flat, 0)], [zb])
        launch.run()
        got = rb.read_array(zb, (n,), np.float32)
        err = float(np.abs(got - spec.evaluate_numpy({"x": x, "y": y})[0]).max())
        secs = time_gpu(ctx, launch.encode, min_seconds=args.min_seconds)
        gbs = words * 4 * n / secs / 1e9
        out.append({"case": name, "n": n, "seconds": secs, "gbytes_per_s": gbs, "max_abs_err": err})
        print(f"  elementwise {name} n={n}: {gbs:7.0f} GB/s (err {err:.1e})", flush=True)
    # Bias add over rows: the strided (broadcast) vec4 path.
    cols = 4096
    rows_ = n // cols
    bias = random_f32((cols,), 3)
    bb = upload(ctx, bias, pool)
    spec = ElementwiseSpec(("x", "b"), (EwOp("z", "add", ("x", "b")),), ("z",))
    shape = (rows_, cols)
    launch = ew.launch(spec, shape, [(xb, contiguous_strides(shape), 0), (bb, broadcast_strides((cols,), shape), 0)], [zb])
    secs = time_gpu(ctx, launch.encode, min_seconds=args.min_seconds)
    gbs = 2 * 4 * n / secs / 1e9
    out.append({"case": "bias add (rows x 4096)", "n": n, "seconds": secs, "gbytes_per_s": gbs})
    print(f"  elementwise bias add: {gbs:7.0f} GB/s", flush=True)
    if HAVE_CUDA:
        src = torch.randn(n, device="cuda"); dst = torch.empty_like(src); other = torch.randn(n, device="cuda")
        secs = torch_time(lambda: dst.copy_(src))
        out.append({"case": "torch copy", "n": n, "seconds": secs, "gbytes_per_s": 2 * 4 * n / secs / 1e9})
        secs_add = torch_time(lambda: torch.add(src, other, out=dst))
        out.append({"case": "torch add", "n": n, "seconds": secs_add, "gbytes_per_s": 3 * 4 * n / secs_add / 1e9})
        print(f"  torch copy: {2 * 4 * n / secs / 1e9:7.0f} GB/s, torch add: {3 * 4 * n / secs_add / 1e9:7.0f} GB/s", flush=True)
        del src, dst, other
    pool.trim()


def section_experimental(ctx, args, report):
    out = report.setdefault("experimental", {})
    n = args.exp_size
    a, b = random_f32((n, n), 11), random_f32((n, n), 12)
    # f16 storage, f32 accumulation, through the same generator.
    if ctx.has("shader-f16"):
        try:
            planner = MatmulPlanner(ctx, autotune=False)
            pool, rb = BufferPool(ctx), Readback(ctx)
            a16, b16 = a.astype(np.float16), b.astype(np.float16)
            ab, bb = upload(ctx, a16, pool), upload(ctx, b16, pool)
            cb = pool.acquire(n * n * 2)
            ref = reference_matmul(a16.astype(np.float32), b16.astype(np.float32))
            rows = []
            for name in args.exp_configs.split(","):
                launch = planner.launch(ab, bb, cb, n, n, n, dtype="f16", config=name)
                launch.run()
                err = rel_err(rb.read_array(cb, (n, n), np.float16), ref)
                secs = time_gpu(ctx, launch.encode, min_seconds=args.min_seconds)
                rows.append({"config": name, "n": n, "gflops": 2.0 * n**3 / secs / 1e9, "rel_err": err})
                print(f"  f16-storage matmul {n}^3 {name}: {rows[-1]['gflops']:9.0f} GFLOP/s err {err:.1e}", flush=True)
            out["f16_matmul"] = rows
        except Exception as exc:
            out["f16_matmul"] = f"{type(exc).__name__}: {exc}"[:3000]
            print("  f16 matmul failed:", out["f16_matmul"][:300])
    # Cooperative matrices need a device created with the experimental feature.
    try:
        xctx = get_context(experimental=True)
        out["coop_feature_on_adapter"] = "cooperative-matrix" in xctx.adapter.features
        out["coop_feature_granted"] = xctx.has("cooperative-matrix")
        out["coop_refused"] = xctx.refused
        print(f"  cooperative-matrix: on adapter {out['coop_feature_on_adapter']}, granted {out['coop_feature_granted']}"
              f" {xctx.refused.get('cooperative-matrix', '')[:600]}", flush=True)
        if xctx.has("cooperative-matrix"):
            from rustyasg.wgpu.kernels.coop_matmul import COOP_UNIFORMS, generate_coop_matmul_wgsl

            sg = int(xctx.info.get("subgroup_min_size", 0) or xctx.info.get("stackgroup_min_size", 32) or 32)
            pool, rb, cache = BufferPool(xctx), Readback(xctx), PipelineCache(xctx)
            ab, bb = upload(xctx, a, pool), upload(xctx, b, pool)
            cb = pool.acquire(n * n * 4)
            ref = reference_matmul(a, b)
            rows = []
            for r, s in ((1, 1), (2, 2), (4, 4), (2, 4)):
                row = {"frags": f"{r}x{s}", "subgroup": sg}
                try:
                    pipe = cache.get(generate_coop_matmul_wgsl(r, s, sg))
                    tiles_n = n // (8 * s)
                    total = (n // (8 * r)) * tiles_n
                    ub = uniform_buffer(xctx, COOP_UNIFORMS.pack(M=n, N=n, K=n, tiles_n=tiles_n, total=total))
                    launch = KernelLaunch(xctx, pipe, [ab, bb, cb, ub], total)
                    launch.run()
                    row["rel_err"] = rel_err(rb.read_array(cb, (n, n), np.float32), ref)
                    secs = time_gpu(xctx, launch.encode, min_seconds=args.min_seconds)
                    row["gflops"] = 2.0 * n**3 / secs / 1e9
                    print(f"  coop-matrix {n}^3 {r}x{s} frags: {row['gflops']:9.0f} GFLOP/s err {row['rel_err']:.1e}", flush=True)
                except Exception as exc:
                    row["error"] = f"{type(exc).__name__}: {exc}"[:3000]
                    print(f"  coop-matrix {r}x{s} failed: {row['error'][:300]}", flush=True)
                rows.append(row)
            out["coop_matmul"] = rows
    except Exception as exc:
        out["coop_error"] = f"{type(exc).__name__}: {exc}"[:3000]
        print("  coop setup failed:", out["coop_error"][:300])


def rowsum_wgsl(use_subgroups: bool) -> str:
    """Row sums of a (rows, cols) matrix, one 256-thread workgroup per row:
    a shared-memory tree, or subgroupAdd then one value per subgroup."""
    head = ""  # naga enables subgroup builtins by the device feature, not a directive
    builtins = ", @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) ssz: u32" if use_subgroups else ""
    if use_subgroups:
        combine = """
    let s = subgroupAdd(acc);
    if (sid == 0u) { part[lid / ssz] = s; }
    workgroupBarrier();
    if (lid == 0u) {
        var t = 0.0;
        for (var i = 0u; i < 256u / ssz; i = i + 1u) { t = t + part[i]; }
        y[row] = t;
    }"""
    else:
        combine = """
    part[lid] = acc;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (lid < w) { part[lid] = part[lid] + part[lid + w]; }
        workgroupBarrier();
    }
    if (lid == 0u) { y[row] = part[0]; }"""
    return head + f"""
struct P {{ rows: u32, cols4: u32, }}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32{builtins}) {{
    let row = wid.x + nwg.x * wid.y;
    if (row >= p.rows) {{ return; }}
    var acc = 0.0;
    for (var c = lid; c < p.cols4; c = c + 256u) {{
        let v = x[row * p.cols4 + c];
        acc = acc + v.x + v.y + v.z + v.w;
    }}{combine}
}}
"""


def section_reduction(ctx, args, report):
    from rustyasg.wgpu.pipelines import UniformLayout

    out = report.setdefault("reduction", [])
    cache, pool, rb = PipelineCache(ctx), BufferPool(ctx), Readback(ctx)
    lay = UniformLayout([("rows", "u32"), ("cols4", "u32")])
    for rows, cols in ((args.ew_n // 1024, 1024), (4096, 1024), (args.ew_n // 32768, 32768)):
        x = random_f32((rows, cols), 21)
        xb, yb = upload(ctx, x, pool), pool.acquire(rows * 4)
        ref = x.astype(np.float64).sum(axis=1)
        ub = uniform_buffer(ctx, lay.pack(rows=rows, cols4=cols // 4))
        for sub in (False, True):
            if sub and not ctx.has("subgroup"):
                continue
            name = f"rowsum {rows}x{cols} {'subgroupAdd' if sub else 'shared tree'}"
            try:
                launch = KernelLaunch(ctx, cache.get(rowsum_wgsl(sub)), [xb, yb, ub], rows)
                launch.run()
                err = rel_err(rb.read_array(yb, (rows,), np.float32), ref)
                secs = time_gpu(ctx, launch.encode, min_seconds=args.min_seconds)
                gbs = x.nbytes / secs / 1e9
                out.append({"case": name, "seconds": secs, "gbytes_per_s": gbs, "rel_err": err})
                print(f"  {name}: {gbs:7.0f} GB/s  {secs * 1e6:8.1f} us  err {err:.1e}", flush=True)
            except Exception as exc:
                out.append({"case": name, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                print(f"  {name} failed: {out[-1]['error'][:300]}", flush=True)
        pool.release(xb); pool.release(yb)
    pool.trim()


def section_training(ctx, args, report):
    """W2/W4/W5 training steps: rustyasg.nn on wgpu next to torch.cuda eager (fp32, TF32 off)."""
    import training

    out = report.setdefault("training", [])
    for name in args.workloads.split(","):
        t0 = time.perf_counter()
        try:
            r = training.run_workload(name, warmup=args.train_warmup, steps=args.train_steps, with_torch=HAVE_CUDA)
        except Exception as exc:
            r = {"workload": name, "error": traceback.format_exc()[-3000:]}
            print(f"  {name} failed: {exc}", flush=True)
        r["section_s"] = time.perf_counter() - t0
        out.append(r)
        if "rustyasg" in r:
            t = r.get("torch", {}).get("ms", float("nan"))
            print(f"  {name}: rustyasg-wgpu {r['rustyasg']['ms']:.2f} ms/step (compile {r['rustyasg']['compile_s']:.1f} s, "
                  f"{r['rustyasg']['plan']['launches']} launches), torch {t:.2f} ms, ratio {r.get('ratio', float('nan')):.2f}, "
                  f"first-loss rel diff {r.get('first_losses_max_rel_diff', float('nan')):.1e}", flush=True)


def section_dispatch(ctx, args, report):
    """What one small dispatch costs inside a command buffer, submit overhead taken out.

    A training step records hundreds of launches into one pass; the per-launch isolated times of
    ``profile`` each carry a share of a submit. Here ``k`` copies of one tiny elementwise launch
    are recorded into one pass and submitted once, for two values of ``k``: the difference per
    extra dispatch is the in-stream cost. ``chained``: every launch writes the same output
    (the driver must order them); ``independent``: each writes its own.
    """
    pool = BufferPool(ctx)
    ew = ElementwisePlanner(ctx)
    spec = ElementwiseSpec(("x", "y"), (EwOp("z", "add", ("x", "y")),), ("z",))
    rows = report.setdefault("dispatch", [])
    few, many = 50, 500

    def timed(record, reps):
        return min(time_submit(ctx, record, reps) for _ in range(3))

    for n in (1, 512, 65536):
        x, y = upload(ctx, random_f32((n,), 1), pool), upload(ctx, random_f32((n,), 2), pool)
        outs = [pool.acquire(max(n, 4) * 4) for _ in range(many)]
        chained = ew.launch(spec, (n,), [(x, (1,), 0), (y, (1,), 0)], [outs[0]])  # each writes it again
        separate = [ew.launch(spec, (n,), [(x, (1,), 0), (y, (1,), 0)], [o]) for o in outs]
        chained.run(); separate[0].run()
        lanes = itertools.cycle(separate)  # one submit records up to `many` distinct launches
        for name, record in (("chained", chained.encode), ("independent", lambda cp: next(lanes).encode(cp))):
            t_few, t_many = timed(record, few), timed(record, many)
            per = (t_many - t_few) / (many - few)
            rows.append({"n": n, "kind": name, "us_per_dispatch": per * 1e6, "submit_ms": (t_few - few * per) * 1e3})
            print(f"  dispatch n={n:6d} {name:11s}: {per * 1e6:6.2f} us each in one pass "
                  f"(one submit of {few}: {t_few * 1e3:.2f} ms)", flush=True)
    pool.trim()


def section_profile(ctx, args, report):
    """Per-launch GPU time of one compiled training step (where the time goes)."""
    import training
    from collections import defaultdict

    training.ensure_backend()
    cfg = training.WORKLOADS[args.profile_workload]
    model, build = training.rustyasg_model(cfg)
    data = training.batches(cfg, 1)
    step = build("wgpu")
    step(*data[0])
    exe = step.compile(*data[0])
    rows = []
    for i, launch in enumerate(exe.launches):
        rows.append({"i": i, "label": launch.label, "us": time_gpu(ctx, launch.encode, min_seconds=0.002, max_reps=50) * 1e6})
    total = sum(r["us"] for r in rows)
    by_kind = defaultdict(float)
    for r in rows:
        by_kind[r["label"].split(":")[-1].strip().split(" ")[0] if "matmul" in r["label"] else
                r["label"].split(":")[0].split(" ")[0].split("[")[0]] += r["us"]
    top = sorted(rows, key=lambda r: -r["us"])[:args.profile_top]
    report["profile"] = {"workload": args.profile_workload, "launches": len(rows), "sum_us": total,
                         "by_kind_us": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])), "top": top}
    print(f"  {args.profile_workload}: {len(rows)} launches, sum of isolated times {total / 1e3:.2f} ms")
    for k, v in list(report["profile"]["by_kind_us"].items())[:12]:
        print(f"    {k:>24}: {v / 1e3:8.3f} ms")
    for r in top:
        print(f"    {r['us']:9.1f} us  {r['label'][:110]}")


SECTIONS = {
    "features": section_features,
    "matmul": section_matmul,
    "matmul_cases": section_matmul_cases,
    "elementwise": section_elementwise,
    "experimental": section_experimental,
    "reduction": section_reduction,
    "training": section_training,
    "profile": section_profile,
    "dispatch": section_dispatch,
}


def print_summary(report):
    print("\n==== summary ====")
    print(f"adapter: {report.get('features', {}).get('adapter', '?')}")
    mm = report.get("matmul", {})
    torch_rate = {(t["n"], t["tf32"]): t["gflops"] for t in mm.get("torch", [])}
    best = {}
    for r in mm.get("sweep", []):
        if "gflops" in r and (r["n"] not in best or r["gflops"] > best[r["n"]]["gflops"]):
            best[r["n"]] = r
    print(f"{'matmul n':>9} {'best config':>16} {'GFLOP/s':>9} {'torch fp32':>10} {'ratio':>6} {'torch tf32':>10}")
    for n, r in sorted(best.items()):
        t = torch_rate.get((n, False))
        print(f"{n:>9} {r['config']:>16} {r['gflops']:>9.0f} {t or float('nan'):>10.0f} "
              f"{(r['gflops'] / t if t else float('nan')):>6.1%} {torch_rate.get((n, True), float('nan')):>10.0f}")
    for r in mm.get("autotune", []):
        print(f"autotune {r['n']}: {r['chosen']} {r['gflops']:.0f} GFLOP/s")
    ew = {r["case"]: r for r in report.get("elementwise", [])}
    copy = ew.get("torch copy", {}).get("gbytes_per_s")
    for case, r in ew.items():
        ratio = f"{r['gbytes_per_s'] / copy:6.1%} of torch copy" if copy else ""
        print(f"elementwise {case:>24}: {r['gbytes_per_s']:7.0f} GB/s {ratio}")


def print_training(report):
    rows = report.get("training", [])
    if not rows:
        return
    print(f"{'workload':>8} {'rustyasg-wgpu ms':>17} {'torch.cuda ms':>14} {'ratio':>6} {'compile s':>9} {'launches':>8}")
    for r in rows:
        if "rustyasg" not in r:
            print(f"{r['workload']:>8} failed")
            continue
        t = r.get("torch", {}).get("ms", float("nan"))
        print(f"{r['workload']:>8} {r['rustyasg']['ms']:>17.2f} {t:>14.2f} {r.get('ratio', float('nan')):>6.2f} "
              f"{r['rustyasg']['compile_s']:>9.1f} {r['rustyasg']['plan']['launches']:>8}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--sizes", default="1024,2048,4096,8192")
    p.add_argument("--full-sweep-max", type=int, default=4096, help="sizes above this time only the top configs")
    p.add_argument("--top", type=int, default=4)
    p.add_argument("--check-max", type=int, default=8192, help="largest size checked against float64")
    p.add_argument("--autotune-sizes", type=int, default=2, help="how many of --sizes to autotune end to end")
    p.add_argument("--layout-size", type=int, default=4096)
    p.add_argument("--cases", default="4095x4095x4095,4096x4096x4096:nt,8192x3072x768:nt,8192x768x3072,"
                   "b32:512x512x64:nt,b32:512x64x512,b8:1024x1024x1024,1000x10x784,256x1000x4096:nt")
    p.add_argument("--ew-n", type=int, default=64 * 1024 * 1024)
    p.add_argument("--exp-size", type=int, default=4096)
    p.add_argument("--exp-configs", default="128x128x8_8x8")
    p.add_argument("--min-seconds", type=float, default=0.1)
    p.add_argument("--workloads", default="W2,W4,W5")
    p.add_argument("--train-warmup", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--profile-workload", default="W5")
    p.add_argument("--profile-top", type=int, default=30)
    p.add_argument("--json", default=None, help="write the full report here")
    p.add_argument("--out-dir", default=None, help="where the autotune cache file is kept")
    args = p.parse_args(argv)
    ctx = get_context()
    report = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args)}
    for name in args.sections.split(","):
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            SECTIONS[name](ctx, args, report)
        except Exception:
            report.setdefault("errors", {})[name] = traceback.format_exc()
            traceback.print_exc()
        report.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    print_summary(report)
    print_training(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
