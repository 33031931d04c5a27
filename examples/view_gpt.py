"""A small GPT from the model zoo and its AdamW training step, for ``rustyasg view examples/view_gpt.py``."""

import numpy as np

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import optim
from rustyasg.nn.zoo import GPT, GPTConfig

cfg = GPTConfig(vocab_size=96, block_size=32, n_layer=2, n_head=2, n_embd=64)
model = GPT(cfg)


def lm_loss(logits, targets):
    """Next-token cross entropy over every position."""
    return nn.cross_entropy(rg.reshape(logits, (-1, cfg.vocab_size)), rg.reshape(targets, (-1,)))


trainer = nn.Trainer(model, lm_loss, optim.AdamW(model.parameters(), lr=3e-4), progress=False)
gen = np.random.default_rng(0)
tokens = gen.integers(0, cfg.vocab_size, (8, cfg.block_size + 1)).astype(np.int64)
batch = (tokens[:, :-1], tokens[:, 1:])
