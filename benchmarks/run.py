"""CPU benchmark suite: full training steps (forward, backward, optimizer update).

For each workload (``benchmarks/workloads``: W1 MLP/tanh/SGD, W2 MLP/Adam,
W3 LeNet-5/momentum, W4 GPT-mini/AdamW) it times, in one run, on the same
inputs and with the same thread count (each implementation in a fresh process,
so no two frameworks' thread pools meet):

- ``rustyasg-<backend>`` for each installed RustyASG backend,
- ``torch-cpu``: PyTorch eager,
- ``jax-cpu``: the same step as one ``jax.jit`` call (parameters donated) when jax is
  importable (``pip install "jax[cpu]"``; a benchmark extra, not a RustyASG dependency).

Step times are medians (p10, p90) over ``--steps`` calls after ``--warmup``; with
``--repeat N`` each implementation is timed in N fresh processes and the median of
the runs is reported (the runs' medians are kept in the JSON).
Compile times are measured in fresh subprocesses: ``compile_cold_s`` with empty
caches (RustyASG and numba: temporary ``RUSTYASG_CACHE_DIR`` and ``NUMBA_CACHE_DIR``;
jax: a temporary persistent compilation cache, ``JAX_COMPILATION_CACHE_DIR``),
``compile_warm_s`` in a second process reusing them; both are the first call's
time minus one steady step (``compile_cold_cpu_s``: the same in CPU time of the
process, all its threads; on a loaded machine it moves far less than wall time). The backend's one-time start-up when it is created
(for cpu: starting numba's runtime) is reported apart, as ``backend_init_cold_s``
and ``backend_init_warm_s``. For RustyASG the cold compile is also broken down by
phase (``compile_phases_cold``: ``lower``, each ``pass:<name>``, ``backend_compile``
and ``first_run``, the first call's kernel JIT and run). ``peak_rss_mb`` is the peak
resident memory of such a process after the warm-up (it includes the interpreter and
the libraries).

The floor of a workload is its GEMM and convolution FLOPs per step (``step_flops()``
of its module) at the SGEMM rate measured on this machine with the same threads
(``sgemm_gflops``: numpy's BLAS, the best of several 1024^3 products in a fresh
process); ``floor_pct`` is floor / median step time, how close a step gets to it.

``--profile`` adds, for each RustyASG row, where its time goes (fresh process, empty
caches): the step time by kernel (each step's fastest time over ``--steps`` runs) and
the cold first call's numba compilations by kernel (CPU seconds).

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
CACHE_DIRS = {"rustyasg-": ("RUSTYASG_CACHE_DIR", "NUMBA_CACHE_DIR"), "jax-": ("JAX_COMPILATION_CACHE_DIR",)}
#: jax persists only compilations above these thresholds by default; cache every one, as numba does.
JAX_CACHE_ALL = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


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
    if impl == "jax-cpu":
        return w.jax_step(params), batches
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
    phases = None
    if impl.startswith("rustyasg-"):
        from rustyasg.core.backends import get_backend

        get_backend(impl.split("-", 1)[1])  # backend start-up (JIT runtime), reported on its own
        init = time.perf_counter() - t0
        t0 = time.perf_counter()
    if impl.startswith("jax-"):
        _pin_threads(int(os.environ["OMP_NUM_THREADS"]))
        import jax

        jax.config.update("jax_platforms", "cpu")
        jax.numpy.zeros(1).block_until_ready()  # runtime start-up, as the backend's init above
        init = time.perf_counter() - t0
        t0 = time.perf_counter()
    c0 = time.process_time()
    step, batches = build(workload, impl)
    if impl.startswith("rustyasg-"):
        phases = {"build": time.perf_counter() - t0}
        with _phase_timer(phases):
            loss = float(step(*batches[0]))
    else:
        loss = float(step(*batches[0]))
    first = time.perf_counter() - t0
    first_cpu = time.process_time() - c0
    c0 = time.process_time()
    times = np.array(time_steps(step, batches, warmup, steps, max_seconds))
    steady_cpu = (time.process_time() - c0) / (len(times) + warmup)
    steady = float(np.median(times))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"first_call_s": first, "compile_s": max(first - steady, 0.0), "backend_init_s": init,
            "compile_cpu_s": max(first_cpu - steady_cpu, 0.0),
            "median_ms": steady * 1e3, "p10_ms": float(np.percentile(times, 10)) * 1e3,
            "p90_ms": float(np.percentile(times, 90)) * 1e3, "steps_timed": int(times.size),
            "peak_rss_mb": rss, "loss_first_step": loss, "compile_phases": phases}


def kernel_name(py_func) -> str:
    """A compiled function's name: a generated kernel's module without its source hash, else the function."""
    module = getattr(py_func, "__module__", "") or ""
    if module.startswith("rustyasg_generated."):  # <prefix>_<source hash>
        return module.rsplit(".", 1)[-1].rsplit("_", 1)[0]
    return py_func.__name__


def numba_compile_log(name=kernel_name):
    """Log every top-level numba compilation ``(name(py_func), CPU seconds)`` from now on.

    Returns the list it fills and a function that stops logging. Helpers compiled inside a
    kernel count in the kernel.
    """
    from numba.core import dispatcher

    log, depth, original = [], [0], dispatcher.Dispatcher.compile

    def logged(self, sig):
        c0 = time.process_time()
        depth[0] += 1
        try:
            return original(self, sig)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                log.append((name(self.py_func), time.process_time() - c0))

    def stop():
        dispatcher.Dispatcher.compile = original

    dispatcher.Dispatcher.compile = logged
    return log, stop


def profile_child(workload: str, impl: str, runs: int) -> dict:
    """Where a RustyASG step's time goes, in a fresh process (run it with empty caches).

    ``compiles``: every numba compilation of the first call (kernel, CPU seconds), from
    numba's dispatcher; ``ops``: per kernel label, the sum over its steps of each step's
    fastest time over ``runs`` steps (the fastest, not the mean: on a shared machine the
    neighbours only ever add time).
    """
    import collections

    from rustyasg.core import observe

    compiles, stop_compile_log = numba_compile_log()
    from rustyasg.core.backends import get_backend

    get_backend(impl.split("-", 1)[1])
    init_compiles = len(compiles)
    step, batches = build(workload, impl)
    c0 = time.process_time()
    step(*batches[0])
    first_cpu = time.process_time() - c0
    stop_compile_log()
    best: dict = {}

    class StepMinima(observe.Observer):
        def wrap_steps(self, executable, steps, infos):
            def timed(k, fn, label):
                def call():
                    t0 = time.perf_counter()
                    fn()
                    dt = time.perf_counter() - t0
                    if dt < best.get(k, (float("inf"),))[0]:
                        best[k] = (dt, label)
                return call
            return [timed(k, fn, info.label.split("(")[0]) for k, (fn, info) in enumerate(zip(steps, infos))]

    for i in range(3):
        step(*batches[i % len(batches)])
    with observe.observing(StepMinima()):
        for i in range(runs):
            step(*batches[i % len(batches)])
    ops = collections.defaultdict(lambda: [0, 0.0])
    for seconds, label in best.values():
        ops[label][0] += 1
        ops[label][1] += seconds * 1e3
    per_kernel = collections.defaultdict(lambda: [0, 0.0])
    for name, seconds in compiles[init_compiles:]:
        per_kernel[name][0] += 1
        per_kernel[name][1] += seconds
    return {"first_call_cpu_s": first_cpu, "init_compiles": init_compiles,
            "compiles": sorted(([k, n, t] for k, (n, t) in per_kernel.items()), key=lambda r: -r[2]),
            "ops": sorted(([k, n, t] for k, (n, t) in ops.items()), key=lambda r: -r[2])}


def profile_text(workload: str, impl: str, prof: dict, limit: int = 12) -> str:
    """The profile of :func:`profile_child` as text: step time by kernel, cold compile by kernel."""
    total = sum(r[2] for r in prof["ops"]) or 1.0
    comp = sum(r[2] for r in prof["compiles"])
    lines = [f"{workload} {impl}: sum of per-step minima {total:.3f} ms",
             f"  {'kernel':<36} {'steps':>5} {'ms':>8} {'share':>6}"]
    lines += [f"  {k[:36]:<36} {n:>5} {t:8.3f} {100 * t / total:5.1f}%" for k, n, t in prof["ops"][:limit]]
    lines.append(f"  cold first call: {prof['first_call_cpu_s']:.2f} CPU s, of which numba compiled "
                 f"{sum(r[1] for r in prof['compiles'])} kernels in {comp:.2f} CPU s "
                 f"(+{prof['init_compiles']} at backend start-up)")
    lines += [f"  {k[:36]:<36} {n:>5} {t:8.3f} s" for k, n, t in prof["compiles"][:limit]]
    return "\n".join(lines)


def _pin_threads(threads: int) -> None:
    """jax sizes its pools by the CPUs it may run on: restrict them to ``threads`` (Linux)."""
    if hasattr(os, "sched_setaffinity") and threads < len(os.sched_getaffinity(0)):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])


def _phase_timer(phases: dict):
    """An observer summing RustyASG's compile phases (seconds) into ``phases``; the first run
    (numba compiles or loads each kernel on its first call) is ``first_run``."""
    from rustyasg.core import observe

    class PhaseTimer(observe.Observer):
        def run(self, function, executable, arrays, first=False):
            t0 = time.perf_counter()
            handles = executable.run(arrays)
            if first:
                phases["first_run"] = phases.get("first_run", 0.0) + time.perf_counter() - t0
            return handles

        def on_compile_event(self, name, seconds, **info):
            if seconds:
                phases[name] = phases.get(name, 0.0) + seconds

    return observe.observing(PhaseTimer())


def sgemm_gflops(seconds: float = 3.0, n: int = 1024) -> float:
    """The best SGEMM rate (GFLOP/s) of numpy's BLAS here, ``n``^3 float32, current thread settings.

    Products are timed for ``seconds`` and the fastest counts: on a shared machine the
    neighbours' load only ever slows one down, so the best is the machine's own rate.
    """
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        np.matmul(a, a, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


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
    keys = ("median_ms", "p10_ms", "p90_ms", "steps_timed", "peak_rss_mb", "loss_first_step", "repeats",
            "run_medians_ms")
    cache_vars = next((v for prefix, v in CACHE_DIRS.items() if impl.startswith(prefix)), None)
    if cache_vars is None or args.no_compile:
        res = combine([run_child(workload, impl, {}, args, args.steps) for _ in range(args.repeat)])
        rec.update({k: res.get(k) for k in keys})
        if "error" in res:
            rec["error"] = res["error"]
        return rec
    with tempfile.TemporaryDirectory() as cache:
        env = {var: os.path.join(cache, var.lower()) for var in cache_vars}
        if impl.startswith("jax-"):
            env.update(JAX_CACHE_ALL)
        cold = run_child(workload, impl, env, args, 3)
        runs = [run_child(workload, impl, env, args, args.steps) for _ in range(args.repeat)]
        warm = combine(runs)
    rec.update({k: warm.get(k) for k in keys})
    rec.update(compile_cold_s=cold.get("compile_s"), compile_warm_s=warm.get("compile_s"),
               compile_cold_cpu_s=cold.get("compile_cpu_s"),
               backend_init_cold_s=cold.get("backend_init_s"), backend_init_warm_s=warm.get("backend_init_s"),
               compile_phases_cold=cold.get("compile_phases"), compile_phases_warm=warm.get("compile_phases"))
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
    ap.add_argument("--child-sgemm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-profile", nargs=2, metavar=("WORKLOAD", "IMPL"), help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true",
                    help="also profile each rustyasg row: step time by kernel, cold compile by kernel")
    args = ap.parse_args(argv)
    set_thread_env(args.threads)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.warmup, args.steps, args.max_seconds)))
        return 0
    if args.child_profile:
        print(json.dumps(profile_child(args.child_profile[0], args.child_profile[1], args.steps)))
        return 0
    if args.child_sgemm:
        print(json.dumps({"sgemm_gflops": sgemm_gflops()}))
        return 0
    impls = implementations(args.impls)
    records = []
    gflops = measure_sgemm(args)
    print(f"{machine()}\nthreads={args.threads}  steps={args.steps}  warmup={args.warmup}  repeat={args.repeat}  "
          f"sgemm={gflops:.0f} GFLOP/s  impls={','.join(impls)}", flush=True)
    for workload in [w for w in args.workloads.split(",") if w]:
        floor_ms = _floor_ms(workload, gflops)
        for impl in impls:
            records.append(dict(measure(workload, impl, args), floor_ms=floor_ms, sgemm_gflops=gflops,
                                machine=machine()))
            print(_row(records[-1], records), flush=True)
            if args.profile and impl.startswith("rustyasg-"):
                records[-1]["profile"] = run_profile(workload, impl, args)
                if "error" not in records[-1]["profile"]:
                    print(profile_text(workload, impl, records[-1]["profile"]), flush=True)
    gflops_end = measure_sgemm(args)  # again at the end: the faster of the two is the machine's rate
    if gflops_end > gflops:
        for rec in records:
            rec.update(sgemm_gflops=gflops_end, floor_ms=_floor_ms(rec["workload"], gflops_end))
    print()
    print(f"sgemm={max(gflops, gflops_end):.0f} GFLOP/s (best of the start and the end of the run)")
    print(table(records))
    for line in loss_mismatches(records):
        print(line)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 0


def run_profile(workload: str, impl: str, args) -> dict:
    """:func:`profile_child` in a fresh process with empty caches."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, RUSTYASG_CACHE_DIR=os.path.join(cache, "r"), NUMBA_CACHE_DIR=os.path.join(cache, "n"))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-profile", workload, impl,
               "--threads", str(args.threads), "--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def loss_mismatches(records, rtol: float = 1e-3):
    """Warnings for rows whose first-step loss differs from torch's: the implementations must
    compute the same step (same weights, data, model and optimizer) for the timings to compare."""
    for rec in records:
        ref = next((r for r in records if r["workload"] == rec["workload"] and r["impl"] == "torch-cpu"), None)
        a, b = rec.get("loss_first_step"), (ref or {}).get("loss_first_step")
        if a is not None and b is not None and abs(a - b) > rtol * max(1.0, abs(b)):
            yield f"warning: {rec['workload']} {rec['impl']}: first-step loss {a:.6f}, torch-cpu's {b:.6f}"


