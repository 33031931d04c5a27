"""Where a float16 training step goes wrong on a GPU: W5's GEMMs one by one, then small steps per path.

1. Every f16 matmul shape of W5's step (forward and both gradients of each linear layer, the
   attention products, the output head) through the backend's matmul planner (tensor cores where
   the adapter has them), against float64.
2. A one-block W5 step with ``precision="f16"`` in a fresh process per path: Dawn with tensor
   cores, Dawn without (``RUSTYASG_WGPU_TENSOR_CORES=0``), wgpu-native; its first losses against
   torch's.

Example::

    RUSTYASG_WEBGPU=dawn python benchmarks/gpu/f16_check.py --json f16.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
for p in (_HERE, _HERE.parent, _HERE.parents[1] / "rustyasg-wgpu" / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

#: (name, M, N, K, trans_a, trans_b, batch) of W5 (d 512, T 256, batch 32, 8 heads, V 256).
SHAPES = [("qkv fwd", 8192, 1536, 512, False, True, 1), ("qkv dX", 8192, 512, 1536, False, False, 1),
          ("qkv dW", 1536, 512, 8192, True, False, 1), ("fc fwd", 8192, 2048, 512, False, True, 1),
          ("proj fwd", 8192, 512, 2048, False, True, 1), ("head fwd", 8192, 256, 512, False, True, 1),
          ("head dW", 256, 512, 8192, True, False, 1), ("scores", 256, 256, 64, False, True, 256),
          ("weights @ v", 256, 64, 256, False, False, 256), ("small", 100, 72, 50, False, False, 1)]


def gemms() -> list:
    from rustyasg.wgpu.buffers import BufferPool, Readback, upload
    from rustyasg.wgpu.device import get_context
    from rustyasg.wgpu.kernels.matmul import MatmulPlanner

    ctx = get_context()
    pool, rb = BufferPool(ctx), Readback(ctx)
    planner = MatmulPlanner(ctx)  # autotuned, as the backend's
    rng = np.random.default_rng(0)
    rows = []
    for name, M, N, K, ta, tb, batch in SHAPES:
        a = (rng.standard_normal((batch, K, M) if ta else (batch, M, K)) * 0.5).astype(np.float16)
        b = (rng.standard_normal((batch, N, K) if tb else (batch, K, N)) * 0.5).astype(np.float16)
        a64 = np.swapaxes(a, 1, 2).astype(np.float64) if ta else a.astype(np.float64)
        b64 = np.swapaxes(b, 1, 2).astype(np.float64) if tb else b.astype(np.float64)
        ref = a64 @ b64
        ab, bb = upload(ctx, a, pool), upload(ctx, b, pool)
        cb = pool.acquire(batch * M * N * 2)
        launch = planner.launch(ab, bb, cb, M, N, K, batch=batch, trans_a=ta, trans_b=tb, dtype="f16")
        launch.run()
        got = rb.read_array(cb, (batch, M, N), np.float16).astype(np.float64)
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        rows.append({"name": name, "shape": [M, N, K, ta, tb, batch], "kernel": launch.label, "rel_err": err,
                     "zeros": float((got == 0).mean())})
        print(f"{name:12s} {launch.label[:40]:40s} rel err {err:.2e}  zeros {rows[-1]['zeros']:.3f}", flush=True)
        for buf in (ab, bb, cb):
            pool.release(buf)
    return rows


def step_child() -> dict:
    import training

    out = training.run_workload("W5", warmup=1, steps=2, device="cuda", precision="f16",
                                overrides={"layers": 1, "batch": 4, "attention": "composed"})
    return {"rustyasg": out["rustyasg"]["losses"], "torch": out["torch"]["losses"]}


def probe() -> dict:
    """One-block W5 forward with ``precision="f16"``: intermediate values on wgpu against the
    reference backend (numpy), to find the first op that differs."""
    import rustyasg.core as rg
    import training

    training.ensure_backend()
    cfg = {**training.WORKLOADS["W5"], "layers": 1, "batch": 2, "attention": "composed"}
    model, _ = training.rustyasg_model(cfg)
    idx = rg.input((2, cfg["T"]), "int64", name="idx")
    tgt = rg.input((2, cfg["T"]), "int64", name="tgt")
    tr = model.transformer
    block = tr["h"][0]
    emb = tr["wte"](idx)
    ln1 = block.ln_1(emb)
    qkv = block.attn.c_attn(ln1)
    att = block.attn(ln1)
    hid = model.hidden_states(idx)
    logits = model.lm_head(hid)
    loss = model.loss(logits, tgt)
    named = {"emb": emb, "ln1": ln1, "qkv": qkv, "attn": att, "hidden": hid, "logits": logits, "loss": loss}
    outs = [t.astype("float32") for t in named.values()]
    data = training.batches(cfg, 1)[0]
    report = {}
    for precision in ("f16", None):
        kw = {"precision": precision} if precision else {}
        got = rg.function([idx, tgt], outs, backend="wgpu", **kw)(*data)
        ref = rg.function([idx, tgt], outs, backend="reference", **kw)(*data)
        for name, g, r in zip(named, got, ref):
            g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
            row = {"max_abs_diff": float(np.abs(g - r).max()), "ref_absmax": float(np.abs(r).max()),
                   "got_absmax": float(np.abs(g).max())}
            report[f"{precision or 'fp32'} {name}"] = row
            print(f"{precision or 'fp32'} {name:7s} {row}", flush=True)
    return report


def ops_probe() -> dict:
    """The pieces of an f16 linear layer, each against the reference backend, at W5's sizes and small ones."""
    import rustyasg.core as rg
    import rustyasg.nn as nn
    import training

    training.ensure_backend()
    report = {}
    rng = np.random.default_rng(0)
    for rows, d, n in ((512, 512, 1536), (16, 64, 192)):
        x = rg.input((rows, d), name="x")
        w = rg.input((n, d), name="w")
        b = rg.input((n,), name="b")
        x16, w16, b16 = x.astype("float16"), w.astype("float16"), b.astype("float16")
        lin = nn.Linear(d, n)
        cases = {"cast": x16, "matmul": rg.matmul(x16, w16[:d]),
                 "matmul_wT": rg.matmul(x16, w16.mT), "matmul_wT+b": rg.matmul(x16, w16.mT) + b16,
                 "linear f32": lin(x)}
        xs = [(rng.standard_normal(t.shape) * 0.5).astype(np.float32) for t in (x, w, b)]
        for name, t in cases.items():
            out = t.astype("float32")
            for precision in ((None, "f16") if name == "linear f32" else (None,)):
                kw = {"precision": precision} if precision else {}
                g = np.asarray(rg.function([x, w, b], out, backend="wgpu", **kw)(*xs), np.float64)
                r = np.asarray(rg.function([x, w, b], out, backend="reference", **kw)(*xs), np.float64)
                key = f"{rows}x{d}x{n} {name} {precision or ''}"
                report[key] = {"max_abs_diff": float(np.abs(g - r).max()), "ref_absmax": float(np.abs(r).max()),
                               "got_absmax": float(np.abs(g).max())}
                print(key, report[key], flush=True)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--probe", action="store_true", help="only the intermediate values of a one-block forward")
    ap.add_argument("--ops", action="store_true", help="only the pieces of an f16 linear layer")
    args = ap.parse_args(argv)
    if args.probe or args.ops:
        report = ops_probe() if args.ops else probe()
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 0
    if args.child:
        print("RESULT " + json.dumps(step_child()))
        return 0
    report = {"gemms": gemms(), "steps": {}}
    for label, env in (("dawn+tc", {"RUSTYASG_WEBGPU": "dawn"}),
                       ("dawn, no tc", {"RUSTYASG_WEBGPU": "dawn", "RUSTYASG_WGPU_TENSOR_CORES": "0"}),
                       ("native", {"RUSTYASG_WEBGPU": "native"})):
        res = subprocess.run([sys.executable, __file__, "--child"], env={**os.environ, **env}, capture_output=True,
                             text=True, timeout=150)
        line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
        report["steps"][label] = json.loads(line[-1][7:]) if line else {"error": res.stderr[-1500:]}
        print(label, report["steps"][label] if line else res.stderr[-800:], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
