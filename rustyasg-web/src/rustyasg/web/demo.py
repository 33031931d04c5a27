"""The MNIST drawing demo: train the MNIST CNN, export it, add a page with a canvas.

``rustyasg web-demo DIR`` builds it and ``rustyasg serve-web DIR`` serves it: draw a digit
with the mouse (or a finger), the page classifies it on the browser's GPU through the
exported program. The page scales the drawing as MNIST's digits were prepared (the ink's
bounding box fitted into 20x20 pixels, centred by its centre of mass in 28x28), normalises
with the training set's mean and deviation, and shows the ten class probabilities.

Example::

    build_mnist_demo("mnist-web/", epochs=1)
    # {'test_accuracy': 0.985, ...}
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training pixels in [0, 1]
PAGE_DIR = Path(__file__).with_name("demo_page")


def mnist_cnn():
    """Three stride-2 conv-BN-ReLU blocks (16, 32, 64 channels; 28 -> 14 -> 7 -> 4), then a linear
    classifier: the CNN of the project's MNIST example (``examples/mnist_cnn.py``)."""
    import rustyasg.nn as nn

    layers, c_in = [], 1
    for c_out, k in zip((16, 32, 64), (5, 3, 3)):
        # No conv bias: the BatchNorm shift right after makes it redundant.
        layers += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * 4 * 4, 10), nn.Softmax(dim=-1))


def train_mnist_cnn(epochs: int = 1, limit: Optional[int] = None, seed: int = 0, backend: Optional[str] = None):
    """``(model, test_accuracy, (x_test, y_test))``: the CNN trained on MNIST with AdamW (cpu backend)."""
    import rustyasg.nn as nn
    from rustyasg.data import DataLoader, InMemoryDataset, load_mnist
    from rustyasg.data.metrics import Accuracy
    from rustyasg.nn.schedulers import WarmupCosineAnnealingLR
    from rustyasg.nn.training import Trainer

    (x_train, y_train), (x_test, y_test) = load_mnist()
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    norm = lambda x: ((x - MNIST_MEAN) / MNIST_STD).astype(np.float32)  # noqa: E731
    train = DataLoader(InMemoryDataset(norm(x_train), y_train), batch_size=128, shuffle=True, drop_last=True, seed=seed)
    test = DataLoader(InMemoryDataset(norm(x_test), y_test), batch_size=1000)
    nn.init.manual_seed(seed)
    model = mnist_cnn()
    logits_model = nn.Sequential(*list(model.children())[:-1])  # trained on logits; softmax is for the page
    optimizer = nn.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=5e-4)
    steps = max(2, epochs * len(train))
    scheduler = WarmupCosineAnnealingLR(optimizer, warmup_steps=max(1, steps // 7), total_steps=steps,
                                        eta_min=1e-5, warmup_start_factor=0.04)
    trainer = Trainer(logits_model, nn.cross_entropy, optimizer, scheduler=scheduler, metrics={"acc": Accuracy()},
                      backend=backend, progress=False)
    trainer.fit(train, epochs=epochs)
    accuracy = float(trainer.evaluate(test)["acc"])
    return model, accuracy, (x_test, y_test)


def build_mnist_demo(out_dir: Union[str, os.PathLike], epochs: int = 1, limit: Optional[int] = None,
                     seed: int = 0, model: Any = None) -> Dict[str, Any]:
    """Train (unless ``model`` is given), export for one 28x28 image, and copy the page in."""
    from .export import export

    accuracy = None
    if model is None:
        model, accuracy, _ = train_mnist_cnn(epochs, limit, seed)
    out = Path(out_dir)
    exported = export(model, {"x": np.zeros((1, 1, 28, 28), np.float32)}, out, output_names=["probabilities"],
                      metadata={"task": "mnist", "mean": MNIST_MEAN, "std": MNIST_STD,
                                "labels": [str(d) for d in range(10)], "test_accuracy": accuracy})
    for asset in PAGE_DIR.iterdir():
        if asset.is_file():
            shutil.copyfile(asset, out / asset.name)
    return {"test_accuracy": accuracy, "export": exported, "model": model}
