"""CPU benchmark suite: full training steps (forward, backward, optimizer update).

For each workload (``benchmarks/workloads``: W1 MLP/tanh/SGD, W2 MLP/Adam,
W3 LeNet-5/momentum, W4 GPT-mini/AdamW) it times, in one run, on the same
inputs and with the same thread count (each implementation in a fresh process,
so no two frameworks' thread pools meet):

- ``rustyasg-<backend>`` for each installed RustyASG backend,
- ``torch-cpu``: PyTorch eager,
- ``jax-cpu``: ``jax.jit`` when jax is importable (not implemented: reported as missing).

Step times are medians (p10, p90) over ``--steps`` calls after ``--warmup``; with
``--repeat N`` each implementation is timed in N fresh processes and the median of
the runs is reported (the runs' medians are kept in the JSON).
Compile times are measured in fresh subprocesses: ``compile_cold_s`` with empty
RustyASG and numba caches (temporary ``RUSTYASG_CACHE_DIR`` and ``NUMBA_CACHE_DIR``),
``compile_warm_s`` in a second process reusing them; both are the first call's
time minus one steady step. The backend's one-time start-up when it is created
(for cpu: starting numba's runtime) is reported apart, as ``backend_init_cold_s``
and ``backend_init_warm_s``. ``peak_rss_mb`` is the peak resident memory of such a
process after the warm-up (it includes the interpreter and the libraries).

Usage::

    python benchmarks/run.py                      # all workloads, table on stdout
    python benchmarks/run.py --json out.json --threads 2 --workloads W2,W4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def set_thread_env(threads: int) -> None:
    """Pin every thread pool (BLAS, OpenMP, numba, torch) to ``threads`` before any of them starts.

    Only environment variables: starting a pool at run time (``numba.set_num_threads``,
    ``threadpoolctl``) leaves its threads next to torch's OpenMP pool, and on a small
    machine the two fight (torch's W4 step went from 28 ms to 944 ms, measured).
    """
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def build(workload: str, impl: str):
    """``(step, batches)`` for one implementation of a workload, from seeded parameters and data."""
    import numpy as np

    from benchmarks.workloads import load

    w = load(workload)
    params = w.init_params(np.random.default_rng(0))
    batches = [w.make_batch(np.random.default_rng(1000 + i)) for i in range(8)]
    if impl == "torch-cpu":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        return w.torch_step(params), batches
    if impl.startswith("rustyasg-"):
        return w.rustyasg_step(params, impl.split("-", 1)[1]), batches
    raise ValueError(f"unknown implementation {impl!r}")


def time_steps(step, batches, warmup: int, steps: int, max_seconds: float):
    """Per-step times (seconds) after ``warmup`` calls; stops early after ``max_seconds``."""
    for i in range(warmup):
        step(*batches[i % len(batches)])
    times, start = [], time.perf_counter()
    for i in range(steps):
        t0 = time.perf_counter()
        step(*batches[i % len(batches)])
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > max_seconds and len(times) >= 3:
            break
    return times


def child(workload: str, impl: str, warmup: int, steps: int, max_seconds: float) -> dict:
    """Run in a fresh process: start-up, the first call, then the timed steps and the peak RSS."""
    import resource

    import numpy as np

    t0 = time.perf_counter()
    init = 0.0
    if impl.startswith("rustyasg-"):
        from rustyasg.core.backends import get_backend

        get_backend(impl.split("-", 1)[1])  # backend start-up (JIT runtime), reported on its own
        init = time.perf_counter() - t0
        t0 = time.perf_counter()
    step, batches = build(workload, impl)
    loss = float(step(*batches[0]))
    first = time.perf_counter() - t0
    times = np.array(time_steps(step, batches, warmup, steps, max_seconds))
    steady = float(np.median(times))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"first_call_s": first, "compile_s": max(first - steady, 0.0), "backend_init_s": init,
            "median_ms": steady * 1e3, "p10_ms": float(np.percentile(times, 10)) * 1e3,
            "p90_ms": float(np.percentile(times, 90)) * 1e3, "steps_timed": int(times.size),
            "peak_rss_mb": rss, "loss_first_step": loss}


def run_child(workload: str, impl: str, env_extra: dict, args, steps: int, timeout: float = 900.0) -> dict:
    env = dict(os.environ, **env_extra)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", workload, impl, "--threads", str(args.threads),
           "--warmup", str(args.warmup), "--steps", str(steps), "--max-seconds", str(args.max_seconds)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["failed"]
        return {"error": lines[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def implementations(requested):
    import importlib.util

    from rustyasg.core.backends import installed_backends

    impls = [f"rustyasg-{b}" for b in installed_backends()] + ["torch-cpu"]
    if importlib.util.find_spec("jax") is not None:
        impls.append("jax-cpu")
    if requested:
        impls = [i for i in requested.split(",") if i]
    return impls


def combine(runs):
    """Median over repeated runs of each timing statistic (a neighbour's burst spoils one run, not all)."""
    import numpy as np

    ok = [r for r in runs if r.get("median_ms") is not None]
    if not ok:
        return runs[0]
    out = dict(ok[0])
    for key in ("median_ms", "p10_ms", "p90_ms"):
        out[key] = float(np.median([r[key] for r in ok]))
    out["repeats"] = len(ok)
    out["run_medians_ms"] = [round(r["median_ms"], 4) for r in ok]
    return out


def measure(workload: str, impl: str, args) -> dict:
    """One record: timings from a fresh process, compile times from cold- and warm-cache processes."""
    rec = {"workload": workload, "impl": impl, "median_ms": None, "p10_ms": None, "p90_ms": None,
           "compile_cold_s": None, "compile_warm_s": None, "peak_rss_mb": None, "threads": args.threads}
    if impl == "jax-cpu":
        rec["error"] = "jax workloads are not written yet"
        return rec
    keys = ("median_ms", "p10_ms", "p90_ms", "steps_timed", "peak_rss_mb", "loss_first_step", "repeats",
            "run_medians_ms")
    if not impl.startswith("rustyasg-") or args.no_compile:
        res = combine([run_child(workload, impl, {}, args, args.steps) for _ in range(args.repeat)])
        rec.update({k: res.get(k) for k in keys})
        if "error" in res:
            rec["error"] = res["error"]
        return rec
    with tempfile.TemporaryDirectory() as rcache, tempfile.TemporaryDirectory() as ncache:
        env = {"RUSTYASG_CACHE_DIR": rcache, "NUMBA_CACHE_DIR": ncache}
        cold = run_child(workload, impl, env, args, 3)
        runs = [run_child(workload, impl, env, args, args.steps) for _ in range(args.repeat)]
        warm = combine(runs)
    rec.update({k: warm.get(k) for k in keys})
    rec.update(compile_cold_s=cold.get("compile_s"), compile_warm_s=warm.get("compile_s"),
               backend_init_cold_s=cold.get("backend_init_s"), backend_init_warm_s=warm.get("backend_init_s"))
    if "error" in cold or "error" in warm:
        rec["error"] = warm.get("error") or cold.get("error")
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="W1,W2,W3,W4")
    ap.add_argument("--impls", default="", help="comma list, e.g. rustyasg-cpu,torch-cpu (default: all installed)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every implementation")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=20.0, help="time budget per implementation and workload")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm-cache compile measurements")
    ap.add_argument("--repeat", type=int, default=1, help="timing processes per implementation (median taken)")
    ap.add_argument("--json", default=None, help="write the records here")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    set_thread_env(args.threads)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.warmup, args.steps, args.max_seconds)))
        return 0
    impls = implementations(args.impls)
    records = []
    print(f"threads={args.threads}  steps={args.steps}  warmup={args.warmup}  impls={','.join(impls)}", flush=True)
    for workload in [w for w in args.workloads.split(",") if w]:
        for impl in impls:
            records.append(measure(workload, impl, args))
            print(_row(records[-1], records), flush=True)
    print()
    print(table(records))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 0


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _ratio(rec, records):
    ref = next((r for r in records if r["workload"] == rec["workload"] and r["impl"] == "torch-cpu"
                and r.get("median_ms")), None)
    if ref is None or rec.get("median_ms") is None:
        return None
    return rec["median_ms"] / ref["median_ms"]


def _row(rec, records):
    err = f"  [{rec['error']}]" if rec.get("error") else ""
    return (f"{rec['workload']:<4} {rec['impl']:<18} {_fmt(rec['median_ms'], '10.3f')} {_fmt(rec['p10_ms'], '9.3f')} "
            f"{_fmt(rec['p90_ms'], '9.3f')} {_fmt(_ratio(rec, records), '8.2f')} {_fmt(rec['compile_cold_s'], '8.2f')} "
            f"{_fmt(rec['compile_warm_s'], '8.2f')} {_fmt(rec['peak_rss_mb'], '8.0f')}{err}")


def table(records) -> str:
    """The records as a fixed-width table; ``vs torch`` is the median step-time ratio."""
    head = (f"{'wl':<4} {'impl':<18} {'median_ms':>10} {'p10_ms':>9} {'p90_ms':>9} {'vs_torch':>8} {'cold_s':>8} "
            f"{'warm_s':>8} {'rss_mb':>8}")
    return "\n".join([head] + [_row(r, records) for r in records])


if __name__ == "__main__":
    sys.exit(main())
