"""Embedding lookup: a composite of ``take`` (whose gradient is the scatter-add ``take_grad``).

Example:
    >>> import rustyasg.core as rg
    >>> w, idx = rg.input((100, 16), name="w"), rg.input((None, 7), "int64", name="idx")
    >>> rg.embedding(w, idx).shape
    (Dim(idx.0), 7, 16)
"""

from __future__ import annotations

from .. import dtypes
from ..builders import builder
from ._nn_checks import user_error
from .elementwise import where
from .misc import stop_gradient
from .movement import take


@builder()
def embedding(weight, indices, padding_idx=None, name=None):
    """Rows of ``weight`` ``(num_embeddings, dim)`` picked by integer ``indices``: shape ``indices.shape + (dim,)``.

    As ``torch.nn.functional.embedding``: the row ``padding_idx`` (negative counts from
    the end) is looked up as usual but receives no gradient.

    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.constant(np.arange(6.0).reshape(3, 2))
    >>> rg.evaluate(rg.embedding(w, rg.constant(np.array([2, 0]))))
    array([[4., 5.],
           [0., 1.]])
    """
    from ..graph import as_tensor

    weight, indices = as_tensor(weight), as_tensor(indices)
    n = weight.shape[0] if weight.ndim else None
    try:
        if weight.ndim != 2:
            raise ValueError(f"weight must be (num_embeddings, dim), got rank {weight.ndim}")
        if indices.dtype not in (dtypes.int32, dtypes.int64):
            raise TypeError(f"indices must be int32 or int64, got {indices.dtype}")
        if padding_idx is not None and isinstance(n, int) and not -n <= padding_idx < n:
            raise ValueError(f"padding_idx {padding_idx} is out of range for {n} embeddings")
    except (ValueError, TypeError) as exc:
        raise user_error("embedding", exc, (weight, indices)) from None
    if padding_idx is None:
        return take(weight, indices, axis=0, name=name)
    rows = take(weight, indices, axis=0)
    # Same value on both branches; only the non-padding positions pass the gradient on.
    keep = (indices != (padding_idx % n if padding_idx < 0 else padding_idx)).reshape(tuple(indices.shape) + (1,))
    return where(keep, rows, stop_gradient(rows), name=name)
