"""The README's MNIST model and training step, for ``rustyasg view examples/view_mnist.py``."""

import numpy as np

import rustyasg.nn as nn
from rustyasg.nn import losses, optim

model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
opt = optim.AdamW(model.parameters(), lr=1e-3)
trainer = nn.Trainer(model, losses.cross_entropy, opt, progress=False)
gen = np.random.default_rng(0)
batch = (gen.random((128, 1, 28, 28), dtype=np.float32), gen.integers(0, 10, 128).astype(np.int64))
