"""GPU buffer management: a size-class pool, uploads, and staged readback.

Allocating a wgpu buffer costs a driver call and, on discrete GPUs, a page
mapping; a training step allocates the same sizes every iteration. The pool
hands out buffers rounded up to a *size class* so a buffer released after its
last use (its liveness ends) can serve the next request of a similar size.
Reuse is safe without waiting: the queue runs commands in submission order,
so a later kernel that writes a recycled buffer runs after every earlier
kernel that read it.

Readback goes through persistent ``MAP_READ`` staging buffers (a storage
buffer cannot be mapped); keeping them avoids an allocation per read.

Example::

    >>> import numpy as np
    >>> from rustyasg.wgpu.device import get_context
    >>> ctx = get_context()
    >>> pool = BufferPool(ctx)
    >>> buf = upload(ctx, np.arange(4, dtype=np.float32), pool)
    >>> Readback(ctx).read_array(buf, (4,), np.float32)
    array([0., 1., 2., 3.], dtype=float32)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

# 16 bytes keeps every buffer vec4-addressable; 256 matches the usual
# binding-offset alignment so sub-allocation stays possible later.
MIN_BUFFER_BYTES = 256
# Four classes per power of two bound the waste at 25% of a request.
CLASSES_PER_OCTAVE = 4


def size_class(nbytes: int) -> int:
    """Bytes actually allocated for a request of ``nbytes``.

    Rounds up to ``MIN_BUFFER_BYTES``, then to the next of four steps per
    power of two (so at most 25% over), always a multiple of 16.

    Example::

        >>> size_class(1), size_class(1000), size_class(1 << 20)
        (256, 1024, 1048576)
        >>> size_class((1 << 20) + 1)
        1310720
    """
    n = max(int(nbytes), MIN_BUFFER_BYTES)
    top = 1 << (n - 1).bit_length()  # next power of two >= n
    if top <= MIN_BUFFER_BYTES:
        return MIN_BUFFER_BYTES
    step = (top // 2) // CLASSES_PER_OCTAVE
    return -(-n // step) * step


def bindable_size(nbytes: int, ctx: Any) -> int:
    """Bytes to allocate for a storage buffer of ``nbytes`` that kernels bind whole.

    The size class, unless that would pass the adapter's
    ``max-storage-buffer-binding-size`` while ``nbytes`` itself fits: then ``nbytes``
    rounded up to 16.

    Example::

        >>> class Ctx: limits = {"max-storage-buffer-binding-size": 1_000_000}
        >>> bindable_size(1000, Ctx()), bindable_size(999_000, Ctx())
        (1024, 999008)
    """
    cls = size_class(nbytes)
    limit = int(getattr(ctx, "limits", {}).get("max-storage-buffer-binding-size", 1 << 62))
    if cls > limit >= nbytes:
        return -(-max(int(nbytes), 4) // 16) * 16
    return cls


def _usage_storage():
    from .webgpu import api

    wgpu = api()  # WebGPU's flag values, the same in every implementation
    return wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST


@dataclass
class PoolStats:
    """Counters for tests and reports: how often the pool had to allocate."""

    allocations: int = 0
    reuses: int = 0
    bytes_allocated: int = 0


class BufferPool:
    """Storage buffers recycled by size class.

    ``acquire(n)`` returns a buffer of at least ``n`` bytes (``size_class(n)``
    exactly); ``release(buf)`` makes it available again. Buffers are never
    zeroed on reuse: kernels must write every element they later read.

    Example:

        >>> from rustyasg.wgpu.device import get_context
        >>> pool = BufferPool(get_context())
        >>> a = pool.acquire(1000); pool.release(a)
        >>> pool.acquire(900) is a
        True
    """

    def __init__(self, ctx: Any, usage: int | None = None):
        self.ctx = ctx
        self.usage = usage if usage is not None else _usage_storage()
        self._free: dict[int, list[Any]] = defaultdict(list)
        self._live: set[int] = set()
        self.stats = PoolStats()

    def acquire(self, nbytes: int, label: str = "") -> Any:
        """A buffer with ``size >= nbytes``; reused when one of its class is free."""
        cls = bindable_size(nbytes, self.ctx)
        max_size = self.ctx.limits.get("max-buffer-size", 1 << 31)
        if cls > max_size:
            raise MemoryError(
                f"buffer of {nbytes} bytes exceeds this adapter's max-buffer-size "
                f"({max_size} bytes on {self.ctx.summary})"
            )
        free = self._free[cls]
        if free:
            buf = free.pop()
            self.stats.reuses += 1
        else:
            buf = self.ctx.device.create_buffer(size=cls, usage=self.usage, label=label or f"pool{cls}")
            self.stats.allocations += 1
            self.stats.bytes_allocated += cls
        self._live.add(id(buf))
        return buf

    def release(self, buf: Any) -> None:
        """Return ``buf`` to the pool; the caller must not use it afterwards."""
        if id(buf) not in self._live:
            raise ValueError("buffer released twice, or not acquired from this pool")
        self._live.discard(id(buf))
        self._free[buf.size].append(buf)

    @property
    def free_bytes(self) -> int:
        """Bytes held in free lists (allocated on the GPU but not in use)."""
        return sum(size * len(bufs) for size, bufs in self._free.items())

    def trim(self) -> None:
        """Destroy every free buffer, giving its memory back to the driver."""
        for bufs in self._free.values():
            for buf in bufs:
                buf.destroy()
        self._free.clear()


def _padded_bytes(arr: np.ndarray) -> bytes | memoryview:
    # write_buffer needs a size that is a multiple of 4.
    data = memoryview(np.ascontiguousarray(arr)).cast("B")
    pad = (-len(data)) % 4
    return bytes(data) + b"\0" * pad if pad else data


def upload(ctx: Any, array: np.ndarray, pool: BufferPool | None = None, buffer: Any = None) -> Any:
    """Copy a numpy array to the GPU; returns the buffer written.

    Writes into ``buffer`` when given, else into one from ``pool`` (or a new
    storage buffer).

    Example:

        >>> from rustyasg.wgpu.device import get_context
        >>> buf = upload(get_context(), np.ones((2, 3), np.float32))
        >>> buf.size >= 24
        True
    """
    arr = np.ascontiguousarray(array)
    if buffer is None:
        if pool is not None:
            buffer = pool.acquire(arr.nbytes)
        else:
            buffer = ctx.device.create_buffer(size=size_class(arr.nbytes), usage=_usage_storage())
    if arr.nbytes:
        ctx.queue.write_buffer(buffer, 0, _padded_bytes(arr))
    return buffer


class Readback:
    """Reads GPU buffers back through persistent ``MAP_READ`` staging buffers.

    ``read_many`` copies several buffers into one staging buffer with a single
    submit and a single map, which is what an executor returning several
    outputs wants (each map is a round trip to the driver).

    Example:

        >>> from rustyasg.wgpu.device import get_context
        >>> ctx = get_context()
        >>> rb = Readback(ctx)
        >>> rb.read_array(upload(ctx, np.ones((2, 3), np.float32)), (2, 3), np.float32).shape
        (2, 3)
    """

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self._staging: dict[int, Any] = {}
        self.staging_allocations = 0

    def _staging_buffer(self, nbytes: int) -> Any:
        wgpu = self.ctx.api
        cls = size_class(nbytes)
        buf = self._staging.get(cls)
        if buf is None:
            usage = wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST
            buf = self.ctx.device.create_buffer(size=cls, usage=usage, label=f"staging{cls}")
            self._staging[cls] = buf
            self.staging_allocations += 1
        return buf

    def read_many(self, items: Sequence[tuple[Any, int]], encoder: Any = None) -> list[bytes]:
        """Bytes of each ``(buffer, nbytes)``; one copy pass, one submit, one map.

        Pass ``encoder`` to append the copies to pending work (it is finished
        and submitted here), so compute and readback share a submit.
        """
        wgpu = self.ctx.api
        offsets, total = [], 0
        for _, nbytes in items:
            offsets.append(total)
            total += -(-int(nbytes) // 4) * 4  # copies move whole 4-byte words
        if total == 0:
            return [b"" for _ in items]
        staging = self._staging_buffer(total)
        enc = encoder if encoder is not None else self.ctx.device.create_command_encoder()
        for (buf, nbytes), off in zip(items, offsets):
            size = -(-int(nbytes) // 4) * 4
            if size:
                enc.copy_buffer_to_buffer(buf, 0, staging, off, size)
        self.ctx.queue.submit([enc.finish()])
        staging.map_sync(wgpu.MapMode.READ, 0, total)
        try:
            whole = staging.read_mapped(0, total, copy=True)
        finally:
            staging.unmap()
        raw = memoryview(whole).cast("B")
        return [bytes(raw[off : off + int(n)]) for (_, n), off in zip(items, offsets)]

    def read(self, buffer: Any, nbytes: int, encoder: Any = None) -> bytes:
        """The first ``nbytes`` of ``buffer``."""
        return self.read_many([(buffer, nbytes)], encoder)[0]

    def read_array(self, buffer: Any, shape: Sequence[int], dtype: Any, encoder: Any = None) -> np.ndarray:
        """``buffer`` as a numpy array of ``shape`` and ``dtype`` (a fresh copy)."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        data = self.read(buffer, count * dtype.itemsize, encoder)
        return np.frombuffer(data, dtype=dtype, count=count).reshape(shape).copy()
