"""Loading batches in worker processes, handed over through shared memory.

``DataLoader(num_workers=N)`` starts N processes for each pass over the data. Batch ``i`` of
the epoch is loaded by worker ``i % N``; the main process yields batches strictly in order
(later ones wait in a small reorder buffer), so the order never depends on timing. A worker
writes every array of its batch into one ``multiprocessing.shared_memory`` block and sends
only the arrays' layout; the main process copies the arrays out and frees the block (one copy,
no pickling of array data). Blocks are named after the pass and the batch index, so whatever
is in flight when a pass ends early (a break, an error, Ctrl-C) is found and freed.

Seeding is per batch, not per worker: before loading batch ``i`` a worker seeds numpy's and
Python's global generators and ``reseed``\\ s every random transform it finds in the dataset
(objects with a ``reseed(seed)`` method, such as :mod:`~rustyasg.data.transforms`'
random ones) from ``(seed, epoch, i)``, so random augmentation is reproducible, different for
every batch (forked workers never repeat each other's draws) and independent of N.
:func:`get_worker_info` tells code running in a worker who it is.

A worker's exception is re-raised in the main process as :class:`WorkerError` carrying the
worker's traceback (the original exception is chained when it can be pickled). Workers ignore
SIGINT: Ctrl-C reaches the main process, whose iterator then stops the workers, joins them
and frees every shared block still in flight.

Example:
    >>> import numpy as np
    >>> batch = (np.arange(6.0).reshape(2, 3), [np.array([1, 2])])
    >>> layout, total = plan_layout(batch)
    >>> total, [shape for _, shape, _ in layout]
    (128, [(2, 3), (2,)])
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import signal
import traceback
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["WorkerError", "WorkerInfo", "get_worker_info", "plan_layout", "worker_batches"]

_ALIGN = 64
_POLL_S = 0.1
_JOIN_S = 5.0


class WorkerError(RuntimeError):
    """A DataLoader worker raised; the message carries its traceback."""


@dataclass(frozen=True)
class WorkerInfo:
    """Who the current worker is (``None`` from :func:`get_worker_info` in the main process)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_INFO: Optional[WorkerInfo] = None


def get_worker_info() -> Optional[WorkerInfo]:
    """This worker's :class:`WorkerInfo`, or ``None`` outside DataLoader workers."""
    return _INFO


# -- batches as flat arrays ------------------------------------------------------------------------
def _leaves(tree) -> List[np.ndarray]:
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key])]
    return [np.asarray(tree)]


def _rebuild(tree, leaves: Iterator[np.ndarray]):
    if isinstance(tree, (tuple, list)):
        return type(tree)(_rebuild(item, leaves) for item in tree)
    if isinstance(tree, dict):
        return {key: _rebuild(tree[key], leaves) for key in sorted(tree)}
    return next(leaves)


def _skeleton(tree):
    """The batch's nesting with its arrays replaced by ``None`` (what travels through the queue)."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(_skeleton(item) for item in tree)
    if isinstance(tree, dict):
        return {key: _skeleton(tree[key]) for key in sorted(tree)}
    return None


def plan_layout(batch) -> Tuple[List[Tuple[int, tuple, str]], int]:
    """``([(offset, shape, dtype), ...], total bytes)`` of a batch's arrays in one aligned block."""
    layout, offset = [], 0
    for a in _leaves(batch):
        if a.dtype.hasobject:
            raise TypeError(f"DataLoader workers hand batches over as numeric arrays; got an object array "
                            f"of shape {a.shape}")
        layout.append((offset, tuple(a.shape), a.dtype.str))
        offset += -(-a.nbytes // _ALIGN) * _ALIGN
    return layout, offset


# -- the worker process ----------------------------------------------------------------------------------
def _reseed_random_parts(obj, seed_seq: np.random.SeedSequence, depth: int = 0, seen=None) -> None:
    """Call ``reseed`` on every object with one reachable from ``obj`` (transforms inside datasets)."""
    seen = set() if seen is None else seen
    if depth > 6 or id(obj) in seen or isinstance(obj, (np.ndarray, str, bytes, int, float, type(None))):
        return
    seen.add(id(obj))
    reseed = getattr(obj, "reseed", None)
    if callable(reseed) and not isinstance(obj, type):
        reseed(int(seed_seq.spawn(1)[0].generate_state(1)[0]))
    children = obj if isinstance(obj, (list, tuple)) else obj.values() if isinstance(obj, dict) else \
        getattr(obj, "__dict__", {}).values()
    for child in children:
        _reseed_random_parts(child, seed_seq, depth + 1, seen)


def _seed_for_batch(dataset, seed: int, epoch: int, index: int) -> None:
    seq = np.random.SeedSequence([seed, epoch, index])
    state = seq.generate_state(2)
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))
    _reseed_random_parts(dataset, seq)


def block_name(token: str, index: int) -> str:
    """The shared block of batch ``index`` of one pass: known to both sides, so nothing can leak."""
    return f"rgdl_{token}_{index}"


