"""Samplers: the order in which a DataLoader visits a dataset, and how indices become batches.

Every sampler can produce a whole epoch as one numpy index array (``epoch_indices()``), so batching
is slicing, not a Python loop over samples. Random samplers are seeded and draw epoch ``e`` from
the seed sequence ``(seed, e)``: a run is reproducible, each epoch differs, and ``set_epoch``
resumes a run exactly where it stopped.

>>> s = RandomSampler(5, seed=0)
>>> sorted(s) == [0, 1, 2, 3, 4]
True
>>> [b.tolist() for b in BatchSampler(SequentialSampler(5), batch_size=2)]
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sized

import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "WeightedRandomSampler", "BatchSampler"]


def _length_of(data_source: Sized | int) -> int:
    n = int(data_source) if isinstance(data_source, (int, np.integer)) else len(data_source)
    if n < 0:
        raise ValueError(f"a sampler needs a non-negative number of samples, got {n}")
    return n


def _fresh_seed() -> int:
    # Drawn once per sampler so that an unseeded sampler still replays its own epochs consistently.
    return int(np.random.SeedSequence().generate_state(1)[0])


class Sampler:
    """Base class: iterate over dataset indices. Subclasses implement ``epoch_indices()``.

    ``set_epoch(e)`` chooses which epoch the next iteration draws; each iteration advances it.

    >>> class Evens(Sampler):
    ...     def __init__(self, n): self.n = n; self.epoch = 0
    ...     def epoch_indices(self): return np.arange(0, self.n, 2)
    ...     def __len__(self): return (self.n + 1) // 2
    >>> list(Evens(5))
    [0, 2, 4]
    """

    epoch: int = 0

    def epoch_indices(self) -> np.ndarray:
        """All indices of the next epoch as a 1-D int64 array (advances the epoch counter)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())

    def __len__(self) -> int:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration produce epoch ``epoch`` (for resuming a seeded run)."""
        self.epoch = int(epoch)


class SequentialSampler(Sampler):
    """Indices ``0, 1, ..., n-1`` in order.

    >>> list(SequentialSampler(3))
    [0, 1, 2]
    """

    def __init__(self, data_source: Sized | int):
        self.data_source = data_source
        self.epoch = 0

    def epoch_indices(self) -> np.ndarray:
        self.epoch += 1
        return np.arange(_length_of(self.data_source), dtype=np.int64)

    def __len__(self) -> int:
        return _length_of(self.data_source)


class _SeededSampler(Sampler):
    """Shared seeding: epoch ``e`` uses ``numpy.random.default_rng([seed, e])``."""

    def __init__(self, seed: int | None):
        self.seed = _fresh_seed() if seed is None else int(seed)
        self.epoch = 0

    def _next_rng(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        return rng


class RandomSampler(_SeededSampler):
    """Random order each epoch: a permutation, or ``num_samples`` draws with replacement.

    >>> list(RandomSampler(4, replacement=True, num_samples=6, seed=3))
    [3, 0, 0, 0, 0, 3]
    >>> len(RandomSampler(4, num_samples=6, replacement=True))
    6
    """

    def __init__(
        self,
        data_source: Sized | int,
        replacement: bool = False,
        num_samples: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(seed)
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        if num_samples is not None and int(num_samples) < 0:
            raise ValueError(f"num_samples must be non-negative, got {num_samples}")

    @property
    def num_samples(self) -> int:
        return _length_of(self.data_source) if self._num_samples is None else int(self._num_samples)

    def epoch_indices(self) -> np.ndarray:
        n, k = _length_of(self.data_source), self.num_samples
        rng = self._next_rng()
        if self.replacement:
            if n == 0 and k:
                raise ValueError("cannot draw samples from an empty dataset")
            return rng.integers(0, n, size=k, dtype=np.int64)
        # Without replacement, more than n samples means whole permutations back to back (as torch).
        reps = max(1, math.ceil(k / n)) if n else 0
        if reps == 0:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[:k].astype(np.int64)

    def __len__(self) -> int:
        return self.num_samples


class WeightedRandomSampler(_SeededSampler):
    """Draw ``num_samples`` indices with probability proportional to ``weights``.

    Typical use: oversample rare classes with ``weights = 1 / class_count[labels]``.

    >>> s = WeightedRandomSampler([0.0, 1.0, 0.0], num_samples=4, seed=0)
    >>> list(s)
    [1, 1, 1, 1]
    """

    def __init__(self, weights: Iterable[float], num_samples: int, replacement: bool = True, seed: int | None = None):
        super().__init__(seed)
        w = np.asarray(list(weights) if not isinstance(weights, np.ndarray) else weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"weights must be a non-empty 1-D sequence, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = bool(replacement)
        if not self.replacement and self.num_samples > np.count_nonzero(w):
            raise ValueError(
                f"cannot draw {self.num_samples} samples without replacement from "
                f"{np.count_nonzero(w)} indices with non-zero weight"
            )

    def epoch_indices(self) -> np.ndarray:
        rng = self._next_rng()
        p = self.weights / self.weights.sum()
        return rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).astype(np.int64)

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler:
    """Group a sampler's indices into batches (1-D int64 arrays), optionally dropping a short tail.

    >>> [b.tolist() for b in BatchSampler(range(5), batch_size=2, drop_last=True)]
    [[0, 1], [2, 3]]
    """

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool = False):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)

    def _epoch(self) -> np.ndarray:
        epoch_indices = getattr(self.sampler, "epoch_indices", None)
        if epoch_indices is not None:
            return np.asarray(epoch_indices(), dtype=np.int64)
        return np.fromiter(iter(self.sampler), dtype=np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        # Draw the epoch now, not lazily on the first next(): a DataLoader may consume this
        # iterator from its prefetch thread, and the epoch counter must advance in the caller's.
        indices = self._epoch()
        stop = len(indices) - len(indices) % self.batch_size if self.drop_last else len(indices)
        return iter([indices[start : start + self.batch_size] for start in range(0, stop, self.batch_size)])

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Forward to the wrapped sampler (if it is epoch-aware)."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
