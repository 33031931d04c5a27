"""Models the web tests export."""

from __future__ import annotations

import numpy as np


def mnist_cnn():
    """The MNIST CNN of examples/mnist_cnn.py (the web demo trains the same one)."""
    from rustyasg.web.demo import mnist_cnn as build

    return build()


def randomize_batch_norm(model, rng) -> None:
    """Non-trivial running statistics, so eval-mode BatchNorm is really exercised."""
    for name, var in model.named_buffers().items():
        if name.endswith("running_mean"):
            var.assign(rng.normal(0, 0.1, var.shape).astype(np.float32))
        elif name.endswith("running_var"):
            var.assign(rng.uniform(0.5, 1.5, var.shape).astype(np.float32))
