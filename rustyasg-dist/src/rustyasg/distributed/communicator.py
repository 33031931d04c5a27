"""The communicator protocol, its errors, and the table of live communicators.

A :class:`Communicator` is what every distributed feature talks to: ``rank``,
``world_size``, ``barrier`` and the collectives on numpy arrays (all-reduce,
all-gather, reduce-scatter, broadcast) plus point-to-point ``send``/``recv`` for
pipeline stages. :class:`~rustyasg.distributed.mpi.MpiCommunicator` implements it on
MPI. Graph ops name their communicator by a short key (an op attribute must be a
plain value), resolved through :func:`lookup`.

Every blocking call waits at most ``timeout`` seconds: a rank that died or hangs
makes the others raise :class:`CollectiveTimeoutError` instead of waiting forever.

Example:
    >>> REDUCE_OPS
    ('sum', 'mean', 'max', 'min')
"""

from __future__ import annotations

from typing import Dict, Protocol, runtime_checkable

import numpy as np

from rustyasg.core.errors import RustyASGError

#: Reductions every communicator supports (``mean`` is ``sum`` divided by the world size).
REDUCE_OPS = ("sum", "mean", "max", "min")


class DistributedError(RustyASGError, RuntimeError):
    """A distributed run cannot go on (bad setup, mismatched ranks, a lost peer)."""


class CollectiveTimeoutError(DistributedError, TimeoutError):
    """A collective or message got no answer in time: another rank died or hangs."""


@runtime_checkable
class Communicator(Protocol):
    """What the distributed features need from a transport.

    Collectives take and return numpy arrays; ``all_gather`` and ``reduce_scatter`` work
    on blocks along axis 0 (rank ``r`` owns block ``r``). ``*_into`` variants write into a
    given output array (the compiled kernels' preallocated buffers).
    """

    rank: int
    world_size: int
    key: str
    timeout: float

    def barrier(self) -> None: ...

    def broadcast_into(self, x: np.ndarray, out: np.ndarray, root: int = 0) -> None: ...

    def all_reduce_into(self, x: np.ndarray, out: np.ndarray, op: str = "sum") -> None: ...

    def all_gather_into(self, x: np.ndarray, out: np.ndarray) -> None: ...

    def reduce_scatter_into(self, x: np.ndarray, out: np.ndarray, op: str = "sum") -> None: ...

    def send(self, x: np.ndarray, dest: int, tag: int = 0) -> None: ...

    def recv_into(self, out: np.ndarray, source: int, tag: int = 0) -> None: ...


class CollectivesMixin:
    """The allocating forms of the collectives, written once over the ``*_into`` methods.

    >>> class Solo(CollectivesMixin):
    ...     world_size = 1
    ...     def all_reduce_into(self, x, out, op="sum"): out[...] = x
    >>> Solo().all_reduce(np.arange(3.0)).tolist()
    [0.0, 1.0, 2.0]
    """

    world_size: int

    def all_reduce(self, x, op: str = "sum") -> np.ndarray:
        x = np.asarray(x, order="C")
        out = np.empty_like(x)
        self.all_reduce_into(x, out, op)
        return out

    def all_gather(self, x) -> np.ndarray:
        x = np.asarray(x, order="C")
        out = np.empty((x.shape[0] * self.world_size,) + x.shape[1:] if x.ndim else (self.world_size,), x.dtype)
        self.all_gather_into(x.reshape(x.shape or (1,)), out)
        return out

    def reduce_scatter(self, x, op: str = "sum") -> np.ndarray:
        x = np.asarray(x, order="C")
        if x.ndim == 0 or x.shape[0] % self.world_size:
            raise DistributedError(f"reduce_scatter: axis 0 of shape {x.shape} must divide into "
                                   f"{self.world_size} equal blocks (one per rank)")
        out = np.empty((x.shape[0] // self.world_size,) + x.shape[1:], x.dtype)
        self.reduce_scatter_into(x, out, op)
        return out

    def broadcast(self, x, root: int = 0) -> np.ndarray:
        x = np.asarray(x, order="C")
        out = np.empty_like(x)
        self.broadcast_into(x, out, root)
        return out

    def recv(self, shape, dtype, source: int, tag: int = 0) -> np.ndarray:
        out = np.empty(shape, dtype)
        self.recv_into(out, source, tag)
        return out


_LIVE: Dict[str, Communicator] = {}


def register(comm: Communicator) -> Communicator:
    """Make ``comm`` reachable from graph ops under ``comm.key``."""
    _LIVE[comm.key] = comm
    return comm


def lookup(key: str) -> Communicator:
    """The live communicator named ``key`` (``"world"`` starts MPI on first use).

    >>> lookup("world").world_size >= 1
    True
    """
    comm = _LIVE.get(key)
    if comm is None:
        if key == "world":
            from .mpi import init

            return init()
        raise DistributedError(f"no communicator {key!r} in this process (known: {sorted(_LIVE)}); "
                               f"graph ops must be built with a communicator created here")
    return comm
