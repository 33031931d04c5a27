"""Dynamic batching: concurrent requests share one model call.

Requests wait in a bounded queue. The batcher takes the oldest, then keeps adding requests of
the same shape signature until the batch holds ``max_batch`` rows or ``max_latency`` has passed
since the oldest arrived, runs the batch on one worker thread (the event loop keeps accepting
requests meanwhile), and hands every request its rows. ``max_batch=1`` is plain one-at-a-time
serving. A full queue refuses new requests at once (:class:`QueueFull`, answered with 503), so
overload gives fast, clear refusals instead of growing latency and memory.

Example::

    batcher = Batcher(model, max_batch=16, max_latency=0.005, max_queue=256)
    outputs = await batcher.submit(arrays, rows=1)
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from typing import Any, Callable, Deque, Dict, List, Optional

import numpy as np


class QueueFull(Exception):
    """The queue holds ``max_queue`` requests already."""


class ShuttingDown(Exception):
    """The server is draining its queue before it stops."""


class _Item:
    __slots__ = ("arrays", "rows", "key", "future", "arrived")

    def __init__(self, arrays: Dict[str, np.ndarray], rows: int, future: asyncio.Future):
        self.arrays = arrays
        self.rows = rows
        self.key = tuple((k, v.shape[1:], v.dtype.str) for k, v in arrays.items())
        self.future = future
        self.arrived = time.perf_counter()


class Batcher:
    """See the module docstring. ``on_batch(rows, requests, seconds)`` is called after each run."""

    def __init__(self, model: Any, max_batch: int, max_latency: float, max_queue: int,
                 on_batch: Optional[Callable[[int, int, float], None]] = None):
        self.model = model
        self.max_batch = max(1, min(int(max_batch), model.max_batch))
        self.max_latency = max(0.0, float(max_latency))
        self.max_queue = max(1, int(max_queue))
        self.on_batch = on_batch
        self._queue: Deque[_Item] = collections.deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: Optional[asyncio.Task] = None
        # One thread: a compiled function is not meant to run concurrently with itself.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rustyasg-serve")

    @property
    def depth(self) -> int:
        """Requests waiting (not yet taken into a batch)."""
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="rustyasg-serve batcher")

    async def submit(self, arrays: Dict[str, np.ndarray], rows: int) -> Dict[str, np.ndarray]:
        """Queue one checked request; its outputs once its batch ran."""
        if self._closing:
            raise ShuttingDown()
        if len(self._queue) >= self.max_queue:
            raise QueueFull()
        item = _Item(arrays, rows, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._wakeup.set()
        return await item.future

    def _take_batch(self) -> List[_Item]:
        first = self._queue.popleft()
        batch, rows = [first], first.rows
        keep: Deque[_Item] = collections.deque()
        while self._queue and rows < self.max_batch:
            item = self._queue.popleft()
            if item.future.done():          # its client went away
                continue
            if item.key == first.key and rows + item.rows <= self.max_batch:
                batch.append(item)
                rows += item.rows
            else:
                keep.append(item)
        self._queue.extendleft(reversed(keep))
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Wait for company until the oldest request has waited max_latency or the batch is full.
            oldest = self._queue[0].arrived
            while (self.max_batch > 1 and not self._closing
                   and sum(i.rows for i in self._queue) < self.max_batch):
                left = oldest + self.max_latency - time.perf_counter()
                if left <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = [i for i in self._take_batch() if not i.future.done()]
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self._executor, self.model.run_batch, [i.arrays for i in batch])
            except Exception as exc:  # a model failure answers this batch's requests, never stops the loop
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(sum(i.rows for i in batch), len(batch), time.perf_counter() - t0)
            for item, out in zip(batch, outputs):
                if not item.future.done():
                    item.future.set_result(out)

    async def close(self) -> None:
        """Refuse new requests, finish every queued one, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)
