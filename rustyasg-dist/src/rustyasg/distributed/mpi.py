"""The MPI communicator (mpi4py), started from the launcher's environment.

``mpiexec -n 4 python train.py`` (the ``mpich`` wheel's launcher, or any MPI's) hands
every process its rank and the world size through its environment; :func:`init` starts
MPI from it. A script run without a launcher is a world of one.

Every collective is issued non-blocking and then polled: the wait ends in
:class:`~.communicator.CollectiveTimeoutError` after ``timeout`` seconds (a peer died or
hangs) instead of blocking forever, and the polling backs off to short sleeps, so ranks
oversubscribed on few cores leave the CPU to the rank that is still computing (MPICH's
own blocking wait spins at 100%).

Example:
    >>> comm = init()
    >>> comm.all_reduce(np.ones(2), "sum").tolist() == [float(comm.world_size)] * 2
    True
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import List, Optional

import numpy as np

from .communicator import REDUCE_OPS, CollectiveTimeoutError, CollectivesMixin, DistributedError, register

DEFAULT_TIMEOUT_S = 300.0
#: Seconds an erroring rank waits between writing its traceback and aborting the job.
ABORT_OUTPUT_GRACE_S = 0.5
TIMEOUT_ENV = "RUSTYASG_DIST_TIMEOUT"

_WORLD: Optional["MpiCommunicator"] = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - mpi4py is a dependency of this part
        raise DistributedError("rustyasg.distributed needs mpi4py and an MPI library; install them with: "
                               "pip install mpi4py mpich") from exc
    return MPI


class MpiCommunicator(CollectivesMixin):
    """A :class:`~.communicator.Communicator` over an ``mpi4py`` communicator.

    Args:
        comm: the ``mpi4py.MPI.Comm`` (``MPI.COMM_WORLD`` for the world).
        key: the name graph ops use for it.
        timeout: seconds any wait may take before it raises ``CollectiveTimeoutError``.
    """

    def __init__(self, comm, key: str = "world", timeout: float = DEFAULT_TIMEOUT_S):
        self.MPI = _mpi()
        self.comm = comm
        self.key = key
        self.rank = comm.Get_rank()
        self.world_size = comm.Get_size()
        self.timeout = float(timeout)
        #: Collectives and messages so far: how many, seconds spent in them, bytes given to them.
        self.stats = {"calls": 0, "seconds": 0.0, "bytes": 0}
        self._ops = {"sum": self.MPI.SUM, "mean": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN}
        self._progress: Optional[_ProgressThread] = None

    def __repr__(self):
        return f"MpiCommunicator(key={self.key!r}, rank={self.rank}, world_size={self.world_size})"

    # -- waiting ------------------------------------------------------------------------------
    def _wait(self, request, what: str, x: Optional[np.ndarray] = None) -> None:
        """Poll ``request`` until done; raise after ``timeout`` seconds naming the call."""
        start = time.perf_counter()
        deadline = time.monotonic() + self.timeout
        pause = 0.0
        polls = 0
        while not request.Test():
            polls += 1
            if polls > 200:  # a short spin keeps latency low; then yield the core
                pause = min(1e-3, pause * 2 or 2e-5)
                time.sleep(pause)
                if time.monotonic() > deadline:
                    size = f" ({x.dtype}, {x.nbytes / 1e6:.3g} MB)" if x is not None else ""
                    raise CollectiveTimeoutError(
                        f"rank {self.rank}/{self.world_size}: {what}{size} got no answer from the other ranks "
                        f"within {self.timeout:g} s: a rank has died or hangs (raise the limit with "
                        f"rustyasg.distributed.init(timeout=...) or ${TIMEOUT_ENV} if a step is just slow)")
        self.stats["calls"] += 1
        self.stats["seconds"] += time.perf_counter() - start
        self.stats["bytes"] += 0 if x is None else x.nbytes

    def _op(self, op: str, dtype) -> object:
        if op not in REDUCE_OPS:
            raise DistributedError(f"unknown reduction {op!r}; use one of {REDUCE_OPS}")
        if op == "mean" and np.dtype(dtype).kind != "f":
            raise DistributedError(f"a 'mean' all-reduce needs a floating dtype, got {np.dtype(dtype)}")
        return self._ops[op]

    # -- collectives --------------------------------------------------------------------------
    def barrier(self) -> None:
        self._wait(self.comm.Ibarrier(), "barrier")

    def all_reduce_into(self, x: np.ndarray, out: np.ndarray, op: str = "sum") -> None:
        mpi_op = self._op(op, out.dtype)
        send = self.MPI.IN_PLACE if x is out else x
        self._wait(self.comm.Iallreduce(send, out, mpi_op), f"all_reduce({op})", out)
        if op == "mean":
            out /= self.world_size

    def all_reduce_start(self, x: np.ndarray, out: np.ndarray, op: str = "sum") -> "PendingAllReduce":
        """Start an all-reduce of ``x`` into ``out`` and return at once; ``.wait()`` finishes it.

        The request is issued here, on the calling thread, so every rank issues its
        collectives in the same (program) order; a progress thread then polls it, so the
        transfer advances while the caller computes (MPICH moves data only inside MPI calls).
        ``x`` and ``out`` must stay untouched until ``wait`` returns.
        """
        request = self.comm.Iallreduce(self.MPI.IN_PLACE if x is out else x, out, self._op(op, out.dtype))
        pending = PendingAllReduce(self, request, out, op)
        if self._progress is None and self.MPI.Query_thread() == self.MPI.THREAD_MULTIPLE:
            self._progress = _ProgressThread()
        if self._progress is not None:
            self._progress.watch(pending)
        return pending

    def all_gather_into(self, x: np.ndarray, out: np.ndarray) -> None:
        self._wait(self.comm.Iallgather(x, out), "all_gather", x)

    def reduce_scatter_into(self, x: np.ndarray, out: np.ndarray, op: str = "sum") -> None:
        mpi_op = self._op(op, out.dtype)
        self._wait(self.comm.Ireduce_scatter_block(x, out, mpi_op), f"reduce_scatter({op})", x)
        if op == "mean":
            out /= self.world_size

    def broadcast_into(self, x: np.ndarray, out: np.ndarray, root: int = 0) -> None:
        if out is not x:
            np.copyto(out, x)
        self._wait(self.comm.Ibcast(out, root=root), f"broadcast(root={root})", out)

    def send(self, x: np.ndarray, dest: int, tag: int = 0) -> None:
        self._wait(self.comm.Isend(np.asarray(x, order="C"), dest=dest, tag=tag), f"send to rank {dest}", x)

    def recv_into(self, out: np.ndarray, source: int, tag: int = 0) -> None:
        self._wait(self.comm.Irecv(out, source=source, tag=tag), f"recv from rank {source}", out)

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (what an uncaught error on one rank does)."""
        self.comm.Abort(code)


