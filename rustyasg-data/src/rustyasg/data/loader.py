"""DataLoader: batches from a dataset, seeded shuffling, background prefetching, worker processes.

While the training step works on batch ``k``, a background thread already gathers batches
``k+1 .. k+prefetch``. numpy releases the GIL in its copy loops, and file reads release it too, so
the loading really overlaps with the step. Batches of datasets with ``get_batch`` (such as
:class:`~rustyasg.data.InMemoryDataset`) are gathered with one fancy-index per batch.
Loading that holds the GIL (decoding images, Python augmentation) runs in ``num_workers``
processes instead (:mod:`~rustyasg.data.workers`: shared memory, deterministic order and seeds).

>>> import numpy as np
>>> from rustyasg.data import InMemoryDataset
>>> ds = InMemoryDataset(np.arange(10).reshape(5, 2), np.arange(5))
>>> [yb.tolist() for _, yb in DataLoader(ds, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .datasets import Dataset, fetch_batch
from .samplers import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]

_DONE, _ERROR, _BATCH = "done", "error", "batch"


class DataLoader:
    """Iterate over a dataset in batches, like ``torch.utils.data.DataLoader``.

    Args:
        dataset: any object with ``len`` and ``[i]`` (see :class:`~rustyasg.data.Dataset`).
        batch_size: samples per batch.
        shuffle: draw a fresh seeded permutation each epoch (``RandomSampler(seed=seed)``).
        sampler: explicit index sampler (excludes ``shuffle``).
        batch_sampler: yields whole index batches (excludes batch_size/shuffle/sampler/drop_last).
        drop_last: drop the final batch if it is smaller than ``batch_size``.
        collate_fn: turns a list of samples into a batch. When omitted, the dataset's
            vectorised ``get_batch`` is used if it has one, else ``default_collate``.
        seed: seed of the shuffling sampler; the same seed gives the same epochs.
        prefetch: number of batches a background thread keeps ready; 0 loads in the caller's
            thread. With workers: batches in flight per worker.
        num_workers: load in this many worker processes (0: in this process). Batches come in
            the same order, with per-batch seeds (see :mod:`~rustyasg.data.workers`).
        worker_init_fn: called as ``fn(worker_id)`` in each worker once it starts.
        multiprocessing_context: ``"fork"``, ``"spawn"`` or ``"forkserver"`` (default: the
            platform's); with spawn/forkserver the dataset must be picklable.
        timeout: seconds to wait for one batch from the workers before raising (default: no limit).

    >>> import numpy as np
    >>> from rustyasg.data import InMemoryDataset
    >>> ds = InMemoryDataset(np.arange(6))
    >>> a = [b[0].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, seed=1)]
    >>> b = [b[0].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, seed=1)]
    >>> a == b, sorted(sum(a, []))
    (True, [0, 1, 2, 3, 4, 5])
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        sampler: Sampler | Iterable[int] | None = None,
        batch_sampler: Iterable[Sequence[int]] | None = None,
        drop_last: bool = False,
        collate_fn: Callable[[list], Any] | None = None,
        seed: int | None = None,
        prefetch: int = 2,
        num_workers: int = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: str | None = None,
        timeout: float | None = None,
    ):
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler excludes batch_size, shuffle, sampler and drop_last")
        elif sampler is not None and shuffle:
            raise ValueError("pass either shuffle=True or a sampler, not both")
        if int(prefetch) < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        if int(num_workers) < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.prefetch = int(prefetch)
        self.num_workers = int(num_workers)
        self.worker_init_fn, self.multiprocessing_context, self.timeout = worker_init_fn, multiprocessing_context, timeout
        # Workers seed every batch from (worker_seed, epoch, batch index).
        self.worker_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self._epoch = 0
        if batch_sampler is None:
            if sampler is None:
                sampler = RandomSampler(dataset, seed=seed) if shuffle else SequentialSampler(dataset)
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
            self.batch_size: int | None = int(batch_size)
            self.drop_last = bool(drop_last)
        else:
            self.batch_size, self.drop_last = None, False
        self.sampler = sampler
        self.batch_sampler = batch_sampler

    def __len__(self) -> int:
        """Number of batches per epoch."""
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration replay epoch ``epoch`` of the seeded shuffle (for resuming)."""
        target = self.batch_sampler if hasattr(self.batch_sampler, "set_epoch") else self.sampler
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)
        self._epoch = int(epoch)

    def load_batch(self, indices: Sequence[int] | np.ndarray) -> Any:
        """The batch made of the samples at ``indices`` (what one iteration step yields)."""
        if self.collate_fn is None:
            return fetch_batch(self.dataset, indices)
        return self.collate_fn([self.dataset[int(i)] for i in np.asarray(indices).reshape(-1)])

    def __iter__(self) -> Iterator[Any]:
        # Draw the epoch's index batches here, in the caller's thread, so seeding is deterministic.
        index_batches = iter(self.batch_sampler)
        epoch, self._epoch = self._epoch, self._epoch + 1
        if self.num_workers:
            from .workers import worker_batches

            return worker_batches(self.load_batch, self.dataset, list(index_batches), self.num_workers,
                                  self.prefetch, self.worker_seed, epoch, self.multiprocessing_context,
                                  self.worker_init_fn, self.timeout)
        if self.prefetch == 0:
            return (self.load_batch(idx) for idx in index_batches)
        return self._prefetching(index_batches)

    def _prefetching(self, index_batches: Iterator[Sequence[int]]) -> Iterator[Any]:
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: tuple) -> bool:
            # A bounded put that gives up once the consumer has gone (loop broken, iterator closed).
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for idx in index_batches:
                    if stop.is_set() or not put((_BATCH, self.load_batch(idx))):
                        return
                put((_DONE, None))
            except BaseException as error:  # handed to the consumer, re-raised there
                put((_ERROR, error))

        worker = threading.Thread(target=produce, name="rustyasg-data-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                kind, payload = ready.get()
                if kind == _BATCH:
                    yield payload
                elif kind == _ERROR:
                    raise payload
                else:
                    return
        finally:
            stop.set()

    def __repr__(self) -> str:
        return (
            f"DataLoader(len={len(self)}, batch_size={self.batch_size}, "
            f"sampler={type(self.sampler).__name__}, prefetch={self.prefetch}, num_workers={self.num_workers})"
        )