def measure_sgemm(args) -> float:
    """SGEMM GFLOP/s in a fresh process with the suite's thread settings (0.0 if it failed)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-sgemm", "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        return float(json.loads(out.stdout.strip().splitlines()[-1])["sgemm_gflops"])
    except (IndexError, KeyError, ValueError):
        return 0.0


def machine() -> str:
    """The CPU model and core count (Linux: /proc/cpuinfo)."""
    import platform

    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} CPUs"


def _floor_ms(workload: str, gflops: float):
    from benchmarks.workloads import load

    return load(workload).step_flops() / (gflops * 1e9) * 1e3 if gflops > 0 else None


def _fmt(v, spec):
    return "-".rjust(int(spec.split(".")[0] or 0)) if v is None else format(v, spec)


def _ratio(rec, records, impl="torch-cpu"):
    ref = next((r for r in records if r["workload"] == rec["workload"] and r["impl"] == impl
                and r.get("median_ms")), None)
    if ref is None or rec.get("median_ms") is None:
        return None
    return rec["median_ms"] / ref["median_ms"]


def _floor_pct(rec):
    if rec.get("floor_ms") is None or not rec.get("median_ms"):
        return None
    return 100.0 * rec["floor_ms"] / rec["median_ms"]


def _row(rec, records):
    err = f"  [{rec['error']}]" if rec.get("error") else ""
    return (f"{rec['workload']:<4} {rec['impl']:<20} {_fmt(rec['median_ms'], '9.3f')} {_fmt(rec['p10_ms'], '8.3f')} "
            f"{_fmt(rec['p90_ms'], '8.3f')} {_fmt(_ratio(rec, records), '8.2f')} "
            f"{_fmt(_ratio(rec, records, 'jax-cpu'), '6.2f')} {_fmt(rec.get('floor_ms'), '8.3f')} "
            f"{_fmt(_floor_pct(rec), '6.1f')} {_fmt(rec['compile_cold_s'], '6.2f')} "
            f"{_fmt(rec.get('compile_cold_cpu_s'), '7.2f')} "
            f"{_fmt(rec['compile_warm_s'], '6.2f')} {_fmt(rec['peak_rss_mb'], '6.0f')}{err}")


def table(records) -> str:
    """The records as a fixed-width table: ``vs_torch`` and ``vs_jax`` are median step-time ratios;
    ``floor_ms`` the GEMM FLOPs at the measured SGEMM rate, ``floor%`` floor / median."""
    head = (f"{'wl':<4} {'impl':<20} {'median_ms':>9} {'p10_ms':>8} {'p90_ms':>8} {'vs_torch':>8} {'vs_jax':>6} "
            f"{'floor_ms':>8} {'floor%':>6} {'cold_s':>6} {'cold_cpu':>7} {'warm_s':>6} {'rss_mb':>6}")
    return "\n".join([head] + [_row(r, records) for r in records])


if __name__ == "__main__":
    sys.exit(main())
