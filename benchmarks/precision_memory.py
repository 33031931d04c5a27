"""Mixed precision and rematerialization on the CPU: planned peak memory, step time, loss curves.

Workloads (one training step each: forward, backward, optimizer update, compiled once):

- ``gpt``: W4 of ``benchmarks/run.py``: GPT-mini (V256, d128, 4 heads, 2 blocks, T64), batch 16, AdamW;
- ``resnet18``: the zoo ResNet-18 (torchvision layout, 3x3 stem for 32x32 images), batch 16,
  10 classes (learnable synthetic labels), SGD with momentum (lr 0.01); batch-norm statistics
  updated inside the step.

Configurations: ``fp32``; ``bf16`` and ``f16`` (``precision=``; f16 with dynamic loss scaling);
``fp32 + full ckpt`` (every transformer block / residual block an ``nn.checkpoint_module``
region, nothing saved but the blocks' outputs); ``fp32 + budget 50%`` (``memory_budget`` at
half the fp32 step's planned peak, chosen by the exact solver). On the cpu, the fp32 step keeps
each convolution's im2col columns from the forward pass to its weight gradient (one im2col
instead of two); under a budget or checkpoint regions they are each convolution's scratch.

For each: the planned peak of the compiled step (``rustyasg.core.compile.planned_peak_bytes``:
the cpu backend's buffer plan, inputs and intermediates; variables not counted), the median
step time (configurations timed round-robin, one step of each in turn, so a busy machine
slows them alike), and the loss of every step (the same seeded batches for every configuration).
Prints a table, writes JSON, and plots the loss curves (matplotlib, PNG).

Usage::

    python benchmarks/precision_memory.py --json benchmarks/results/precision-memory-cpu.json \\
        --plot benchmarks/results/precision-memory-curves.png
    python benchmarks/precision_memory.py --workloads gpt --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIGS = ("fp32", "bf16", "f16", "fp32 + full ckpt", "fp32 + budget 50%")


def _gpt(rng_seed: int = 0):
    """W4's model, loss and optimizer; ``blocks``: the modules full checkpointing wraps."""
    import numpy as np

    import rustyasg.core as rg
    from benchmarks.workloads import gpt_mini as w
    from rustyasg.nn import optim
    from rustyasg.nn.losses import cross_entropy

    model = w.rustyasg_model()
    model.load_state_dict(w.init_params(np.random.default_rng(rng_seed)))
    batches = [w.make_batch(np.random.default_rng(1000 + i)) for i in range(8)]

    def loss_of(model):
        idx = rg.input((w.BATCH, w.T), "int64", name="idx")
        tgt = rg.input((w.BATCH, w.T), "int64", name="targets")
        loss = cross_entropy(model(idx).reshape((w.BATCH * w.T, w.V)), tgt.reshape((w.BATCH * w.T,)))
        return [idx, tgt], loss

    return model, loss_of, lambda m: optim.AdamW(m.parameters(), lr=w.LR, weight_decay=w.WD), batches, \
        list(model.transformer.h), w.NAME


def _resnet(rng_seed: int = 0, batch: int = 16, size: int = 32):
    import numpy as np

    import rustyasg.core as rg
    from rustyasg.nn import init, optim, zoo
    from rustyasg.nn.losses import cross_entropy

    init.manual_seed(rng_seed)
    model = zoo.resnet18(num_classes=10, small_input=True)
    rng = np.random.default_rng(7)
    images = [rng.standard_normal((batch, 3, size, size)).astype(np.float32) for _ in range(8)]
    # learnable labels (the decile of a fixed projection), so the curves fall instead of wander
    proj = rng.standard_normal((3, size, size)).astype(np.float32)
    scores = [np.tensordot(x, proj, axes=3) for x in images]
    edges = np.quantile(np.concatenate(scores), np.linspace(0.1, 0.9, 9))
    batches = [(x, np.digitize(s, edges).astype(np.int64)) for x, s in zip(images, scores)]

    def loss_of(model):
        x = rg.input((batch, 3, size, size), "float32", name="x")
        y = rg.input((batch,), "int64", name="y")
        return [x, y], cross_entropy(model(x), y)

    blocks = [b for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage]
    return model, loss_of, lambda m: optim.SGD(m.parameters(), lr=0.01, momentum=0.9), batches, blocks, \
        f"ResNet-18 (3x3 stem) {size}x{size}, batch {batch}, SGD momentum"


WORKLOADS = {"gpt": _gpt, "resnet18": _resnet}


