"""Fused attention on the cpu backend against the unfused chain and PyTorch's ``scaled_dot_product_attention``.

Causal self-attention ``(batch, heads, T, head_dim)`` in float32, forward alone and forward +
backward (the gradients of ``sum(y * g)`` with respect to q, k and v):

- ``fused``: ``rg.attention`` (the cpu backend's flash-style kernels);
- ``chain``: ``matmul -> where(causal) -> softmax -> matmul``, what a model built from plain ops runs;
- ``torch``: ``F.scaled_dot_product_attention(is_causal=True)`` (torch's fused cpu kernel).

Each implementation and shape runs in a process of its own; times are the minimum over
``--repeat`` calls after a warm-up call (the machine is shared: a neighbour only adds time). Set ``RUSTYASG_CPU_THREADS`` to split the fused kernels over cores.

``--gpt`` adds W4's whole training step (``benchmarks/workloads/gpt_mini.py``: GPT-mini, batch 16,
AdamW) with ``GPTConfig(attention="fused")`` against ``"composed"`` (the same model and weights).

Usage::

    RUSTYASG_CPU_THREADS=2 python benchmarks/attention_cpu.py --gpt --json benchmarks/results/attention_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def gpt_step(attention, repeat):
    """``{step_ms}`` of W4's training step with the model's attention ``"fused"`` or ``"composed"``."""
    sys.path.insert(0, ROOT)
    from benchmarks.workloads import gpt_mini as w
    from benchmarks.workloads.common import nn_state, nn_step

    import rustyasg.core as rg
    from rustyasg.nn import optim
    from rustyasg.nn.losses import cross_entropy
    from rustyasg.nn.zoo import GPT, GPTConfig

    def model():
        return GPT(GPTConfig(vocab_size=w.V, block_size=w.T, n_layer=w.L, n_head=w.H, n_embd=w.D, dropout=0.0,
                             positions="learned", tie_weights=False, attention=attention))

    rng = np.random.default_rng(0)
    params = nn_state(model, rng)  # the same weights for both: the same seed, the same parameter shapes
    net = model()
    idx, tgt = rg.input((w.BATCH, w.T), "int64", name="idx"), rg.input((w.BATCH, w.T), "int64", name="targets")
    loss = cross_entropy(net(idx).reshape((w.BATCH * w.T, w.V)), tgt.reshape((w.BATCH * w.T,)))
    step = nn_step(net, params, [idx, tgt], loss, optim.AdamW(net.parameters(), lr=w.LR, weight_decay=w.WD), "cpu")
    batch = w.make_batch(rng)
    return {"step_ms": best(lambda: step(*batch), repeat)}


def measure(impl, name, repeat):
    """``{fwd_ms, fwd_bwd_ms}`` of one implementation on one shape (run in a process of its own)."""
    if impl == "gpt":
        return gpt_step(name, repeat)
    shape = SHAPES[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    if impl == "torch":
        import torch

        arrays = [torch.tensor(a) for a in arrays]
        f, fb = torch_fns(shape)
    else:
        f, fb = rustyasg_fns(shape, impl == "fused")
    return {"fwd_ms": best(lambda: f(*arrays[:3]), repeat), "fwd_bwd_ms": best(lambda: fb(*arrays), repeat)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", default=None)
    ap.add_argument("--gpt", action="store_true", help="also time W4's training step, fused against composed")
    ap.add_argument("--one", nargs=2, metavar=("IMPL", "SHAPE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.repeat)))
        return
    import torch

    def child(impl, name):
        # One process per measurement: the BLAS and OpenMP threads of one library keep spinning
        # after their last call and would slow whatever runs next in the same process.
        out = subprocess.run([sys.executable, __file__, "--one", impl, name, "--repeat", str(args.repeat)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    rows = []
    for name in SHAPES:
        row = {"shape": name}
        for impl in ("fused", "chain", "torch"):
            for key, value in child(impl, name).items():
                row[f"{impl}_{key}"] = value
        rows.append(row)
        for what, key in (("fwd", "fwd_ms"), ("f+b", "fwd_bwd_ms")):
            print(f"{name if what == 'fwd' else '':24s} {what:4s} " + "  ".join(
                f"{impl} {row[f'{impl}_{key}']:8.2f}" for impl in ("fused", "chain", "torch")) + " ms", flush=True)
    gpt = {}
    if args.gpt:
        gpt = {f"{a}_step_ms": child("gpt", a)["step_ms"] for a in ("fused", "composed")}
        print(f"{'W4 training step':24s} step fused {gpt['fused_step_ms']:8.2f}  composed "
              f"{gpt['composed_step_ms']:8.2f} ms", flush=True)
    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "rustyasg_cpu_threads": os.environ.get("RUSTYASG_CPU_THREADS", "1"),
            "torch_threads": torch.get_num_threads(), "repeat": args.repeat, "statistic": "min ms"}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows, **({"gpt_mini_step": gpt} if gpt else {})}, fh, indent=1)


if __name__ == "__main__":
    main()
