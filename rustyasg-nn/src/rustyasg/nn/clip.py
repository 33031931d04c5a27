"""Gradient clipping as graph transforms, so it runs inside the compiled step.

Both functions take a list of gradient tensors (``None`` entries pass through,
like parameters without ``.grad`` in PyTorch) and return new tensors; the
optimizers call them from ``opt.updates(loss, clip_grad_norm=..., clip_grad_value=...)``.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> g = rg.input((2,), "float64", name="g")
    >>> (clipped,), norm = clip_grad_norm([g], max_norm=1.0)
    >>> rg.evaluate([clipped, norm], {g: [3.0, 4.0]})[1]
    array(5.)
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import rustyasg.core as rg
from rustyasg.core import Tensor

CLIP_EPS = 1e-6  # PyTorch's clip_grad_norm_: max_norm / (total_norm + 1e-6)

Limit = Union[float, Tensor]


def _vector_norm(g: Tensor, p: float) -> Tensor:
    if math.isinf(p):
        return rg.max(rg.abs(g))
    if p == 2:
        return rg.sqrt(rg.sum(rg.square(g)))
    if p == 1:
        return rg.sum(rg.abs(g))
    return rg.sum(rg.abs(g) ** float(p)) ** (1.0 / p)


def total_norm(grads: Sequence[Optional[Tensor]], norm_type: float = 2.0) -> Tensor:
    """The ``norm_type``-norm of all gradients together (the norm of the per-tensor norms, as PyTorch).

    >>> g = rg.input((3,), name="g")
    >>> total_norm([g, None, g]).shape
    ()
    """
    p = float(norm_type)
    if p <= 0 and not math.isinf(p):
        raise ValueError(f"norm_type must be positive or inf, got {norm_type}")
    present = [g for g in grads if g is not None]
    if not present:
        raise ValueError("clip_grad_norm: no gradients to clip")
    dtype = present[0].dtype
    norms = rg.stack([_vector_norm(g, p).astype(dtype) for g in present])
    return _vector_norm(norms, p)


def clip_grad_norm(grads: Sequence[Optional[Tensor]], max_norm: Limit, norm_type: float = 2.0
                   ) -> Tuple[List[Optional[Tensor]], Tensor]:
    """Rescale ``grads`` so their global norm is at most ``max_norm``; returns ``(grads, norm before)``.

    The factor is ``min(1, max_norm / (norm + 1e-6))``, PyTorch's ``clip_grad_norm_`` formula. A
    non-finite norm propagates (PyTorch's ``error_if_nonfinite=False``): a compiled step cannot raise.
    """
    norm = total_norm(grads, norm_type)
    coef = rg.minimum(max_norm / (norm + CLIP_EPS), 1.0)
    return [None if g is None else g * coef.astype(g.dtype) for g in grads], norm


def clip_grad_value(grads: Sequence[Optional[Tensor]], clip_value: Limit) -> List[Optional[Tensor]]:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` (PyTorch's ``clip_grad_value_``).

    >>> g = rg.input((3,), "float64", name="g")
    >>> rg.evaluate(clip_grad_value([g], 0.5)[0], {g: [-2.0, 0.1, 3.0]})
    array([-0.5,  0.1,  0.5])
    """
    if isinstance(clip_value, Tensor):
        return [None if g is None else rg.minimum(rg.maximum(g, -clip_value.astype(g.dtype)), clip_value.astype(g.dtype))
                for g in grads]
    v = float(clip_value)
    if v < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    return [None if g is None else rg.clamp(g, min=-v, max=v) for g in grads]