def _worker_loop(worker_id: int, num_workers: int, load: Callable, dataset, seed: int, epoch: int,
                 tasks, results, init_fn: Optional[Callable], token: str) -> None:
    global _INFO
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _INFO = WorkerInfo(worker_id, num_workers, seed, dataset)
    parent = os.getppid()
    try:
        if init_fn is not None:
            init_fn(worker_id)
    except BaseException as exc:  # reported for the first batch this worker owns
        results.put((worker_id, -1, "error", _describe(exc), _picklable(exc)))
        return
    while True:
        try:
            task = tasks.get(timeout=_POLL_S * 10)
        except queue.Empty:
            if os.getppid() != parent:  # the main process is gone: nobody will read our batches
                return
            continue
        if task is None:
            return
        index, indices = task
        try:
            _seed_for_batch(dataset, seed, epoch, index)
            batch = load(indices)
            layout, total = plan_layout(batch)
            block = shared_memory.SharedMemory(name=block_name(token, index), create=True, size=max(total, 1))
            # The main process owns the block from here on (it unlinks it); without this the
            # resource tracker would unlink it when this worker exits, possibly before it is read.
            resource_tracker.unregister(block._name, "shared_memory")
            try:
                for (offset, shape, dtype), leaf in zip(layout, _leaves(batch)):
                    np.ndarray(shape, dtype, buffer=block.buf, offset=offset)[...] = leaf
                results.put((worker_id, index, "batch", (block.name, layout, _skeleton(batch)), None))
            finally:
                block.close()  # the main process unlinks it after copying
        except BaseException as exc:
            results.put((worker_id, index, "error", _describe(exc), _picklable(exc)))


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _picklable(exc: BaseException) -> Optional[BaseException]:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return None


def _take(payload) -> Any:
    """Copy a batch out of its shared block and free the block."""
    name, layout, skeleton = payload
    block = shared_memory.SharedMemory(name=name)
    try:
        leaves = [np.ndarray(shape, dtype, buffer=block.buf, offset=offset).copy() for offset, shape, dtype in layout]
    finally:
        block.close()
        block.unlink()
    return _rebuild(skeleton, iter(leaves)) if skeleton is not None else leaves[0]


def _free(name: str) -> None:
    try:
        block = shared_memory.SharedMemory(name=name)
        block.close()
        block.unlink()
    except FileNotFoundError:
        pass


# -- the main process's side -----------------------------------------------------------------------------
def worker_batches(load: Callable, dataset, index_batches: Sequence, num_workers: int, prefetch: int, seed: int,
                   epoch: int, context: Optional[str] = None, init_fn: Optional[Callable] = None,
                   timeout: Optional[float] = None) -> Iterator[Any]:
    """Yield ``load(indices)`` for every entry of ``index_batches``, in order, loaded by worker processes."""
    ctx = mp.get_context(context)
    token = os.urandom(6).hex()
    results = ctx.Queue()
    tasks = [ctx.Queue() for _ in range(num_workers)]
    workers = [ctx.Process(target=_worker_loop, name=f"rustyasg-data-worker-{w}", daemon=True,
                           args=(w, num_workers, load, dataset, seed, epoch, tasks[w], results, init_fn, token))
               for w in range(num_workers)]
    for w in workers:
        w.start()
    index_batches = list(index_batches)
    sent = taken = 0
    ready: Dict[int, Tuple[str, Any, Any]] = {}
    try:
        window = max(1, prefetch) * num_workers
        while sent < min(window, len(index_batches)):
            tasks[sent % num_workers].put((sent, index_batches[sent]))
            sent += 1
        for index in range(len(index_batches)):
            while index not in ready:
                ready_index, kind, payload, exc = _next_result(results, workers, index, timeout)
                ready[ready_index] = (kind, payload, exc)
            kind, payload, exc = ready.pop(index)
            if kind == "error":
                raise WorkerError(f"DataLoader worker {index % num_workers} failed loading batch {index}; "
                                  f"its traceback:\n{payload}") from exc
            if sent < len(index_batches):
                tasks[sent % num_workers].put((sent, index_batches[sent]))
                sent += 1
            batch = _take(payload)
            taken = index + 1
            yield batch
    finally:
        _shutdown(workers, tasks, results)
        for index in range(taken, sent):  # blocks of batches never consumed (some may not exist)
            _free(block_name(token, index))


def _next_result(results, workers, index: int, timeout: Optional[float]):
    waited = 0.0
    while True:
        try:
            worker_id, ready_index, kind, payload, exc = results.get(timeout=_POLL_S)
        except queue.Empty:
            waited += _POLL_S
            dead = [w for w in workers if not w.is_alive() and w.exitcode not in (0, None)]
            if dead:
                raise WorkerError(f"DataLoader worker {workers.index(dead[0])} (pid {dead[0].pid}) exited "
                                  f"unexpectedly with code {dead[0].exitcode} while batch {index} was awaited")
            if timeout is not None and waited >= timeout:
                raise WorkerError(f"DataLoader: batch {index} not ready after {timeout:g} s (timeout=)")
            continue
        if ready_index == -1:  # worker_init_fn failed: report it as the awaited batch's failure
            return index, kind, payload, exc
        return ready_index, kind, payload, exc


def _shutdown(workers, tasks, results) -> None:
    for q in tasks:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    for w in workers:
        w.join(_JOIN_S)
    for w in workers:
        if w.is_alive():
            w.terminate()
            w.join(_JOIN_S)
    for q in (*tasks, results):
        q.cancel_join_thread()  # what is still queued is discarded, never waited for
        q.close()
