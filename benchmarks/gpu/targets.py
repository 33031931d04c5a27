"""The GPU targets table: W5 fp32 and mixed precision, f16 matmul, ResNet-18 training, against torch.

Every figure is measured in this one process on the chosen WebGPU implementation
(``RUSTYASG_WEBGPU``) next to torch.cuda on the same GPU:

| workload | target |
|---|---|
| W5 fp32 vs torch eager fp32 | <= 1.25x |
| W5 mixed precision (wgpu f16) vs torch eager bf16 autocast | <= 1.0x |
| f16 matmul 4096^3 vs torch fp16 | >= 40% |
| ResNet-18 batch 64 training step fp32 vs torch eager fp32 | <= 1.3x |

``--small`` shrinks every workload so the script's code paths can be checked on a CPU
(torch on the CPU, wgpu on a software adapter).

Example::

    RUSTYASG_WEBGPU=dawn python benchmarks/gpu/targets.py --json targets.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for p in (_HERE, _HERE.parent, _HERE.parents[1] / "rustyasg-wgpu" / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import training  # noqa: E402

SMALL = {"W5": {"d": 64, "heads": 2, "layers": 1, "T": 16, "batch": 2}, "R18": {"image": 32, "batch": 2, "classes": 10}}


def _run(label, fn, report):
    t0 = time.perf_counter()
    try:
        report[label] = fn()
    except Exception as exc:  # one failed row must not lose the others
        report[label] = {"error": f"{type(exc).__name__}: {exc}"[:2000], "trace": traceback.format_exc()[-3000:]}
    report[label]["wall_s"] = time.perf_counter() - t0
    print(f"== {label}: {json.dumps({k: v for k, v in report[label].items() if k != 'trace'}, default=str)[:600]}",
          flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default="matmul,W5,W5fused,W5mixed,W5mixedfused,R18,R18mixed")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--small", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = args.rows.split(",")
    device = "cpu" if args.small else "cuda"
    over = (lambda name: SMALL.get(name)) if args.small else (lambda name: None)
    report = {}
    from rustyasg.wgpu.device import get_context

    ctx = get_context()
    report["adapter"] = f"{ctx.summary} [{ctx.implementation}]"
    print(report["adapter"], flush=True)

    def workload(name, precision=None, modes=(), attention="composed"):
        def fn():
            overrides = {**(over(name) or {}), "attention": attention}
            out = training.run_workload(name, warmup=3, steps=args.steps, device=device, overrides=overrides,
                                        precision=precision, torch_modes=modes)
            out["rustyasg"].pop("plan", None)
            return out
        return fn

    if "matmul" in rows and not args.small:
        def matmul():
            import tensor_cores as tcb
            from rustyasg.wgpu.buffers import BufferPool
            from rustyasg.wgpu.kernels.matmul_tc import TcMatmulPlanner

            tc = TcMatmulPlanner.for_context(ctx)
            if tc is None:
                return {"error": "no tensor-core path on this adapter"}
            out = {}
            pool = BufferPool(ctx)
            for n in (4096, 8192):
                best = max((tcb.time_case(ctx, tc, pool, n, "f16", name), name) for name in tc.runnable(n, n, n))
                out[n] = {"f16": best[0], "config": best[1], "torch_fp16": tcb.torch_rate(n, tcb.torch.float16)}
            return out
        _run("matmul", matmul, report)
    if "W5" in rows:
        _run("W5", workload("W5", None, ("tf32", "bf16")), report)
    if "W5fused" in rows:  # the same step with the flash-attention op instead of the composed chain
        _run("W5fused", workload("W5", None, (), "fused"), report)
    if "W5mixed" in rows:
        _run("W5mixed", workload("W5", "f16", ("bf16",)), report)
    if "W5mixedfused" in rows:
        _run("W5mixedfused", workload("W5", "f16", ("bf16",), "fused"), report)
    if "R18" in rows:
        _run("R18", workload("R18", None, ("tf32",)), report)
    if "R18mixed" in rows:  # f16 convolutions on the tensor cores (implicit GEMMs where they gather)
        _run("R18mixed", workload("R18", "f16", ("bf16",)), report)

    def ratio(row, torch_key="torch"):
        r = report.get(row, {})
        return r["rustyasg"]["ms"] / r[torch_key]["ms"] if "rustyasg" in r and torch_key in r else None

    table = []
    mm = report.get("matmul", {}).get(4096)
    table.append(("f16 matmul 4096^3 vs torch fp16", mm and mm["f16"] / mm["torch_fp16"], ">= 0.40"))
    table.append(("W5 fp32 vs torch eager fp32", ratio("W5"), "<= 1.25"))
    table.append(("W5 fp32, fused attention, vs torch eager fp32", ratio("W5fused"), "<= 1.25"))
    table.append(("W5 mixed (wgpu f16) vs torch bf16 autocast", ratio("W5mixed", "torch_bf16"), "<= 1.0"))
    table.append(("W5 mixed, fused attention, vs torch bf16", ratio("W5mixedfused", "torch_bf16"), "<= 1.0"))
    table.append(("ResNet-18 b64 fp32 vs torch eager fp32", ratio("R18"), "<= 1.3"))
    table.append(("ResNet-18 b64 mixed (wgpu f16) vs torch bf16", ratio("R18mixed", "torch_bf16"), "(none)"))
    report["table"] = table
    print("\n==== targets ====")
    print(report["adapter"])
    for what, value, target in table:
        print(f"{what:45s} {'n/a' if value is None else f'{value:.3f}':>8}   target {target}")
    for row in ("W5", "W5fused", "W5mixed", "W5mixedfused", "R18", "R18mixed"):
        r = report.get(row, {})
        if "rustyasg" in r:
            anchors = ", ".join(f"{k} {v['ms']:.2f} ms" for k, v in r.items() if k.startswith("torch"))
            print(f"{row}: rustyasg {r['rustyasg']['ms']:.2f} ms (compile {r['rustyasg']['compile_s']:.1f} s); {anchors}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
