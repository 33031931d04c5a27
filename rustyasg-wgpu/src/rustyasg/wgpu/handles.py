"""Device handles: a tensor's GPU buffer with its shape, dtype and device storage.

Compiled steps return :class:`GpuArray` handles for their outputs; nothing is read
back until ``backend.to_host(handle)`` (or ``handle.numpy()``) asks for it. A handle
owns its buffer: when the handle is garbage collected, the buffer goes back to the
backend's pool for reuse.

Example:

    >>> import numpy as np, rustyasg.core as rg
    >>> be = rg.get_backend("wgpu")
    >>> h = be.to_device(np.arange(3, dtype=np.float32))
    >>> h.shape, h.numpy()
    ((3,), array([0., 1., 2.], dtype=float32))
"""

from __future__ import annotations

import weakref
from typing import Any, Optional, Tuple

import numpy as np

from .kernels.api import Storage, TensorView


class GpuArray:
    """A tensor resident in a GPU buffer (contiguous, row-major, from byte 0)."""

    __slots__ = ("buffer", "shape", "dtype", "storage", "backend", "__weakref__")

    def __init__(self, buffer: Any, shape: Tuple[int, ...], dtype, storage: Storage, backend: Any = None,
                 pool: Any = None):
        self.buffer = buffer
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.storage = storage
        self.backend = backend
        if pool is not None:
            weakref.finalize(self, pool.release, buffer)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies on the device."""
        return self.size * self.storage.itemsize

    def view(self, shape: Optional[Tuple[int, ...]] = None, dtype=None) -> TensorView:
        """This buffer as a kernel operand (optionally with another shape/dtype of the same storage)."""
        return TensorView(self.buffer, tuple(shape if shape is not None else self.shape),
                          np.dtype(dtype if dtype is not None else self.dtype), self.storage)

    def numpy(self) -> np.ndarray:
        """Read the value back (waits for the GPU)."""
        return self.backend.to_host(self)

    __array__ = lambda self, dtype=None, copy=None: np.asarray(self.numpy(), dtype=dtype)  # noqa: E731

    def __repr__(self):
        return f"<GpuArray {self.dtype}{self.shape} ({self.storage.name} on the GPU)>"
