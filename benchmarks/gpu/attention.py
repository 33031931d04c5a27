"""Fused attention on the wgpu backend against the unfused chain and PyTorch, forward and forward + backward.

W5's attention shape by default: causal self-attention ``(batch 32, heads 8, T 256, head 64)``
in float32. Rows:

- ``rustyasg fused``: ``rg.attention`` (the flash-attention WGSL kernels);
- ``rustyasg chain``: ``matmul -> where(causal) -> softmax -> matmul``, what a model of plain ops runs;
- ``torch sdpa``: ``F.scaled_dot_product_attention(is_causal=True)`` (fp32: its memory-efficient kernel);
- ``torch chain``: the same plain-op chain in torch eager.

"forward + backward" computes the output and the gradients of ``sum(y * g)`` with respect to
q, k and v. The operands live on the device (rustyasg variables, torch cuda tensors); RustyASG
calls are queued with ``fetch=False`` and the clock stops when the last result is read back,
torch's at ``torch.cuda.synchronize()``; TF32 is off. The fused output is checked against
torch's in float64 once (max abs difference in the JSON).

Usage::

    python benchmarks/gpu/attention.py --json benchmarks/gpu/results/attention.json
    python benchmarks/gpu/attention.py --small          # a smoke run (lavapipe, torch on cpu)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[2]
for _part in ("rustyasg-core", "rustyasg-wgpu", "rustyasg-nn"):
    if str(_ROOT / _part / "src") not in sys.path:
        sys.path.insert(0, str(_ROOT / _part / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

W5 = (32, 8, 256, 64)
SMALL = (2, 2, 70, 16)


def rustyasg_step(shape, fused: bool, backward: bool, seed: int = 0, dtype: str = "float32"):
    """A compiled call of no arguments (operands are device-resident variables) and its output list."""
    import rustyasg.core as rg

    B, H, T, D = shape
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(dtype) for _ in "qkvg"]
    q, k, v, g = (rg.variable(a, name=n, dtype=dtype, trainable=False) for a, n in zip(arrays, "qkvg"))
    if fused:
        y = rg.attention(q, k, v, scale=D ** -0.5, causal=True)
    else:
        s = rg.matmul(q, k.mT) * (D ** -0.5)
        s = rg.where(rg.constant(np.tril(np.ones((T, T), bool))), s, -np.inf)
        y = rg.matmul(rg.softmax(s, axis=-1), v)
    outs = [y] + (list(rg.grad((y * g).sum(), [q, k, v])) if backward else [])
    return rg.function([], outs, backend="wgpu"), arrays


def time_rustyasg(fn, min_seconds: float):
    t0 = time.perf_counter()
    first = fn()
    compile_s = time.perf_counter() - t0
    fn()
    be = fn.backend
    reps, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        handle = None
        for _ in range(reps):
            handle = fn(fetch=False)
        be.to_host(handle[0])
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds or reps >= 1000:
            break
        reps *= 4
    return elapsed / reps * 1e3, compile_s, first


def torch_fns(device):
    import torch
    import torch.nn.functional as F

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def chain(q, k, v):
        T = q.shape[-2]
        s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=device).tril(), float("-inf"))
        return torch.softmax(s, dim=-1) @ v

    return {"sdpa": sdpa, "chain": chain}


def time_torch(f, arrays, backward: bool, device, min_seconds: float):
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    q, k, v, g = (torch.from_numpy(a).to(device) for a in arrays)

    def call():
        if not backward:
            with torch.no_grad():
                return f(q, k, v)
        qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
        y = f(qq, kk, vv)
        return torch.autograd.grad(y, (qq, kk, vv), g)

    call()
    sync()
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds or reps >= 1000:
            return elapsed / reps * 1e3
        reps *= 4


def torch_reference(arrays, device):
    import torch
    import torch.nn.functional as F

    q, k, v, g = (torch.from_numpy(a).to(device, torch.float64).requires_grad_() for a in arrays)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    grads = torch.autograd.grad(y, (q, k, v), g)
    return [t.detach().cpu().numpy() for t in (y, *grads)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help=f"shape {SMALL} instead of W5's {W5} (a smoke run)")
    ap.add_argument("--min-seconds", type=float, default=None,
                    help="time each row for at least this long (default 0.5, with --small one call)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                    help="operands' dtype; torch runs the same dtype (float16 unless RUSTYASG_WGPU_ATTENTION_TC=0: "
                         "the tensor-core kernels)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    from training import ensure_backend

    ensure_backend()
    from rustyasg.wgpu.device import get_context

    shape = SMALL if args.small else W5
    device = "cuda" if torch.cuda.is_available() else "cpu"
    min_s = args.min_seconds if args.min_seconds is not None else (0.0 if args.small else 0.5)
    rows, diffs = [], {}
    for backward in (False, True):
        what = "forward + backward" if backward else "forward"
        for fused in (True, False):
            fn, arrays = rustyasg_step(shape, fused, backward, dtype=args.dtype)
            ms, compile_s, first = time_rustyasg(fn, min_s)
            rows.append({"impl": f"rustyasg {'fused' if fused else 'chain'}", "pass": what, "ms": ms,
                         "compile_s": compile_s})
            if fused:
                ref = torch_reference(arrays, device)
                diffs[what] = max(float(np.max(np.abs(np.asarray(a, np.float64) - r))) for a, r in zip(first, ref))
        for name, f in torch_fns(device).items():
            rows.append({"impl": f"torch {name}", "pass": what,
                         "ms": time_torch(f, arrays, backward, device, min_s)})
    info = get_context().info
    result = {"shape": dict(zip(("batch", "heads", "T", "head_dim"), shape)), "causal": True, "dtype": args.dtype,
              "gpu": info.get("device"), "backend": info.get("backend_type"), "torch": torch.__version__,
              "torch_device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
              "max_abs_diff_vs_torch_float64": diffs, "rows": rows}
    print(f"attention {shape} causal {args.dtype} on {result['gpu']} (torch on {result['torch_device']})")
    print(f"{'implementation':<18} {'pass':<20} {'ms':>10} {'vs torch sdpa':>14}")
    for r in rows:
        base = next(x["ms"] for x in rows if x["impl"] == "torch sdpa" and x["pass"] == r["pass"])
        print(f"{r['impl']:<18} {r['pass']:<20} {r['ms']:>10.3f} {r['ms'] / base:>13.2f}x")
    print("max |fused - torch float64|:", {k: f"{v:.2e}" for k, v in diffs.items()})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
