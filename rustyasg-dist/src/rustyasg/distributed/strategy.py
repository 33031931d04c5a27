"""``DataParallel``: the strategy behind ``Trainer(..., distributed=True)``.

It implements ``rustyasg.nn.training.distributed.DistributedStrategy``: the trainer's
optimizer becomes :func:`~.data_parallel.data_parallel`'s (gradients all-reduced inside
the compiled step, or ZeRO-1 with ``zero=1``); at the start of ``fit`` (after a resume
too) rank 0's model state goes to every rank; only rank 0 shows progress and writes
checkpoints, to a path every rank can read back to resume; losses and metrics are
averaged over ranks, weighted by their sample counts (exact for means and accuracies).

Example:
    >>> s = DataParallel()
    >>> s.is_main == (s.comm.rank == 0)
    True
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Optional, TypeVar

import numpy as np

from .buckets import DEFAULT_BUCKET_BYTES
from .data_parallel import _comm, broadcast_variables, data_parallel

T = TypeVar("T")


class DataParallel:
    """Data-parallel training for ``Trainer``; ``zero=1`` shards the optimizer state (ZeRO-1)."""

    def __init__(self, zero: int = 0, comm=None, bucket_mb: float = DEFAULT_BUCKET_BYTES / 2 ** 20):
        self.comm = _comm(comm)
        self.zero, self.bucket_mb = int(zero), float(bucket_mb)
        self.optimizer = None

    @property
    def is_main(self) -> bool:
        return self.comm.rank == 0

    def wrap_optimizer(self, optimizer):
        self.optimizer = data_parallel(optimizer, zero=self.zero, comm=self.comm, bucket_mb=self.bucket_mb)
        return self.optimizer

    def on_fit_start(self, trainer) -> None:
        model = trainer.model
        broadcast_variables([*model.parameters(), *model.buffers()], 0, self.comm)
        sync = getattr(self.optimizer, "sync_shards", None)
        if sync is not None:
            sync()

    def save(self, write: Callable[[], T]) -> Optional[T]:
        prepare = getattr(self.optimizer, "gather_state", None)
        if prepare is not None:
            prepare()  # a collective: every rank takes part, rank 0 keeps the whole state
        result = write() if self.is_main else None
        # Nobody goes on (or resumes) before rank 0's file is complete (a bounded wait), then
        # every rank learns its path.
        self.comm.barrier()
        return self.comm.comm.bcast(result, root=0) if self.comm.world_size > 1 else result

    def any(self, flag: bool) -> bool:
        if self.comm.world_size == 1:
            return bool(flag)
        return bool(self.comm.all_reduce(np.array(int(flag), np.int64), "max"))

    def mean(self, value: float, weight: float) -> float:
        pair = self.comm.all_reduce(np.array([float(value) * weight, float(weight)]), "sum")
        return float(pair[0] / pair[1]) if pair[1] else float("nan")

    def mean_logs(self, logs: Mapping[str, Any], weight: float) -> dict:
        keys = sorted(k for k, v in logs.items() if isinstance(v, numbers.Real) and not isinstance(v, bool))
        sums = self.comm.all_reduce(np.array([float(logs[k]) * weight for k in keys] + [float(weight)]), "sum")
        out = dict(logs)
        out.update({k: float(s / sums[-1]) for k, s in zip(keys, sums[:-1])})
        return out

    def __repr__(self):
        return f"DataParallel(zero={self.zero}, ranks={self.comm.world_size})"
