"""RustyASG beyond one process, on MPI: ``rustyasg.distributed`` (also ``rg.distributed``).

- :func:`init`, :func:`rank`, :func:`world_size`, :func:`barrier`: the world communicator,
  started from the launcher's environment (``mpiexec -n 4 python train.py`` or
  ``rustyasg launch -n 4 train.py``); a plain ``python train.py`` is a world of one.
- Collectives on numpy arrays (``world().all_reduce(a)`` ...) and as graph ops
  (:func:`all_reduce`, :func:`all_gather`, :func:`reduce_scatter`, :func:`broadcast`).
- :func:`data_parallel` (``zero=1`` for sharded optimizer state), :func:`broadcast_variables`,
  :class:`DistributedSampler`, ``Trainer(..., distributed=True)`` (:class:`DataParallel`).
- :class:`Pipeline`: GPipe stages across ranks with micro-batches.

Example:
    >>> import rustyasg.distributed as dist
    >>> dist.world_size() >= 1 and 0 <= dist.rank() < dist.world_size()
    True
"""

from __future__ import annotations

from .buckets import all_reduce_buckets, plan_buckets
from .communicator import CollectiveTimeoutError, Communicator, DistributedError, lookup
from .data_parallel import (DataParallelOptimizer, broadcast_variables, check_equal_across_ranks,
                            data_parallel)
from .launch import find_mpiexec, launch
from .mpi import MpiCommunicator, init
from .ops import all_gather, all_reduce, broadcast, reduce_scatter
from .sampler import DistributedSampler
from .strategy import DataParallel
from .zero import ZeroOptimizer
from .pipeline import Pipeline

__all__ = ["init", "world", "rank", "world_size", "barrier", "is_main", "Communicator", "MpiCommunicator",
           "DistributedError", "CollectiveTimeoutError", "all_reduce", "all_gather", "reduce_scatter", "broadcast",
           "all_reduce_buckets", "plan_buckets", "data_parallel", "DataParallelOptimizer", "ZeroOptimizer",
           "broadcast_variables", "check_equal_across_ranks", "DistributedSampler", "DataParallel", "Pipeline",
           "launch", "find_mpiexec", "lookup"]


def world() -> MpiCommunicator:
    """The world communicator (started on first use)."""
    return init()


def rank() -> int:
    """This process's rank in the world (0 without a launcher)."""
    return init().rank


def world_size() -> int:
    """Number of processes in the world (1 without a launcher)."""
    return init().world_size


def is_main() -> bool:
    """Whether this is rank 0 (the one that prints and writes checkpoints)."""
    return init().rank == 0


def barrier() -> None:
    """Wait until every rank gets here (bounded by the communicator's timeout)."""
    init().barrier()

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-dist")  # from the package metadata
