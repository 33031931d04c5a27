"""Data-parallel training on every rank of an MPI job (or alone, as a world of one).

    mpiexec -n 4 python examples/distributed/train.py          # the mpich wheel's mpiexec
    rustyasg launch -n 4 examples/distributed/train.py --zero  # the same, ZeRO-1 optimizer state

An MLP on scikit-learn's 8x8 digits (1,797 images, shipped with scikit-learn). Each rank
reads its own shard of every epoch (DistributedSampler); gradients are averaged inside the
compiled step; rank 0 shows progress and writes checkpoints, which a rerun resumes from.
"""

import argparse
import os
import tempfile

import numpy as np

import rustyasg.distributed as dist
import rustyasg.nn as nn
from rustyasg.data import DataLoader, InMemoryDataset
from rustyasg.data.metrics import Accuracy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (split over the ranks)")
    parser.add_argument("--zero", action="store_true", help="shard the Adam moments over the ranks (ZeRO-1)")
    parser.add_argument("--checkpoints", default=os.path.join(tempfile.gettempdir(), "rustyasg-digits"),
                        help="checkpoint directory, the same for every rank (a rerun resumes from it)")
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    train, test = InMemoryDataset(x[:1500], y[:1500]), InMemoryDataset(x[1500:], y[1500:])

    world = dist.world_size()
    per_rank = args.batch_size // world
    train_loader = DataLoader(train, batch_size=per_rank, sampler=dist.DistributedSampler(train, seed=0))
    test_loader = DataLoader(test, batch_size=per_rank, sampler=dist.DistributedSampler(test, shuffle=False))

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    directory = args.checkpoints
    trainer = nn.Trainer(model, nn.cross_entropy, nn.optim.AdamW(model.parameters(), lr=3e-3),
                         metrics={"acc": Accuracy()}, backend=args.backend,
                         checkpoints=nn.CheckpointManager(directory),
                         distributed=dist.DataParallel(zero=1 if args.zero else 0))
    manager = nn.CheckpointManager(directory)
    result = trainer.fit(train_loader, epochs=args.epochs, val_data=test_loader,
                         resume_from=manager if manager.latest() is not None else None)
    if dist.is_main():
        print(f"{world} rank(s): val_acc={result.final.get('val_acc', float('nan')):.4f} "
              f"steps={result.global_step} checkpoint={result.checkpoint}")


if __name__ == "__main__":
    main()
