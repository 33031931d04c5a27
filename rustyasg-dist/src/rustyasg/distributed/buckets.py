"""Gradient all-reduce in few large messages (Horovod's tensor fusion, DDP's buckets).

One MPI call per gradient would pay the message latency once per parameter (a GPT has
dozens); one call for everything would wait for the whole backward. Gradients are
grouped by dtype, in reverse parameter order (the order backward produces them), into
buckets of at most ``bucket_bytes``; each bucket is flattened and concatenated into one
vector, all-reduced as one graph op, and split back into views. It all lives in the
compiled step's graph.

Example:
    >>> import numpy as np
    >>> plan_buckets([((3, 4), np.float32), ((4,), np.float32), None], bucket_bytes=1 << 20)
    [[1, 0]]
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

import rustyasg.core as rg

from .ops import all_reduce

DEFAULT_BUCKET_BYTES = 25 << 20  # PyTorch DDP's default bucket cap


def plan_buckets(specs: Sequence[Optional[tuple]], bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> List[List[int]]:
    """Group indices of ``(shape, dtype)`` specs (``None``: no gradient) into buckets, last first."""
    buckets: List[List[int]] = []
    open_bucket = {}  # dtype -> (indices, bytes)
    for i in reversed(range(len(specs))):
        if specs[i] is None:
            continue
        shape, dtype = specs[i]
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        indices, size = open_bucket.get(dtype, (None, 0))
        if indices is None or (size + nbytes > bucket_bytes and indices):
            indices, size = [], 0
            buckets.append(indices)
        indices.append(i)
        open_bucket[dtype] = (indices, size + nbytes)
    return buckets


def all_reduce_buckets(grads: Sequence[Optional[rg.Tensor]], op: str = "mean", comm=None,
                       bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> List[Optional[rg.Tensor]]:
    """``grads`` all-reduced over ranks in buckets; ``None`` entries stay ``None``.

    >>> g = [rg.input((2, 3), name="a"), rg.input((5,), name="b")]
    >>> [t.shape for t in all_reduce_buckets(g)]
    [(2, 3), (5,)]
    """
    specs = [None if g is None else (tuple(g.shape), g.dtype) for g in grads]
    out: List[Optional[rg.Tensor]] = [None] * len(grads)
    for k, bucket in enumerate(plan_buckets(specs, bucket_bytes)):
        if len(bucket) == 1:
            (i,) = bucket
            out[i] = all_reduce(grads[i], op, comm, name=f"grad_bucket{k}")
            continue
        flat = rg.concat(*[rg.reshape(grads[i], (-1,)) for i in bucket], axis=0)
        reduced = all_reduce(flat, op, comm, name=f"grad_bucket{k}")
        offset = 0
        for i in bucket:
            n = int(np.prod(grads[i].shape, dtype=np.int64))
            out[i] = rg.reshape(rg.narrow(reduced, 0, offset, n), tuple(grads[i].shape))
            offset += n
    return out
