"""Lookup tables: ``Embedding`` and ``EmbeddingBag`` (sum / mean / max over bags).

Both index a ``(num_embeddings, embedding_dim)`` weight with ``rustyasg.core.take``;
the gradient is a scatter-add into the rows that were read.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import Embedding
    >>> emb = Embedding(10, 4)
    >>> emb(rg.input((None, 7), "int64", name="tokens")).shape
    (Dim(tokens.0), 7, 4)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import check_rank, shape_error
from .module import Module


def _check_indices(where: str, idx: Tensor) -> None:
    if idx.dtype not in (rg.int32, rg.int64):
        raise shape_error(where, f"indices must be int32 or int64, got {idx.dtype}", idx)


def embedding(idx: Tensor, weight: Tensor, padding_idx: Optional[int] = None) -> Tensor:
    """Rows of ``weight`` selected by ``idx``; rows equal to ``padding_idx`` get no gradient.

    >>> w = rg.input((5, 3), name="w"); i = rg.input((2, 4), "int64", name="i")
    >>> embedding(i, w).shape
    (2, 4, 3)
    """
    return rg.embedding(weight, idx, padding_idx)


def _padding_idx(padding_idx, num_embeddings):
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx {padding_idx} must be within num_embeddings {num_embeddings}")
    return padding_idx % num_embeddings


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors, initialised ``N(0, 1)`` (padding row zero).

    >>> Embedding(5, 2, padding_idx=0).weight.value()[0].tolist()
    [0.0, 0.0]
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None, dtype="float32"):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = _padding_idx(padding_idx, num_embeddings)
        w = init.normal((num_embeddings, embedding_dim), dtype=dtype)
        if self.padding_idx is not None:
            w[self.padding_idx] = 0
        self.weight = rg.variable(w, name="weight")

    def forward(self, idx: Tensor) -> Tensor:
        return embedding(idx, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


def _bag_ids(offsets: Tensor, n: int, num_bags: int) -> Tensor:
    """Bag of each of the ``n`` flat positions: the number of bag starts at or before it, minus one."""
    starts = offsets[:num_bags].astype("int64")
    positions = rg.constant(np.arange(n, dtype=np.int64))
    started = (starts.reshape((1, num_bags)) <= positions.reshape((n, 1))).astype("int64")
    return started.sum(axis=1) - 1


def embedding_bag(idx: Tensor, weight: Tensor, offsets: Optional[Tensor] = None, mode: str = "mean",
                  per_sample_weights: Optional[Tensor] = None, include_last_offset: bool = False,
                  padding_idx: Optional[int] = None) -> Tensor:
    """Sum, mean or max of embedding bags, as ``torch.nn.functional.embedding_bag``.

    ``idx`` is ``(B, L)`` (B bags of L indices) or 1-D with ``offsets`` (start of each
    bag). Entries equal to ``padding_idx`` are left out; an empty bag gives zeros.
    ``per_sample_weights`` (shaped like ``idx``) scale the rows in ``"sum"`` mode.

    >>> w = rg.input((9, 3), name="w"); i = rg.input((4, 5), "int64", name="i")
    >>> embedding_bag(i, w, mode="max").shape
    (4, 3)
    """
    _check_indices("embedding_bag", idx)
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError("embedding_bag: per_sample_weights are only supported in mode 'sum'")
        if tuple(per_sample_weights.shape) != tuple(idx.shape):
            raise shape_error("embedding_bag", "per_sample_weights must be shaped like the indices",
                              idx, per_sample_weights)
    rows = rg.take(weight, idx, axis=0)
    keep = None if padding_idx is None else (idx != padding_idx)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(per_sample_weights.shape + (1,))
    if offsets is None:
        check_rank("embedding_bag", idx, 2, "index array without offsets (B, L)")
        return _reduce_fixed_bags(rows, keep, mode)
    check_rank("embedding_bag", idx, 1, "index array with offsets")
    check_rank("embedding_bag", offsets, 1, "offsets")
    n, num_bags = idx.shape[0], offsets.shape[0] - (1 if include_last_offset else 0)
    if not (isinstance(n, int) and isinstance(num_bags, int)):
        raise shape_error("embedding_bag", "1-D indices with offsets need concrete lengths", idx, offsets)
    bag = _bag_ids(offsets, n, num_bags)
    if mode == "max":
        member = bag.reshape((1, n)) == rg.constant(np.arange(num_bags, dtype=np.int64)).reshape((num_bags, 1))
        if keep is not None:
            member = rg.logical_and(member, keep.reshape((1, n)))
        return _masked_max(rows.reshape((1,) + rows.shape), member.reshape(member.shape + (1,)), axis=1)
    if keep is not None:
        rows = rg.where(keep.reshape((n, 1)), rows, 0.0)
    dim = rows.shape[1]
    slots = rg.broadcast_to(bag.reshape((n, 1)), shape=(n, dim))
    total = rg.scatter_add(rg.zeros((num_bags, dim), rows.dtype), slots, rows, axis=0)
    if mode == "sum":
        return total
    ones = rg.ones((n, 1), rows.dtype) if keep is None else keep.reshape((n, 1)).astype(rows.dtype)
    count = rg.scatter_add(rg.zeros((num_bags, 1), rows.dtype), bag.reshape((n, 1)), ones, axis=0)
    return total / rg.maximum(count, 1.0)


def _reduce_fixed_bags(rows: Tensor, keep: Optional[Tensor], mode: str) -> Tensor:
    if keep is None:
        return {"sum": rg.sum, "mean": rg.mean, "max": rg.max}[mode](rows, axis=1)
    k = keep.reshape(keep.shape + (1,))
    if mode == "max":
        return _masked_max(rows, k, axis=1)
    total = rg.where(k, rows, 0.0).sum(axis=1)
    if mode == "sum":
        return total
    count = keep.astype(rows.dtype).sum(axis=1, keepdims=True)
    return total / rg.maximum(count, 1.0)


def _masked_max(rows: Tensor, mask: Tensor, axis: int) -> Tensor:
    """Max over ``axis`` of the entries where ``mask`` holds; 0 for an empty selection (PyTorch)."""
    lowest = float(np.finfo(rows.dtype).min)
    best = rg.where(mask, rows, lowest).max(axis=axis)
    any_kept = mask.astype("int64").max(axis=axis) > 0
    return rg.where(any_kept, best, 0.0)


class EmbeddingBag(Module):
    """Embedding lookups reduced per bag (``mode`` ``"sum"``, ``"mean"`` or ``"max"``).

    >>> bag = EmbeddingBag(10, 3, mode="sum")
    >>> bag(rg.input((2, 4), "int64", name="i")).shape
    (2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, mode: str = "mean",
                 include_last_offset: bool = False, padding_idx: Optional[int] = None, dtype="float32"):
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.mode = num_embeddings, embedding_dim, mode
        self.include_last_offset = include_last_offset
        self.padding_idx = _padding_idx(padding_idx, num_embeddings)
        w = init.normal((num_embeddings, embedding_dim), dtype=dtype)
        if self.padding_idx is not None:
            w[self.padding_idx] = 0
        self.weight = rg.variable(w, name="weight")

    def forward(self, idx: Tensor, offsets: Optional[Tensor] = None,
                per_sample_weights: Optional[Tensor] = None) -> Tensor:
        return embedding_bag(idx, self.weight, offsets, self.mode, per_sample_weights,
                             self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
