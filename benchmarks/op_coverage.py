"""Forward + backward time of ops lowered to the core set, against PyTorch eager on the same CPU.

Each workload is one compiled RustyASG function (value and the gradient of a weighted sum
with respect to every float operand) and the same computation in torch with autograd.
Times are medians over ``--steps`` calls after one warm-up call (the compile).

Usage::

    python benchmarks/op_coverage.py --threads 2 --json benchmarks/results/op_coverage_cpu.json
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "--threads" in sys.argv:  # thread pools read these when they start
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = sys.argv[sys.argv.index("--threads") + 1]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def workloads(rg, nn, F, torch):
    r = np.random.default_rng(0)
    f32 = lambda *s: r.standard_normal(s).astype(np.float32)  # noqa: E731
    seg = r.integers(0, 10_000, (1, 1_000_000))
    lstm_t = torch.nn.LSTM(128, 128, batch_first=True)
    lstm_r = nn.LSTM(128, 128, batch_first=True)
    lstm_r.load_state_dict({k: v.numpy() for k, v in lstm_t.state_dict().items()})
    return {
        "scatter_reduce amax 1M->10k": (
            [np.zeros((1, 10_000), np.float32), f32(1, 1_000_000)],
            lambda x, s: rg.scatter_reduce(x, 1, rg.constant(seg), s, "amax"),
            lambda x, s: x.scatter_reduce(1, torch.as_tensor(seg), s, "amax")),
        "einsum bhqd,bhkd->bhqk (8x8x128x64)": (
            [f32(8, 8, 128, 64), f32(8, 8, 128, 64)],
            lambda q, k: rg.einsum("bhqd,bhkd->bhqk", q, k), lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k)),
        "conv3d 4x16x16^3, k3": (
            [f32(4, 16, 16, 16, 16), f32(16, 16, 3, 3, 3)],
            lambda x, w: F.conv3d(x, w, padding=1), lambda x, w: torch.nn.functional.conv3d(x, w, padding=1)),
        "interpolate bicubic 2x 8x16x64x64": (
            [f32(8, 16, 64, 64)],
            lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"),
            lambda x: torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic")),
        "LSTM 16x32x128 (unrolled)": (
            [f32(16, 32, 128)], lambda x: lstm_r(x)[0], lambda x: lstm_t(x)[0]),
    }


def _median_time(fn, steps):
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)  # numpy's BLAS: its idle workers spin against torch's on a small machine
    import torch

    import rustyasg.core as rg
    import rustyasg.nn as nn
    import rustyasg.nn.functional as F

    torch.set_num_threads(args.threads)
    rows = []
    for name, (arrays, ours, theirs) in workloads(rg, nn, F, torch).items():
        ins = [rg.input(a.shape, a.dtype, name=f"in{i}") for i, a in enumerate(arrays)]
        out = ours(*ins)
        cot = rg.constant(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32))
        grads = rg.grad(rg.sum(out * cot), ins)
        fn = rg.function(ins, [out, *grads], backend=args.backend)
        t0 = time.perf_counter()
        fn(*arrays)
        compile_s = time.perf_counter() - t0
        ours_s = _median_time(lambda: fn(*arrays), args.steps)
        tin = [torch.tensor(a, requires_grad=True) for a in arrays]
        tcot = torch.tensor(np.asarray(cot.attrs["value"]))

        def torch_step():
            for t in tin:
                t.grad = None
            (theirs(*tin) * tcot).sum().backward()

        torch_step()
        torch_s = _median_time(torch_step, args.steps)
        rows.append({"workload": name, "rustyasg_s": ours_s, "torch_s": torch_s, "first_call_s": compile_s})
        print(f"{name:40s} rustyasg-{args.backend} {ours_s * 1e3:9.2f} ms   torch {torch_s * 1e3:9.2f} ms   "
              f"first call {compile_s:6.2f} s", flush=True)
    if args.json:
        meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "threads": args.threads, "backend": args.backend, "torch": torch.__version__}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
