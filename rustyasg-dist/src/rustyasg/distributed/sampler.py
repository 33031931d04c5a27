"""``DistributedSampler``: each rank its own shard of every epoch, all shards of equal length.

Epoch ``e`` is one permutation drawn from ``(seed, e)`` — the same on every rank, a new one
every epoch (``set_epoch``, which ``Trainer`` calls) — padded by wrapping around to a
multiple of the world size (or cut, with ``drop_last``) and dealt out round-robin: rank
``r`` takes positions ``r, r + N, r + 2N, ...``. Equal lengths keep the ranks' steps, and
so their collectives, in lock-step. It plugs into ``rustyasg.data.DataLoader(sampler=...)``.

Example:
    >>> [list(DistributedSampler(10, num_replicas=4, rank=r, shuffle=False)) for r in range(2)]
    [[0, 4, 8], [1, 5, 9]]
    >>> len(DistributedSampler(10, num_replicas=4, rank=3, drop_last=True))
    2
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np

from .communicator import DistributedError


class DistributedSampler:
    """Shard of ``data_source`` (a dataset or a length) for one rank; see the module docstring.

    ``num_replicas``/``rank`` default to the world communicator's.
    """

    def __init__(self, data_source, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .communicator import lookup

            world = lookup("world")
            num_replicas = world.world_size if num_replicas is None else num_replicas
            rank = world.rank if rank is None else rank
        if not 0 <= int(rank) < int(num_replicas):
            raise DistributedError(f"DistributedSampler: rank {rank} is outside 0..{int(num_replicas) - 1}")
        self.data_source = data_source
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0

    @property
    def dataset_length(self) -> int:
        src = self.data_source
        return int(src) if isinstance(src, (int, np.integer)) else len(src)

    def __len__(self) -> int:
        n = self.dataset_length
        return n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s permutation next (every rank must set the same epoch)."""
        self.epoch = int(epoch)

    def epoch_indices(self) -> np.ndarray:
        """This rank's indices of the current epoch (1-D int64); advances the epoch."""
        n = self.dataset_length
        if n == 0:
            raise DistributedError("DistributedSampler: the dataset is empty")
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else np.arange(n)).astype(np.int64)
        self.epoch += 1
        total = len(self) * self.num_replicas
        if total > n:  # wrap around so every rank gets the same number of samples (as torch)
            order = np.concatenate([order] * math.ceil(total / n))
        return order[:total][self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())
