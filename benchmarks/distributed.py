"""Distributed benchmarks: data-parallel scaling, communication volume on paper, parallel data loading.

1. **Scaling** (real MPI ranks, ``mpiexec`` from the mpich wheel): the W2 (MLP/Adam) and W4
   (GPT-mini/AdamW) training steps of ``benchmarks/workloads`` on 1, 2 (and ``--ranks``) ranks,
   data parallel with the bucketed gradient all-reduce inside the compiled step, and with ZeRO-1
   (reduce-scatter + all-gather, optimizer state per rank reported). Weak scaling:
   every rank runs the workload's batch, so the global batch grows with the ranks. Reported: the
   median step time, the share of it spent in collectives (time inside MPI calls, which includes
   waiting for the slowest rank; for the overlapped all-reduce, only the time the step blocked in
   the wait), throughput and its speed-up over one rank. "DP overlapped" issues each gradient
   bucket's all-reduce as soon as the bucket is complete and waits at the end of the backward pass;
   "DP blocking" all-reduces each bucket in one blocking call. Each rank is pinned to one thread.
2. **Communication on paper**: bytes per step of the gradient all-reduce (ring: each rank sends
   and receives ``2 (N-1)/N`` times the gradient bytes) and of ZeRO-1 (a reduce-scatter plus an
   all-gather: the same volume) for the W5 GPT (d512, 6 blocks, vocab 256) at 8 and 64 ranks.
3. **Data loading**: an image folder of JPEGs decoded with Pillow and augmented (random resized
   crop, flip), one epoch through ``DataLoader`` with ``num_workers`` 0 (a prefetch thread) and 2.

Usage::

    python benchmarks/distributed.py --json bench-results/distributed.json
    python benchmarks/distributed.py --parts paper          # only the computed table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


# -- 1. scaling: the part that runs on every rank -----------------------------------------------------
def rank_child(workload: str, backend: str, warmup: int, steps: int, zero: int = 0, overlap: int = 1) -> None:
    """Under mpiexec: the workload's step made data parallel; rank 0 prints one JSON line."""
    import numpy as np

    import rustyasg.core as rg
    import rustyasg.distributed as dist
    from benchmarks.workloads import load

    comm = dist.init()
    w = load(workload)

    def dp_nn_step(model, params, inputs, loss, optimizer, backend):
        # The workload's own model, loss and optimizer; only the optimizer becomes data parallel.
        model.load_state_dict(params)
        dist.broadcast_variables(model.parameters())
        opt = made["optimizer"] = dist.data_parallel(optimizer, zero=zero, overlap=bool(overlap))
        return rg.function(list(inputs), loss, updates={**opt.updates(loss), **model.state_updates()},
                           backend=backend)

    made = {}
    w.nn_step = dp_nn_step
    step = w.rustyasg_step(w.init_params(np.random.default_rng(0)), backend)
    batches = [w.make_batch(np.random.default_rng(1000 + 97 * comm.rank + i)) for i in range(4)]
    program = step.lower(*batches[0])
    collectives = [i for i in program.instrs if i.op in ("all_reduce", "all_reduce_start", "reduce_scatter",
                                                          "all_gather")]
    grad_bytes = sum(int(np.prod(p.shape)) * np.dtype(p.dtype).itemsize for p in made["optimizer"].params())
    for i in range(warmup):
        step(*batches[i % len(batches)])
    comm.barrier()
    before = dict(comm.stats)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(*batches[i % len(batches)])
        times.append(time.perf_counter() - t0)
    comm_s = comm.stats["seconds"] - before["seconds"]
    shares = comm.all_gather(np.array([comm_s / sum(times)]))
    medians = comm.all_gather(np.array([float(np.median(times))]))
    opt = made["optimizer"]
    state = opt.memory_report()["state_bytes_this_rank"] if zero else sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for s in opt.optimizer.state.values() for v in s.values())
    if comm.rank == 0:
        print(json.dumps({"workload": workload, "ranks": comm.world_size, "backend": backend, "zero": zero,
                          "overlap": bool(overlap and not zero),
                          "optimizer_state_mb_per_rank": state / 1e6,
                          "median_ms": float(np.max(medians)) * 1e3, "allreduce_share": float(np.mean(shares)),
                          "buckets": len(collectives), "grad_bytes": int(grad_bytes),
                          "batch_per_rank": int(batches[0][0].shape[0]), "steps": steps}))


