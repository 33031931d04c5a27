"""Tensor-core (f16, subgroup-matrix) matmul on the chosen WebGPU implementation, against torch.

Checks every tile config on edge-sized and transposed problems against
float64 (of the f16-rounded operands), then times square problems for every
config, the autotuner's pick, f16 and f32 outputs, and torch's fp16, bf16,
TF32 and fp32 matmuls on the same GPU. Run with ``RUSTYASG_WEBGPU=dawn``.

Example::

    RUSTYASG_WEBGPU=dawn python benchmarks/gpu/tensor_cores.py --sizes 4096,8192 --json tc.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

_SRC = Path(__file__).resolve().parents[2] / "rustyasg-wgpu" / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from rustyasg.wgpu.buffers import BufferPool, Readback, upload  # noqa: E402
from rustyasg.wgpu.device import get_context  # noqa: E402
from rustyasg.wgpu.kernels.autotune import time_gpu  # noqa: E402
from rustyasg.wgpu.kernels.matmul import MatmulPlanner  # noqa: E402
from rustyasg.wgpu.kernels.matmul_tc import TcMatmulPlanner  # noqa: E402

try:
    import torch
    HAVE_CUDA = torch.cuda.is_available()
except ImportError:
    torch, HAVE_CUDA = None, False


def torch_rate(n: int, dtype, tf32: bool = False, min_seconds: float = 0.2) -> float:
    """torch.cuda matmul GFLOP/s at n^3."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < min_seconds:
        a @ b
        reps += 1
    torch.cuda.synchronize()
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def check_case(ctx, tc, pool, rb, M, N, K, ta, tb, out_dtype, config, batch=1, seed=0):
    """Relative max error of one tensor-core product against float64."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((batch, K, M) if ta else (batch, M, K)).astype(np.float16)
    b = rng.standard_normal((batch, N, K) if tb else (batch, K, N)).astype(np.float16)
    ab, bb = upload(ctx, a, pool), upload(ctx, b, pool)
    esize = 4 if out_dtype == "f32" else 2
    cb = pool.acquire(max(batch * M * N * esize, 4))
    tc.launch(ab, bb, cb, M, N, K, batch=batch, trans_a=ta, trans_b=tb, out_dtype=out_dtype, config=config).run()
    out = rb.read_array(cb, (batch, M, N), np.float32 if out_dtype == "f32" else np.float16).astype(np.float64)
    a64 = a.astype(np.float64).transpose(0, 2, 1) if ta else a.astype(np.float64)
    b64 = b.astype(np.float64).transpose(0, 2, 1) if tb else b.astype(np.float64)
    ref = a64 @ b64
    for buf in (ab, bb, cb):
        pool.release(buf)
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))


def time_case(ctx, tc, pool, n, out_dtype, config, ta=False, tb=False):
    a = pool.acquire(n * n * 2)
    b = pool.acquire(n * n * 2)
    c = pool.acquire(n * n * (4 if out_dtype == "f32" else 2))
    ctx.queue.write_buffer(a, 0, (np.random.default_rng(1).standard_normal(n * n) * 0.1).astype(np.float16).tobytes())
    ctx.queue.write_buffer(b, 0, (np.random.default_rng(2).standard_normal(n * n) * 0.1).astype(np.float16).tobytes())
    launch = tc.launch(a, b, c, n, n, n, trans_a=ta, trans_b=tb, out_dtype=out_dtype, config=config)
    sec = time_gpu(ctx, launch.encode, min_seconds=0.1)
    for buf in (a, b, c):
        pool.release(buf)
    return 2 * n**3 / sec / 1e9


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="4096,8192")
    p.add_argument("--json", default=None)
    p.add_argument("--top", type=int, default=3, help="configs timed at sizes above 4096")
    p.add_argument("--only", default="", help="check and time only configs whose name contains one of "
                                                 "these comma-separated strings")
    p.add_argument("--trial", action="store_true",
                   help="also check and time the configs not yet verified on a GPU (matmul_tc.TRIAL_CANDIDATES)")
    p.add_argument("--layouts", default="nn",
                   help="comma list of operand layouts timed at 4096 and below: nn, nt (B transposed), tn, tt")
    p.add_argument("--rounds", type=int, default=1,
                   help="time every config this many times, round-robin, and keep each one's best")
    args = p.parse_args(argv)
    ctx = get_context()
    report = {"adapter": ctx.summary, "implementation": ctx.implementation, "features": sorted(ctx.features),
              "subgroup_matrix_configs": list(ctx.subgroup_matrix_configs),
              "limits": {k: ctx.limits.get(k) for k in ("max-compute-workgroup-storage-size",
                                                         "max-compute-invocations-per-workgroup",
                                                         "max-storage-buffer-binding-size")}}
    print(json.dumps(report, indent=1), flush=True)
    tc = TcMatmulPlanner.for_context(ctx, trial=args.trial)
    if tc is None:
        print("no tensor-core path on this adapter")
        return 1
    pool, rb = BufferPool(ctx), Readback(ctx)
    wanted = args.only.split(",")
    tc.names = [n for n in tc.names if any(w in n for w in wanted)]
    report["configs"] = tc.names
    checks = []
    # Aligned cases (every config runs them) and edge cases (staged configs only), all layouts.
    cases = [(256, 256, 64, False, False, 1, ("f32", "f16")), (100, 72, 50, False, False, 1, ("f32", "f16")),
             (257, 129, 96, True, False, 1, ("f32",)), (96, 200, 130, False, True, 2, ("f16",))]
    for name in tc.names:
        for (M, N, K, ta, tb, batch, outs) in cases:
            if name not in tc.runnable(M, N, K):
                continue
            for od in outs:
                err = check_case(ctx, tc, pool, rb, M, N, K, ta, tb, od, name, batch)
                checks.append(dict(config=name, M=M, N=N, K=K, ta=ta, tb=tb, batch=batch, out=od, rel_err=err))
        mine = [c["rel_err"] for c in checks if c["config"] == name]
        print(f"  check {name:>24}: {len(mine)} cases, worst rel err {max(mine):.2e}", flush=True)
    worst = max(c["rel_err"] for c in checks)
    bad = [c for c in checks if not c["rel_err"] < (2e-3 if c["out"] == "f16" else 1e-4)]
    report["correct_configs"] = sorted({c["config"] for c in checks} - {c["config"] for c in bad})
    print("correct configs:", report["correct_configs"], flush=True)
    print(f"correctness: {len(checks)} cases, worst rel err {worst:.2e}, {len(bad)} over tolerance", flush=True)
    for c in bad[:10]:
        print("  BAD", c)
    report["checks"] = checks
    timings = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        names = report["correct_configs"] if n <= 4096 else sorted(timings.get(4096, {}), key=lambda k: -timings[4096][k])[:args.top]
        timings[n] = {}
        for r in range(args.rounds):  # round-robin: a slow spell of the GPU does not sink one config
            for name in names or tc.names:
                try:
                    rate = time_case(ctx, tc, pool, n, "f32", name)
                except Exception as exc:
                    print(f"  {name} failed: {exc}"[:300])
                    continue
                timings[n][name] = max(rate, timings[n].get(name, 0.0))
                print(f"  tc {n}^3 round {r} {name:>24}: {rate:9.0f} GFLOP/s (f32 out)", flush=True)
    report["timings_f32_out"] = timings
    # Transposed layouts (weight and input gradients are TN and NT products): every correct config.
    by_layout = {}
    for layout in [v for v in args.layouts.split(",") if v != "nn"]:
        ta, tb = layout[0] == "t", layout[1] == "t"
        for n in [n for n in sizes if n <= 4096]:
            rates = by_layout.setdefault(layout, {}).setdefault(n, {})
            for name in report["correct_configs"]:
                try:
                    rates[name] = time_case(ctx, tc, pool, n, "f32", name, ta=ta, tb=tb)
                except Exception as exc:
                    print(f"  {name} {layout} failed: {exc}"[:300])
                    continue
                print(f"  tc {n}^3 {layout} {name:>24}: {rates[name]:9.0f} GFLOP/s (f32 out)", flush=True)
    report["timings_f32_out_by_layout"] = by_layout
    summary = {}
    for n in sizes:
        best = max(timings[n], key=timings[n].get)
        row = {"best_config": best, "f32_out": timings[n][best],
               "f16_out": time_case(ctx, tc, pool, n, "f16", best),
               "nt_f16_out": time_case(ctx, tc, pool, n, "f16", best, tb=True)}
        t0 = time.perf_counter()
        a, b, c = (pool.acquire(n * n * 2) for _ in range(3))
        row["autotuned"] = tc.launch(a, b, c, n, n, n, out_dtype="f16").label
        row["autotune_s"] = time.perf_counter() - t0
        for buf in (a, b, c):
            pool.release(buf)
        fp32 = MatmulPlanner(ctx)
        a32, b32, c32 = (pool.acquire(n * n * 4) for _ in range(3))
        row["wgsl_fp32"] = 2 * n**3 / time_gpu(ctx, fp32.launch(a32, b32, c32, n, n, n).encode, min_seconds=0.1) / 1e9
        for buf in (a32, b32, c32):
            pool.release(buf)
        if HAVE_CUDA:
            row["torch_fp16"] = torch_rate(n, torch.float16)
            row["torch_bf16"] = torch_rate(n, torch.bfloat16)
            row["torch_tf32"] = torch_rate(n, torch.float32, tf32=True)
            row["torch_fp32"] = torch_rate(n, torch.float32)
        summary[n] = row
    report["summary"] = summary
    print("\n==== tensor-core summary ====")
    print(f"{ctx.summary} [{ctx.implementation}]")
    print(f"{'n':>6} {'best':>20} {'f32out':>8} {'f16out':>8} {'NT f16':>8} {'fp32wgsl':>9} {'torch16':>8} "
          f"{'bf16':>8} {'tf32':>8} {'fp32':>7} {'%fp16':>6}")
    for n, r in summary.items():
        pct = 100 * r["f16_out"] / r["torch_fp16"] if "torch_fp16" in r else float("nan")
        print(f"{n:>6} {r['best_config']:>20} {r['f32_out']:8.0f} {r['f16_out']:8.0f} {r['nt_f16_out']:8.0f} "
              f"{r['wgsl_fp32']:9.0f} {r.get('torch_fp16', 0):8.0f} {r.get('torch_bf16', 0):8.0f} "
              f"{r.get('torch_tf32', 0):8.0f} {r.get('torch_fp32', 0):7.0f} {pct:5.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0 if not bad else 2


if __name__ == "__main__":
    sys.exit(main())