def build(workload: str, config: str, budget=None):
    """``(step, batches, name)``: a fresh, identically initialised model compiled for ``config``."""
    import rustyasg.core as rg
    import rustyasg.nn as nn

    model, loss_of, make_opt, batches, blocks, name = WORKLOADS[workload]()
    if config == "fp32 + full ckpt":
        for b in blocks:
            nn.checkpoint_module(b)
    inputs, loss = loss_of(model)
    opt = make_opt(model)
    updates = {**opt.updates(loss), **model.state_updates()}
    precision = {"bf16": "bf16", "f16": "f16"}.get(config)
    step = rg.function(inputs, loss, updates=updates, backend="cpu", precision=precision,
                       memory_budget=budget if config.startswith("fp32 + budget") else None, name=workload)
    return step, batches, name


def compiled(workload: str, config: str, budget=None) -> dict:
    """Build and compile one configuration; its first step (loss kept) runs here."""
    from rustyasg.core.compile.memory import planned_peak_bytes

    step, batches, name = build(workload, config, budget)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exe = step.compile(*batches[0])
        loss = float(step(*batches[0]))
    row = {"workload": workload, "name": name, "config": config, "planned_peak_bytes": planned_peak_bytes(exe),
           "compile_s": time.perf_counter() - t0, "losses": [loss], "times": []}
    report = exe.program.report
    if "remat" in report:
        r = report["remat"]
        row["remat"] = {k: r[k] for k in ("recomputed", "recompute_cost", "solver", "fits", "memory_budget",
                                          "peak_before", "peak_reordered", "peak_after") if k in r}
    return {"row": row, "step": step, "batches": batches}


def run(workloads, steps: int, warmup: int) -> list:
    """Per workload: every configuration compiled, then timed round-robin (one step of each in
    turn), so a busy shared machine slows them alike; the same batches in the same order."""
    import numpy as np

    rows = []
    for wl in workloads:
        runs = [compiled(wl, "fp32")]
        half = runs[0]["row"]["planned_peak_bytes"] // 2
        runs += [compiled(wl, c, half if c.startswith("fp32 + budget") else None) for c in CONFIGS[1:]]
        for i in range(1, steps):
            for r in runs:
                b = r["batches"][i % len(r["batches"])]
                t = time.perf_counter()
                r["row"]["losses"].append(float(r["step"](*b)))
                if i > warmup:
                    r["row"]["times"].append(time.perf_counter() - t)
        base = runs[0]["row"]
        for r in runs:
            row = r["row"]
            row["step_ms"] = 1e3 * float(np.median(row["times"]))
            row["step_ms_min"] = 1e3 * float(np.min(row["times"]))
            if r["step"].loss_scale is not None:
                row["loss_scale"] = r["step"].loss_scale
            rows.append(row)
            print(_line(row, base), flush=True)
    return rows


def _line(row, base) -> str:
    mib = row["planned_peak_bytes"] / 2 ** 20
    extra = ""
    if "remat" in row:
        extra = f"  recomputed {row['remat'].get('recomputed', 0)}"
    return (f"| {row['workload']} | {row['config']} | {mib:.2f} MiB ({row['planned_peak_bytes'] / base['planned_peak_bytes']:.2f}x) "
            f"| {row['step_ms']:.1f} ms ({row['step_ms'] / base['step_ms']:.2f}x) | {row['losses'][-1]:.4f} |{extra}")


def plot(rows, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = sorted({r["workload"] for r in rows}, key=[r["workload"] for r in rows].index)
    fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4), squeeze=False)
    for ax, wl in zip(axes[0], workloads):
        for r in rows:
            if r["workload"] == wl:
                ax.plot(range(1, len(r["losses"]) + 1), r["losses"], label=r["config"],
                        ls="--" if "ckpt" in r["config"] or "budget" in r["config"] else "-")
        ax.set_title(next(r["name"] for r in rows if r["workload"] == wl), fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="gpt,resnet18")
    ap.add_argument("--steps", type=int, default=24, help="steps per configuration (losses of all are kept)")
    ap.add_argument("--warmup", type=int, default=3, help="steps not timed after the first")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--plot", help="write the loss curves here (PNG)")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()  # a shared machine: the load says how far the times can be trusted
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, load {load_before[0]:.2f}")
    print("| workload | config | planned peak (vs fp32) | step time, median (vs fp32) | last loss |")
    print("|---|---|---|---|---|")
    rows = run([w.strip() for w in args.workloads.split(",") if w.strip()], args.steps, args.warmup)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": {"cpu": platform.processor() or platform.machine(),
                                                            "cores": os.cpu_count(), "python": sys.version.split()[0],
                                                            "load_avg_1min": [load_before[0], os.getloadavg()[0]]},
                                               "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return rows


if __name__ == "__main__":
    main()