def scaling(workloads, ranks_list, backend: str, warmup: int, steps: int, zero_too: bool = True) -> list:
    from rustyasg.distributed import find_mpiexec

    env = dict(os.environ, PYTHONWARNINGS="ignore", **{v: "1" for v in THREAD_VARS})
    records = []
    runs = [(w, n, 0, 1) for w in workloads for n in ranks_list]
    runs += [(w, n, 0, 0) for w in workloads for n in ranks_list if n > 1]  # the blocking all-reduce, to compare
    runs += [(w, n, 1, 0) for w in workloads for n in ranks_list if zero_too and n > 1]
    for workload, ranks, zero, overlap in runs:
        cmd = [find_mpiexec(), "-n", str(ranks), sys.executable, str(Path(__file__).resolve()), "--rank-child",
               workload, "--backend", backend, "--warmup", str(warmup), "--steps", str(steps), "--zero", str(zero),
               "--overlap", str(overlap)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
        if out.returncode != 0:
            records.append({"workload": workload, "ranks": ranks, "zero": zero, "overlap": bool(overlap),
                            "error": out.stderr.strip()[-300:]})
            continue
        records.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for rec in records:
        one = next((r for r in records if r["workload"] == rec["workload"] and r["ranks"] == 1 and "median_ms" in r
                    and not r["zero"] and r["overlap"]), None)
        if "median_ms" in rec:
            rec["samples_per_s"] = rec["ranks"] * rec["batch_per_rank"] / (rec["median_ms"] / 1e3)
            rec["throughput_speedup"] = (rec["samples_per_s"] / (one["batch_per_rank"] / (one["median_ms"] / 1e3))
                                         if one else float("nan"))
    return records


# -- 2. communication volume on paper ------------------------------------------------------------------------------
def paper(ranks_list=(8, 64)) -> list:
    from rustyasg.nn.zoo import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=256, block_size=256, n_layer=6, n_head=8, n_embd=512, tie_weights=False)
    params = GPT(cfg).num_parameters()
    grad_bytes = params * 4
    rows = []
    for n in ranks_list:
        ring = 2 * (n - 1) / n * grad_bytes  # sent (and received) by each rank per step
        rows.append({"model": "GPT d512 L6 V256 (W5)", "params": params, "ranks": n, "grad_mb": grad_bytes / 1e6,
                     "dp_per_rank_mb": ring / 1e6, "dp_total_gb": ring * n / 1e9,
                     "zero1_per_rank_mb": ((n - 1) / n * grad_bytes * 2) / 1e6,
                     "zero1_adam_state_per_rank_mb": 2 * grad_bytes / n / 1e6,
                     "time_at_10GBps_ms": ring / 10e9 * 1e3, "time_at_100GBps_ms": ring / 100e9 * 1e3})
    return rows


# -- 3. parallel data loading ----------------------------------------------------------------------------------------
def loading(images: int = 768, size: int = 160, workers=(0, 2)) -> list:
    import numpy as np
    from PIL import Image

    from rustyasg.data import DataLoader, ImageFolder
    from rustyasg.data.image_transforms import RandomResizedCrop
    from rustyasg.data.transforms import Compose, RandomHorizontalFlip

    rows = []
    with tempfile.TemporaryDirectory() as root:
        rng = np.random.default_rng(0)
        for i in range(images):
            folder = Path(root) / f"class{i % 4}"
            folder.mkdir(exist_ok=True)
            pixels = (rng.random((size, size, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
        augment = Compose([RandomResizedCrop(96, seed=0), RandomHorizontalFlip(seed=0)])
        ds = ImageFolder(root, transform=augment)
        for n in workers:
            loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0, num_workers=n)
            list(loader)  # warm the page cache and the imports
            t0 = time.perf_counter()
            count = sum(int(b[1].shape[0]) for b in loader)
            seconds = time.perf_counter() - t0
            rows.append({"num_workers": n, "images": count, "epoch_s": seconds, "images_per_s": count / seconds})
    base = rows[0]["epoch_s"]
    for r in rows:
        r["speedup"] = base / r["epoch_s"]
    return rows


def _mode(r) -> str:
    return "ZeRO-1" if r.get("zero") else "DP overlapped" if r.get("overlap", True) else "DP blocking"


def tables(result) -> str:
    out = [f"machine: {result['machine']}"]
    if result.get("scaling"):
        out += ["", "| workload | ranks | optimizer | step ms (median) | collectives share | collectives | grad MB | "
                    "samples/s | throughput x | optimizer state per rank |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in result["scaling"]:
            if "error" in r:
                out.append(f"| {r['workload']} | {r['ranks']} | {_mode(r)} | "
                           f"error: {r['error'][:80]} |")
                continue
            out.append(f"| {r['workload']} | {r['ranks']} | {_mode(r)} | {r['median_ms']:.2f} | "
                       f"{100 * r['allreduce_share']:.1f}% | {r['buckets']} | {r['grad_bytes'] / 1e6:.2f} | "
                       f"{r['samples_per_s']:.0f} | {r['throughput_speedup']:.2f} | "
                       f"{r['optimizer_state_mb_per_rank']:.2f} MB |")
    if result.get("paper"):
        out += ["", "| model | params | ranks | DP all-reduce per rank per step | all ranks | ZeRO-1 per rank | "
                    "Adam state per rank (ZeRO-1) | at 10 GB/s | at 100 GB/s |", "|---|---|---|---|---|---|---|---|---|"]
        for r in result["paper"]:
            out.append(f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['ranks']} | {r['dp_per_rank_mb']:.1f} MB | "
                       f"{r['dp_total_gb']:.2f} GB | {r['zero1_per_rank_mb']:.1f} MB | "
                       f"{r['zero1_adam_state_per_rank_mb']:.2f} MB | {r['time_at_10GBps_ms']:.1f} ms | "
                       f"{r['time_at_100GBps_ms']:.2f} ms |")
    if result.get("loading"):
        out += ["", "| DataLoader | images | epoch s | images/s | speed-up |", "|---|---|---|---|---|"]
        for r in result["loading"]:
            out.append(f"| num_workers={r['num_workers']} | {r['images']} | {r['epoch_s']:.2f} | "
                       f"{r['images_per_s']:.0f} | {r['speedup']:.2f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="scaling,paper,loading")
    ap.add_argument("--workloads", default="W2,W4")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--json", default=None)
    ap.add_argument("--rank-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--zero", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--overlap", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rank_child:
        rank_child(args.rank_child, args.backend, args.warmup, args.steps, args.zero, args.overlap)
        return 0
    parts = args.parts.split(",")
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if "scaling" in parts:
        result["scaling"] = scaling(args.workloads.split(","), [int(r) for r in args.ranks.split(",")], args.backend,
                                    args.warmup, args.steps)
    if "paper" in parts:
        result["paper"] = paper()
    if "loading" in parts:
        result["loading"] = loading()
    print(tables(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
