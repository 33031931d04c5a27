"""Kernel for ``matmul``: batched, broadcasting, through :class:`~.matmul.MatmulPlanner`.

Batch dimensions broadcast (numpy rules): each operand's batch stride is 0 where it has
size 1 or is missing. Adjacent batch dims that every operand walks contiguously are
merged; the last two remaining batch dims run in one launch (the kernel's two batch
levels), any further ones as one launch per index (element offsets select the matrices).

Operands and result need not be contiguous. The compiler reads a ``transpose`` feeding a
matmul in place and lets a matmul write straight into the layout of a ``transpose`` that is
its only reader: then ``instr.attrs["_strides"]`` holds each operand's element strides
(None: contiguous) and ``instr.attrs["_out_strides"]`` the result's, over the logical
shapes of the views. Each matrix needs a unit stride along its rows or its columns.

Example::

    >>> strided_batch((2, 1), (1, 1), (2, 3), 12)
    (12, 0)
    >>> matrix_layout((64, 32), (1, 512))
    (True, 512)
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from .api import KernelError
from .elementwise import collapse_dims, contiguous_strides
from .movement_ops import fill_launch


def strided_batch(own: Sequence[int], own_strides: Sequence[int], out: Sequence[int], matrix: int = 1) -> tuple:
    """Strides of an operand's batch dims (``own`` with ``own_strides``, in units of ``matrix``
    elements) over the output batch ``out``: 0 where the operand has size 1 or no such dim.

    Example::

        >>> strided_batch((8,), (64,), (4, 8))
        (0, 64)
    """
    pad = len(out) - len(own)
    return tuple(0 if i < pad or own[i - pad] == 1 else own_strides[i - pad] * matrix for i in range(len(out)))


def matrix_layout(shape: Sequence[int], strides: Sequence[int]) -> tuple[bool, int]:
    """``(transposed, leading dimension)`` of the matrix in the last two dims: rows of unit
    stride (``transposed``: stored column by column) or columns of unit stride.

    Example::

        >>> matrix_layout((3, 4), (4, 1)), matrix_layout((3, 1), (1, 1))
        ((False, 4), (False, 1))
    """
    rows, cols = shape[-2], shape[-1]
    rs, cs = strides[-2], strides[-1]
    if cs == 1 or cols == 1:
        return False, (rs if rows > 1 else cols)
    if rs == 1 or rows == 1:
        return True, (cs if cols > 1 else rows)
    raise ValueError(f"a {tuple(shape)} matrix with strides {tuple(strides)} has no unit-stride dimension")


def matmul(kb, instr, inputs, out):
    a, b = inputs
    if out.storage.name not in ("f32", "f16"):
        raise KernelError.of(instr, inputs, f"matmul of {out.dtype} is not supported on wgpu (float only)")
    M, N, K = out.shape[-2], out.shape[-1], a.shape[-1]
    if out.size == 0:
        return []
    if K == 0:
        return [fill_launch(kb, out, 0.0, "matmul (K=0)")]
    given = instr.attrs.get("_strides") or (None, None)
    st_a, st_b = (g if g is not None else contiguous_strides(v.shape) for g, v in zip(given, (a, b)))
    st_c = instr.attrs.get("_out_strides") or contiguous_strides(out.shape)
    (ta, lda), (tb, ldb), (tc, ldc) = (matrix_layout(v.shape, st) for v, st in ((a, st_a), (b, st_b), (out, st_c)))
    if tc:
        raise KernelError.of(instr, inputs, f"matmul result strides {st_c} have no unit stride along its rows")
    batch = tuple(out.shape[:-2])
    strides = [strided_batch(v.shape[:-2], st[:-2], batch) for v, st in ((a, st_a), (b, st_b), (out, st_c))]
    cshape, (sa, sb, sc) = collapse_dims(batch, strides)
    dtype = out.storage.name
    lds = dict(trans_a=ta, trans_b=tb, lda=lda, ldb=ldb, ldc=ldc, dtype=dtype)
    if not cshape:
        splits = split_k(M, N, K) if ldc == N else 1
        if splits > 1 and (dtype == "f32" or _tensor_cores_take(kb, M, N, K // splits)):
            return _split_k_launches(kb, a, b, out, M, N, K, splits, **lds)
        return [kb.matmul.launch(a.buffer, b.buffer, out.buffer, M, N, K, **lds)]
    inner = cshape[-1]
    levels = len(cshape) - 2  # batch dims beyond the kernel's two: one launch per index
    outer = cshape[-2] if levels >= 0 else 1
    two = dict(inner_batch=inner, outer_strides=(sa[-2], sb[-2], sc[-2])) if levels >= 0 else {}
    launches = []
    for idx in itertools.product(*[range(d) for d in cshape[:max(levels, 0)]]):
        oa, ob, oc = (sum(i * s for i, s in zip(idx, st)) for st in (sa, sb, sc))
        launches.append(kb.matmul.launch(a.buffer, b.buffer, out.buffer, M, N, K, batch=outer * inner,
                                         stride_a=sa[-1], stride_b=sb[-1], stride_c=sc[-1],
                                         offset_a=oa, offset_b=ob, offset_c=oc, **two, **lds))
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


def _split_k_launches(kb, a, b, out, M, N, K, splits, *, trans_a, trans_b, lda, ldb, ldc, dtype):
    """Partial products of K slices into float32 scratch (one batched launch), then their sum.

    float16 operands go through the tensor-core kernels, which read f16 and write f32 (the
    generic kernel's storage type is one for operands and result); without them an f16
    product is not split (see :func:`matmul`)."""
    from .api import STORAGES, TensorView
    from .reduce_ops import reduce_launches

    kc = K // splits
    part = TensorView(kb.scratch(splits * M * N * 4, "split-K partials"), (splits, M * N), np.dtype(np.float32),
                      STORAGES["f32"])
    layout = dict(batch=splits, trans_a=trans_a, trans_b=trans_b, lda=lda, ldb=ldb, ldc=N,
                  stride_a=kc * lda if trans_a else kc, stride_b=kc if trans_b else kc * ldb, stride_c=M * N)
    if dtype == "f16":
        product = kb.matmul.tensor_cores.launch(a.buffer, b.buffer, part.buffer, M, N, kc, out_dtype="f32", **layout)
    else:
        product = kb.matmul.launch(a.buffer, b.buffer, part.buffer, M, N, kc, dtype="f32", **layout)
    return [product] + reduce_launches(kb, "sum", part, out, [0])


KERNELS = {"matmul": matmul}