class PendingAllReduce:
    """An all-reduce in flight (:meth:`MpiCommunicator.all_reduce_start`); :meth:`wait` completes it."""

    def __init__(self, comm: MpiCommunicator, request, out: np.ndarray, op: str):
        self.comm, self.request, self.out, self.op = comm, request, out, op
        self.done = threading.Event()
        self.started = time.perf_counter()

    def wait(self) -> np.ndarray:
        """Block until the result is in ``out`` (bounded by the communicator's timeout); return it."""
        comm = self.comm
        progress = comm._progress
        blocked_from = time.perf_counter()
        deadline = time.monotonic() + comm.timeout
        while not self.done.is_set():
            if progress is None or not progress.alive:  # nobody polls for us: poll here
                counted = dict(comm.stats)
                comm._wait(self.request, f"all_reduce({self.op})", self.out)
                comm.stats.update(counted)  # counted below, once
                break
            if not self.done.wait(0.05) and time.monotonic() > deadline:
                raise CollectiveTimeoutError(
                    f"rank {comm.rank}/{comm.world_size}: all_reduce({self.op}) of {self.out.nbytes / 1e6:.3g} MB "
                    f"got no answer from the other ranks within {comm.timeout:g} s: a rank has died or hangs "
                    f"(raise the limit with rustyasg.distributed.init(timeout=...) or ${TIMEOUT_ENV})")
        now = time.perf_counter()
        comm.stats["calls"] += 1
        comm.stats["seconds"] += now - blocked_from  # exposed: what the step waited
        comm.stats["in_flight_seconds"] = comm.stats.get("in_flight_seconds", 0.0) + now - self.started
        comm.stats["bytes"] += self.out.nbytes
        if self.op == "mean":
            self.out /= comm.world_size
        return self.out


class _ProgressThread:
    """Polls requests in flight so MPI moves their data while the main thread computes.

    MPICH (without ``MPICH_ASYNC_PROGRESS``) advances a non-blocking collective only inside
    MPI calls; the compiled step makes none between issuing a gradient bucket's all-reduce
    and needing its result. This daemon thread calls ``Test`` on what is in flight, with
    short sleeps between rounds so that it takes little CPU from the kernels (which run
    without the GIL). It sleeps on a condition when nothing is in flight.
    """

    POLL_S = 50e-6

    def __init__(self):
        self._pending: List[PendingAllReduce] = []
        self._cv = threading.Condition()
        self.alive = True
        self._thread = threading.Thread(target=self._run, name="rustyasg-mpi-progress", daemon=True)
        self._thread.start()

    def watch(self, pending: PendingAllReduce) -> None:
        with self._cv:
            self._pending.append(pending)
            self._cv.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._pending:
                        self._cv.wait()
                    batch = list(self._pending)
                finished = [p for p in batch if p.request.Test()]
                if finished:
                    with self._cv:
                        for p in finished:
                            self._pending.remove(p)
                    for p in finished:
                        p.done.set()
                else:
                    time.sleep(self.POLL_S)
        finally:  # an MPI error here: waiters fall back to polling themselves
            self.alive = False


def init(timeout: Optional[float] = None) -> MpiCommunicator:
    """The world communicator, starting MPI from the launcher's environment on first call.

    ``timeout`` (seconds; default ``$RUSTYASG_DIST_TIMEOUT`` or 300) bounds every wait. In a
    job of several ranks an uncaught exception on any rank prints its traceback and aborts
    the whole job, so the other ranks never wait for a peer that is gone.
    """
    global _WORLD
    if _WORLD is None:
        MPI = _mpi()
        limit = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)) if timeout is None else float(timeout)
        _WORLD = register(MpiCommunicator(MPI.COMM_WORLD, "world", limit))
        if _WORLD.world_size > 1:
            _install_abort_on_error(_WORLD)
    elif timeout is not None:
        _WORLD.timeout = float(timeout)
    return _WORLD


def _install_abort_on_error(comm: MpiCommunicator) -> None:
    previous = sys.excepthook

    def abort_job(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
        else:
            sys.stderr.write(f"[rank {comm.rank}/{comm.world_size}] uncaught error; aborting the job:\n"
                             + "".join(traceback.format_exception(kind, value, tb)))
            sys.stderr.flush()
            # The flush only reaches the pipe to mpiexec's output forwarder; an abort at once can
            # tear the job down before the forwarder has passed the message on (seen on a loaded
            # machine: the job failed with no word of why). A moment's wait lets it through.
            time.sleep(ABORT_OUTPUT_GRACE_S)
        comm.abort(1)

    sys.excepthook = abort_job
