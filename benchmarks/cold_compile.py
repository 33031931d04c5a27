"""Cold compile: the first training step of a fresh process with empty caches, and where it goes.

For the README demo's CNN (``examples/mnist_cnn.py``: conv-BN-ReLU x3, AdamW, the Trainer's
step with its finite-state check, batch 128) and the suite's workloads W1-W4, each run is a
fresh process with empty ``RUSTYASG_CACHE_DIR`` and ``NUMBA_CACHE_DIR`` that measures:

- ``init_s``: creating the backend (numba's runtime, the kernel table),
- ``build_s``: tracing the step and wrapping it as a function,
- ``first_call_s``: the first call (lowering, passes, backend compile, the kernels' JIT, the run),
- ``cold_s`` = ``build_s + first_call_s - steady step`` (as ``benchmarks/run.py``'s ``compile_cold_s``),
  ``first_step_s`` = ``init_s + cold_s`` (what the demo waits for before its first step is done),
- ``phases``: the compile phases of the first call (``lower``, each ``pass:<name>``, ``backend_compile``,
  ``first_run``), and ``kernels``: every numba compilation (kernel, CPU seconds; helpers compiled inside
  a kernel count in it).

``--jax`` adds jax.jit's cold compile of W1-W4 (``benchmarks/run.py``'s child, empty
``JAX_COMPILATION_CACHE_DIR``). Each row is the minimum over ``--repeat`` runs (a shared machine
only ever adds time); the JSON keeps every run.

Usage::

    python benchmarks/cold_compile.py --repeat 3 --json benchmarks/results/cold.json
    python benchmarks/cold_compile.py --names demo --kernels 30     # the per-kernel table
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

from benchmarks.run import _phase_timer, machine, numba_compile_log, run_child, set_thread_env  # noqa: E402

NAMES = ("demo", "W1", "W2", "W3", "W4")


def _demo_step():
    """The demo's training step as its Trainer builds it, and one batch of MNIST's shape."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "examples"))
    import rustyasg.nn as nn
    from mnist_cnn import build_model
    from rustyasg.nn.training.steps import build_train_step

    nn.init.manual_seed(0)
    model = build_model()
    opt = nn.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((128, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 128).astype(np.int64))
    return build_train_step(model, nn.cross_entropy, opt, batch, check_finite=True), [batch]


def _qualified_name(py_func) -> str:
    """A generated kernel's module with its source hash, else ``module.function``."""
    module = getattr(py_func, "__module__", "") or ""
    if module.startswith("rustyasg_generated."):
        return module.rsplit(".", 1)[-1]
    return f"{module.rsplit('.', 1)[-1]}.{py_func.__name__}"


def child(name: str) -> dict:
    """One cold first step in this (fresh) process."""
    log, _ = numba_compile_log(_qualified_name)
    from rustyasg.core.backends import get_backend

    t0 = time.perf_counter()
    get_backend("cpu")
    init = time.perf_counter() - t0
    init_compiles = len(log)
    c0, t0 = time.process_time(), time.perf_counter()
    if name == "demo":
        step, batches = _demo_step()
    else:
        from benchmarks.run import build

        step, batches = build(name, "rustyasg-cpu")
    build_s = time.perf_counter() - t0
    phases = {}
    t1 = time.perf_counter()
    with _phase_timer(phases):
        step(*batches[0])
    first = time.perf_counter() - t1
    cpu = time.process_time() - c0
    steady = []
    for i in range(5):
        t = time.perf_counter()
        step(*batches[(i + 1) % len(batches)])
        steady.append(time.perf_counter() - t)
    st = min(steady)
    kernels = log[init_compiles:]
    return {"name": name, "init_s": init, "build_s": build_s, "first_call_s": first, "steady_s": st,
            "cold_s": build_s + first - st, "first_step_s": init + build_s + first - st, "cold_cpu_s": cpu - st,
            "numba_s": sum(t for _, t in kernels), "n_kernels": len(kernels), "phases": phases,
            "kernels": sorted(([k, t] for k, t in kernels), key=lambda r: -r[1])}


def run_one(name: str, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, RUSTYASG_CACHE_DIR=os.path.join(cache, "r"), NUMBA_CACHE_DIR=os.path.join(cache, "n"))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--threads", str(threads)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"name": name, "error": (out.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def jax_cold(name: str, threads: int) -> dict:
    """jax.jit's cold compile of a suite workload (``benchmarks/run.py``'s child, empty jax cache)."""
    from benchmarks.run import JAX_CACHE_ALL

    args = argparse.Namespace(threads=threads, warmup=1, max_seconds=5.0)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(JAX_CACHE_ALL, JAX_COMPILATION_CACHE_DIR=cache)
        return run_child(name, "jax-cpu", env, args, 3)


def _min_run(runs):
    ok = [r for r in runs if "error" not in r]
    return min(ok, key=lambda r: r["cold_s"]) if ok else runs[0]


def table(rows, jax) -> str:
    head = (f"{'name':<5} {'init_s':>6} {'build_s':>7} {'first_s':>7} {'cold_s':>6} {'1st_step':>8} "
            f"{'cold_cpu':>8} {'numba_s':>7} {'kernels':>7} {'passes_s':>8} {'jax_s':>6}")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:<5} error: {r['error']}")
            continue
        passes = sum(v for k, v in r["phases"].items() if k.startswith("pass:") or k in ("lower", "backend_compile"))
        j = jax.get(r["name"], {}).get("compile_s")
        lines.append(f"{r['name']:<5} {r['init_s']:6.2f} {r['build_s']:7.2f} {r['first_call_s']:7.2f} "
                     f"{r['cold_s']:6.2f} {r['first_step_s']:8.2f} {r['cold_cpu_s']:8.2f} {r['numba_s']:7.2f} "
                     f"{r['n_kernels']:7d} {passes:8.3f} {'-' if j is None else format(j, '6.2f'):>6}")
    return "\n".join(lines)


def kernel_table(row, limit: int) -> str:
    lines = [f"{row['name']}: numba compilations of the cold first call (CPU s, run with the least cold_s)"]
    lines += [f"  {k[:48]:<48} {t:6.3f}" for k, t in row.get("kernels", [])[:limit]]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--names", default=",".join(NAMES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--jax", action="store_true", help="also time jax.jit's cold compile of W1-W4")
    ap.add_argument("--kernels", type=int, default=12, help="kernels listed per row (0: none)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    set_thread_env(args.threads)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    names = [n for n in args.names.split(",") if n]
    print(f"{machine()}  threads={args.threads}  repeat={args.repeat} (min of the runs)", flush=True)
    runs = {n: [run_one(n, args.threads) for _ in range(args.repeat)] for n in names}
    jax = {}
    if args.jax:
        for n in names:
            if n != "demo":
                js = [jax_cold(n, args.threads) for _ in range(args.repeat)]
                ok = [j for j in js if j.get("compile_s") is not None]
                jax[n] = min(ok, key=lambda j: j["compile_s"]) if ok else js[0]
                jax[n]["runs_compile_s"] = [j.get("compile_s") for j in js]
    rows = [_min_run(runs[n]) for n in names]
    print(table(rows, jax))
    for r in rows:
        if args.kernels and "kernels" in r:
            print(kernel_table(r, args.kernels))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine(), "threads": args.threads, "rows": rows,
                                               "runs": runs, "jax": jax}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
