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

from .ops import all_reduce, all_reduce_overlapped

DEFAULT_BUCKET_BYTES = 25 << 20  # PyTorch DDP's default bucket cap
#: The first bucket of each dtype is smaller (DDP's ``first_bucket_bytes``): the last layers'
#: gradients, ready first, start travelling while the rest of the backward pass runs.
FIRST_BUCKET_BYTES = 1 << 20


def plan_buckets(specs: Sequence[Optional[tuple]], bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 first_bucket_bytes: int = FIRST_BUCKET_BYTES) -> List[List[int]]:
    """Group indices of ``(shape, dtype)`` specs (``None``: no gradient) into buckets, last first.

    >>> f4 = np.float32
    >>> plan_buckets([((1 << 18,), f4)] * 3, bucket_bytes=4 << 20, first_bucket_bytes=1 << 20)
    [[2], [1, 0]]
    """
    buckets: List[List[int]] = []
    open_bucket = {}  # dtype -> (indices, bytes, cap)
    for i in reversed(range(len(specs))):
        if specs[i] is None:
            continue
        shape, dtype = specs[i]
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        indices, size, cap = open_bucket.get(dtype, (None, 0, min(first_bucket_bytes, bucket_bytes)))
        if indices is not None and size + nbytes > cap and indices:
            indices, cap = None, bucket_bytes
        if indices is None:
            indices, size = [], 0
            buckets.append(indices)
        indices.append(i)
        open_bucket[dtype] = (indices, size + nbytes, cap)
    return buckets


def all_reduce_buckets(grads: Sequence[Optional[rg.Tensor]], op: str = "mean", comm=None,
                       bucket_bytes: int = DEFAULT_BUCKET_BYTES, overlap: bool = True) -> List[Optional[rg.Tensor]]:
    """``grads`` all-reduced over ranks in buckets; ``None`` entries stay ``None``.

    With ``overlap`` (the default) each bucket is one :func:`~.ops.all_reduce_overlapped`:
    its transfer starts as soon as the bucket's last gradient exists and is waited for
    where the optimizer first reads it, so it travels while the backward pass computes the
    next buckets. ``overlap=False`` packs and all-reduces each bucket in one blocking step.

    >>> g = [rg.input((2, 3), name="a"), rg.input((5,), name="b")]
    >>> [t.shape for t in all_reduce_buckets(g)]
    [(2, 3), (5,)]
    """
    specs = [None if g is None else (tuple(g.shape), g.dtype) for g in grads]
    out: List[Optional[rg.Tensor]] = [None] * len(grads)
    for k, bucket in enumerate(plan_buckets(specs, bucket_bytes)):
        if overlap:
            reduced = all_reduce_overlapped([grads[i] for i in bucket], op, comm, name=f"grad_bucket{k}")
        elif len(bucket) == 1:
            (i,) = bucket
            out[i] = all_reduce(grads[i], op, comm, name=f"grad_bucket{k}")
            continue
        else:
            flat = rg.concat(*[rg.reshape(grads[i], (-1,)) for i in bucket], axis=0)
            reduced = all_reduce(flat, op, comm, name=f"grad_bucket{k}")
        offset = 0
        for i in bucket:
            n = int(np.prod(grads[i].shape, dtype=np.int64))
            out[i] = rg.reshape(rg.narrow(reduced, 0, offset, n), tuple(grads[i].shape))
            offset += n
    return out
