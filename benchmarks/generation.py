"""Text-generation benchmark: KV-cached greedy decoding of a Hugging Face GPT-2 / Llama folder.

A model is written by ``transformers``' ``save_pretrained`` (random weights, the given size),
loaded by ``rustyasg.nn.from_pretrained`` and decoded greedily with the compiled prefill and
decode steps; ``transformers``' ``generate`` (its own KV cache, torch eager, ``inference_mode``)
decodes the same prompt. Both must produce the same tokens. Reported: prefill time, decode time
per token (median over the generated tokens, after one warm-up generation), tokens per second,
and the number of compilations.

Usage::

    python benchmarks/generation.py                          # GPT-2 small (124M) and a Llama-style 110M, CPU
    python benchmarks/generation.py --backend wgpu --json out.json --new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

MODELS = {
    "gpt2-124M": ("gpt2", dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)),
    "llama-110M": ("llama", dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                                 num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=1024)),
}


def _save(kind, cfg, folder):
    import torch
    import transformers

    torch.manual_seed(0)
    if kind == "gpt2":
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg, bos_token_id=None, eos_token_id=None))
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg, bos_token_id=None, eos_token_id=None))
    model.eval().save_pretrained(folder)
    return model


def _time_ours(model, prompt, new, backend):
    import numpy as np

    from rustyasg.nn.generation import Generator

    gen = Generator(model, prompt.shape[0], prompt.shape[1] + new, backend=backend)
    t0 = time.perf_counter()
    tokens = gen.generate(prompt, new)  # first call: compiles both steps
    first = time.perf_counter() - t0
    lengths = np.full(prompt.shape[0], prompt.shape[1], np.int64)
    window = np.zeros((prompt.shape[0], prompt.shape[1] + new - 1), np.int64)
    window[:, :prompt.shape[1]] = prompt
    t0 = time.perf_counter()
    gen.prefill(window, lengths - 1)
    prefill = time.perf_counter() - t0
    steps = []
    for i in range(new - 1):
        t0 = time.perf_counter()
        gen.decode(tokens[:, prompt.shape[1] + i:prompt.shape[1] + i + 1], lengths + i)
        steps.append(time.perf_counter() - t0)
    return tokens, dict(first_call_s=first, prefill_ms=prefill * 1e3, decode_ms=statistics.median(steps) * 1e3,
                        compiles=gen.compiles)


def _time_theirs(model, prompt, new, device="cpu"):
    import torch

    ids = torch.tensor(prompt, device=device)
    model = model.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=new, do_sample=False, pad_token_id=0)  # warm-up
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=1, do_sample=False, pad_token_id=0)
        sync()
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new, do_sample=False, pad_token_id=0)
        sync()
        total = time.perf_counter() - t0
    return out.cpu().numpy(), dict(prefill_ms=prefill * 1e3, decode_ms=(total - prefill) / max(new - 1, 1) * 1e3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-device", default="cpu", help="where transformers runs: cpu or cuda")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from rustyasg.nn.pretrained import from_pretrained

    records = []
    for name in args.models.split(","):
        kind, cfg = MODELS[name]
        with tempfile.TemporaryDirectory() as folder:
            hf = _save(kind, cfg, folder)
            model = from_pretrained(folder)
        prompt = np.random.default_rng(0).integers(1, cfg["vocab_size"], (args.batch, args.prompt))
        ours_tokens, ours = _time_ours(model, prompt, args.new_tokens, args.backend)
        theirs_tokens, theirs = _time_theirs(hf, prompt, args.new_tokens, args.torch_device)
        same = bool((ours_tokens == theirs_tokens).all())
        records.append(dict(model=name, backend=args.backend, batch=args.batch, prompt=args.prompt,
                            new_tokens=args.new_tokens, same_tokens=same, rustyasg=ours, transformers=theirs))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads={args.threads}, "
          f"backend={args.backend}, torch on {args.torch_device}, batch={args.batch}, prompt={args.prompt}, "
          f"new={args.new_tokens}")
    print(f"{'model':<12} {'rustyasg prefill ms':>20} {'decode ms/tok':>14} {'tok/s':>7} {'compiles':>9} "
          f"{'torch prefill ms':>17} {'decode ms/tok':>14} {'tok/s':>7} {'same':>5}")
    for r in records:
        o, t = r["rustyasg"], r["transformers"]
        print(f"{r['model']:<12} {o['prefill_ms']:>20.1f} {o['decode_ms']:>14.2f} {1e3 / o['decode_ms']:>7.1f} "
              f"{o['compiles']:>9} {t['prefill_ms']:>17.1f} {t['decode_ms']:>14.2f} {1e3 / t['decode_ms']:>7.1f} "
              f"{str(r['same_tokens']):>5}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "threads": args.threads, "records": records}, f, indent=1)
    return 0 if all(r["same_tokens"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
