"""Fused attention on the cpu backend against the unfused chain and PyTorch's ``scaled_dot_product_attention``.

Causal self-attention ``(batch, heads, T, head_dim)`` in float32, forward alone and forward +
backward (the gradients of ``sum(y * g)`` with respect to q, k and v):

- ``fused``: ``rg.attention`` (the cpu backend's flash-style kernels);
- ``chain``: ``matmul -> where(causal) -> softmax -> matmul``, what a model built from plain ops runs;
- ``torch``: ``F.scaled_dot_product_attention(is_causal=True)`` (torch's fused cpu kernel).

Times are the minimum over ``--repeat`` calls after a warm-up call (the machine is shared: a
neighbour only adds time). Set ``RUSTYASG_CPU_THREADS`` to split the fused kernels over cores.

Usage::

    RUSTYASG_CPU_THREADS=2 python benchmarks/attention_cpu.py --json benchmarks/results/attention_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

SHAPES = {"W4 (16x4, T 64, d 32)": (16, 4, 64, 32), "T 256 (4x4, d 32)": (4, 4, 256, 32),
          "T 1024 (1x4, d 64)": (1, 4, 1024, 64)}


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def rustyasg_fns(shape, fused):
    import rustyasg.core as rg

    B, H, T, D = shape
    q, k, v = (rg.input(shape, "float32", name=n) for n in "qkv")
    if fused:
        y = rg.attention(q, k, v, scale=D ** -0.5, causal=True)
    else:
        s = rg.matmul(q, k.mT) * (D ** -0.5)
        s = rg.where(rg.constant(np.tril(np.ones((T, T), bool))), s, -np.inf)
        y = rg.matmul(rg.softmax(s, axis=-1), v)
    g = rg.input(shape, "float32", name="g")
    grads = rg.grad((y * g).sum(), [q, k, v])
    return rg.function([q, k, v], y, backend="cpu"), rg.function([q, k, v, g], [y, *grads], backend="cpu")


def torch_fns(shape):
    import torch
    import torch.nn.functional as F

    def fwd(q, k, v):
        with torch.no_grad():
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def fwd_bwd(q, k, v, g):
        q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return torch.autograd.grad(y, (q, k, v), g)

    return fwd, fwd_bwd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    rng = np.random.default_rng(0)
    rows = []
    for name, shape in SHAPES.items():
        arrays = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
        tensors = [torch.tensor(a) for a in arrays]
        row = {"shape": name}
        for label, fused in (("fused", True), ("chain", False)):
            f, fb = rustyasg_fns(shape, fused)
            row[f"{label}_fwd_ms"] = best(lambda: f(*arrays[:3]), args.repeat)
            row[f"{label}_fwd_bwd_ms"] = best(lambda: fb(*arrays), args.repeat)
        tf, tfb = torch_fns(shape)
        row["torch_fwd_ms"] = best(lambda: tf(*tensors[:3]), args.repeat)
        row["torch_fwd_bwd_ms"] = best(lambda: tfb(*tensors), args.repeat)
        rows.append(row)
        print(f"{name:24s} fwd  fused {row['fused_fwd_ms']:8.2f}  chain {row['chain_fwd_ms']:8.2f}  "
              f"torch {row['torch_fwd_ms']:8.2f} ms")
        print(f"{'':24s} f+b  fused {row['fused_fwd_bwd_ms']:8.2f}  chain {row['chain_fwd_bwd_ms']:8.2f}  "
              f"torch {row['torch_fwd_bwd_ms']:8.2f} ms", flush=True)
    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "rustyasg_cpu_threads": os.environ.get("RUSTYASG_CPU_THREADS", "1"),
            "torch_threads": torch.get_num_threads(), "repeat": args.repeat, "statistic": "min ms"}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
