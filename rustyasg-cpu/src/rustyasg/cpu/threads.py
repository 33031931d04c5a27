"""A small fork-join pool that splits numba kernels (compiled ``nogil``) across cores.

Why not numba's ``parallel=True``: its OpenMP workers spin after each parallel
region, and so do the BLAS workers after each GEMM; on a machine with few cores
the two pools take turns at scheduler-tick granularity (measured: 16 ms steps
instead of 3 ms). These workers block on a semaphore instead, so they cost
nothing while BLAS runs. A kernel opts in by taking ``(lo, hi)``, a range of its
outermost loop; :func:`splitter` binds it to run as ``threads()`` chunks, or as
one plain call when the work is too small to pay for the hand-off (~10 µs).

Splitting is opt-in: set ``RUSTYASG_CPU_THREADS`` (e.g. to the number of cores).
On the 2-vCPU reference machine it measured neutral to 5-10% slower for the
benchmark workloads (their numba kernels are bound by memory bandwidth, which a
second thread does not add, while BLAS already uses both cores); compute-heavy
kernels (GELU with its derivative, softmax) did run 1.5x faster split in isolation.

Example:
    >>> import numpy as np
    >>> out = np.zeros(8)
    >>> def fill(lo, hi):
    ...     out[lo:hi] = np.arange(lo, hi)
    >>> splitter(fill, 8, 0)(); out.tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Callable, List, Optional

#: Work (elements touched) below which a kernel runs as one call.
MIN_WORK = int(os.environ.get("RUSTYASG_CPU_SPLIT_MIN", 1 << 17))


def threads() -> int:
    """How many threads split kernels use (``RUSTYASG_CPU_THREADS``, default 1)."""
    value = os.environ.get("RUSTYASG_CPU_THREADS", "")
    if value == "all":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    return int(value) if value.isdigit() and int(value) > 0 else 1


class Pool:
    """``n - 1`` daemon workers; the calling thread runs the first chunk itself."""

    def __init__(self, n: int):
        self.n = n
        self._jobs: List[Optional[Callable]] = [None] * n
        self._go = [threading.Semaphore(0) for _ in range(n)]
        self._done = threading.Semaphore(0)
        self._errors: List[BaseException] = []
        for k in range(1, n):
            threading.Thread(target=self._work, args=(k,), daemon=True, name=f"rustyasg-cpu-{k}").start()

    def _work(self, k: int) -> None:
        while True:
            self._go[k].acquire()
            try:
                self._jobs[k]()
            except BaseException as exc:  # re-raised in the caller
                self._errors.append(exc)
            self._done.release()

    def run(self, jobs: List[Callable]) -> None:
        """Run ``jobs`` (at most ``n``) concurrently; the first on this thread."""
        for k in range(1, len(jobs)):
            self._jobs[k] = jobs[k]
            self._go[k].release()
        jobs[0]()
        for _ in range(1, len(jobs)):
            self._done.acquire()
        if self._errors:
            err = self._errors[0]
            self._errors.clear()
            raise err


_pool: Optional[Pool] = None
_lock = threading.Lock()


def pool() -> Pool:
    global _pool
    with _lock:
        if _pool is None or _pool.n != threads():
            _pool = Pool(threads())
        return _pool


def splitter(kernel: Callable, n: int, work: int, *args) -> Callable[[], None]:
    """``kernel(*args, lo, hi)`` over ``range(n)``, split across the pool when ``work`` is large.

    Chunks are contiguous and in order, so a kernel whose iterations write disjoint
    memory (rows, images, channels) gives the same result however it is split.
    """
    parts = min(threads(), n) if work >= MIN_WORK else 1
    if parts <= 1:
        return functools.partial(kernel, *args, 0, n)
    bounds = [n * k // parts for k in range(parts + 1)]
    jobs = [functools.partial(kernel, *args, bounds[k], bounds[k + 1]) for k in range(parts)]
    runner = pool()
    return functools.partial(runner.run, jobs)
