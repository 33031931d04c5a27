"""Kernel for ``matmul``: batched, broadcasting, through :class:`~.matmul.MatmulPlanner`.

Batch dimensions broadcast (numpy rules): each operand's batch stride is 0 where it has
size 1 or is missing. Adjacent batch dims that every operand walks contiguously are
merged; when one merged batch dim remains the whole product is one launch, otherwise
one launch per index of the outer batch dims (element offsets select the matrices).
The executor folds a ``transpose`` of the last two axes into the operand: then
``instr.attrs["_trans"]`` flags it and the input view is the untransposed source.

Example::

    >>> batch_strides((2, 1), (2, 3), 12)
    (12, 0)
"""

from __future__ import annotations

import itertools

import numpy as np

from .api import KernelError
from .elementwise import collapse_dims, contiguous_strides
from .movement_ops import fill_launch


def batch_strides(own: tuple, out: tuple, matrix: int) -> tuple:
    """Element strides of an operand with batch shape ``own`` over the output batch ``out``."""
    pad = len(out) - len(own)
    st = contiguous_strides(own)
    return tuple(0 if i < pad or own[i - pad] == 1 else st[i - pad] * matrix for i in range(len(out)))


def matmul(kb, instr, inputs, out):
    a, b = inputs
    ta, tb = instr.attrs.get("_trans", (False, False))
    if out.storage.name not in ("f32", "f16"):
        raise KernelError.of(instr, inputs, f"matmul of {out.dtype} is not supported on wgpu (float only)")
    M, N = out.shape[-2], out.shape[-1]
    K = a.shape[-2] if ta else a.shape[-1]
    if out.size == 0:
        return []
    if K == 0:
        return [fill_launch(kb, out, 0.0, "matmul (K=0)")]
    batch = tuple(out.shape[:-2])
    sa = batch_strides(tuple(a.shape[:-2]), batch, M * K)
    sb = batch_strides(tuple(b.shape[:-2]), batch, K * N)
    sc = batch_strides(batch, batch, M * N)
    cshape, (sa, sb, sc) = collapse_dims(batch, [sa, sb, sc])
    dtype = out.storage.name
    if not cshape:
        splits = split_k(M, N, K)
        if splits > 1 and (dtype == "f32" or _tensor_cores_take(kb, M, N, K // splits)):
            return _split_k_launches(kb, a, b, out, M, N, K, ta, tb, splits, dtype)
        return [kb.matmul.launch(a.buffer, b.buffer, out.buffer, M, N, K, trans_a=ta, trans_b=tb, dtype=dtype)]
    inner, outer = cshape[-1], cshape[:-1]
    launches = []
    for idx in itertools.product(*[range(d) for d in outer]):
        oa = sum(i * s for i, s in zip(idx, sa[:-1]))
        ob = sum(i * s for i, s in zip(idx, sb[:-1]))
        oc = sum(i * s for i, s in zip(idx, sc[:-1]))
        launches.append(kb.matmul.launch(a.buffer, b.buffer, out.buffer, M, N, K, batch=inner, trans_a=ta,
                                         trans_b=tb, stride_a=sa[-1], stride_b=sb[-1], stride_c=sc[-1],
                                         offset_a=oa, offset_b=ob, offset_c=oc, dtype=dtype))
    return launches


def split_k(M: int, N: int, K: int) -> int:
    """How many slices of K to compute separately (1: none).

    A product with few output tiles (weight gradients: ``512 x 512`` over ``K = 8192``
    tokens is 16 tiles of 128x128) leaves most of a big GPU idle; slicing K multiplies
    the workgroups. Slices are powers of two dividing K, at least ``MIN_SLICE`` long.

    Example::

        >>> split_k(512, 512, 8192), split_k(4096, 4096, 4096), split_k(64, 64, 100)
        (16, 1, 1)
    """
    tiles = -(-M // 128) * -(-N // 128)
    splits = 1
    while (tiles * splits < TARGET_WORKGROUPS and K % (2 * splits) == 0 and K // (2 * splits) >= MIN_SLICE):
        splits *= 2
    return splits


#: Workgroups that keep a large GPU busy (an H100 has 132 multiprocessors).
TARGET_WORKGROUPS = 256
MIN_SLICE = 256


def _tensor_cores_take(kb, M, N, K) -> bool:
    """Whether the tensor-core kernels run an f16 product of this size (they can write float32)."""
    tc = kb.matmul.tensor_cores
    return tc is not None and bool(tc.runnable(M, N, K))


def _split_k_launches(kb, a, b, out, M, N, K, ta, tb, splits, dtype):
    """Partial products of K slices into float32 scratch (one batched launch), then their sum.

    float16 operands go through the tensor-core kernels, which read f16 and write f32 (the
    generic kernel's storage type is one for operands and result); without them an f16
    product is not split (see :func:`matmul`)."""
    from .api import STORAGES, TensorView
    from .reduce_ops import reduce_launches

    kc = K // splits
    part = TensorView(kb.scratch(splits * M * N * 4, "split-K partials"), (splits, M * N), np.dtype(np.float32),
                      STORAGES["f32"])
    lda, ldb = (M if ta else K), (K if tb else N)
    layout = dict(batch=splits, trans_a=ta, trans_b=tb, lda=lda, ldb=ldb, ldc=N, stride_a=kc * M if ta else kc,
                  stride_b=kc if tb else kc * N, stride_c=M * N)
    if dtype == "f16":
        product = kb.matmul.tensor_cores.launch(a.buffer, b.buffer, part.buffer, M, N, kc, out_dtype="f32", **layout)
    else:
        product = kb.matmul.launch(a.buffer, b.buffer, part.buffer, M, N, kc, dtype="f32", **layout)
    return [product] + reduce_launches(kb, "sum", part, out, [0])


KERNELS = {"matmul": matmul}
