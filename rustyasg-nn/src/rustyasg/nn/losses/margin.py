"""Margin and embedding losses: hinge embedding, multi-class margin (hinge),
cosine embedding, triplet margin and margin ranking, as PyTorch defines them.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.losses import margin_ranking_loss
    >>> a, b = rg.input((2,), "float64", name="a"), rg.input((2,), "float64", name="b")
    >>> float(rg.evaluate(margin_ranking_loss(a, b, np.array([1.0, -1.0]), margin=0.5),
    ...                   {a: [1.0, 1.0], b: [0.0, 0.0]}))
    0.75
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the examples use np)

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.shapes import format_shape

from ._common import as_float, as_index, class_weight, fail, reduce_loss, same_shape

_MAG_EPS = 1e-12  # PyTorch's EPSILON in cosine_embedding_loss


def _sign_target(loss: str, target, like: Tensor) -> Tensor:
    """A +1/-1 target tensor; integer or floating both work."""
    return target if isinstance(target, Tensor) else rg.constant(target, like.dtype)


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction: str = "mean") -> Tensor:  # noqa: A002
    """``x`` where the target is 1, ``max(0, margin - x)`` where it is -1 (``F.hinge_embedding_loss``).

    >>> x = rg.input((2,), "float64", name="x")
    >>> rg.evaluate(hinge_embedding_loss(x, np.array([1.0, -1.0]), reduction="none"), {x: [0.3, 0.4]})
    array([0.3, 0.6])
    """
    x = as_float("hinge_embedding_loss", input)
    t = _sign_target("hinge_embedding_loss", target, x)
    same_shape("hinge_embedding_loss", x, t)
    per = rg.where(t != 1, rg.relu(margin - x), 0.0) + rg.where(t != -1, x, 0.0)
    return reduce_loss(per, reduction, "hinge_embedding_loss")


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,  # noqa: A002
                      reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss (``F.multi_margin_loss``).

    For each sample, ``sum_{j != y} max(0, margin - x[y] + x[j]) ** p * w[y] / C`` with
    ``input`` (N, C) or (C,) and integer ``target`` (N,) or ().

    >>> x = rg.input((3,), "float64", name="x")
    >>> round(float(rg.evaluate(multi_margin_loss(x, np.array(0)), {x: [1.0, 0.5, 0.2]})), 4)
    0.2333
    """
    name = "multi_margin_loss"
    if p not in (1, 2):
        fail(name, f"only p = 1 or p = 2 are supported, got {p}")
    x = as_float(name, input)
    if x.ndim not in (1, 2):
        fail(name, "input must be (C,) or (N, C)", x)
    t = as_index(name, target)
    if tuple(t.shape) != tuple(x.shape[:-1]):
        fail(name, f"target must have shape {format_shape(x.shape[:-1])} for input {format_shape(x.shape)}", x, t)
    n_classes = x.shape[-1]
    rows = x if x.ndim == 2 else x.reshape((1, n_classes))
    cls = t.reshape((-1,)) if x.ndim == 2 else t.reshape((1,))
    at_target = rg.gather(rows, cls.reshape((-1, 1)), axis=1)
    z = rg.relu(margin - at_target + rows)
    if p == 2:
        z = rg.square(z)
    z = z * (1.0 - rg.one_hot(cls, num_classes=n_classes, dtype=x.dtype))  # the target's own column
    per = rg.sum(z, axis=1) * (1.0 / n_classes)
    if weight is not None:
        per = per * rg.take(class_weight(name, weight, n_classes, x), cls)
    return reduce_loss(per.reshape(t.shape), reduction, name)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, reduction: str = "mean") -> Tensor:
    """``1 - cos`` for target 1, ``max(0, cos - margin)`` for target -1 (``F.cosine_embedding_loss``).

    Inputs are (N, D) or (D,), compared along the last axis.

    >>> a, b = rg.input((1, 2), "float64", name="a"), rg.input((1, 2), "float64", name="b")
    >>> float(rg.evaluate(cosine_embedding_loss(a, b, np.array([1.0])), {a: [[1.0, 0.0]], b: [[0.0, 1.0]]}))
    1.0
    """
    name = "cosine_embedding_loss"
    a = as_float(name, input1)
    b = as_float(name, input2, a, "input2")
    same_shape(name, a, b, "input1 and input2")
    if a.ndim not in (1, 2):
        fail(name, "inputs must be (D,) or (N, D)", a, b)
    t = _sign_target(name, target, a)
    if tuple(t.shape) != tuple(a.shape[:-1]):
        fail(name, f"target must have shape {format_shape(a.shape[:-1])}", a, t)
    axis = a.ndim - 1
    dot = rg.sum(a * b, axis=axis)
    mag = (rg.sum(a * a, axis=axis) + _MAG_EPS) * (rg.sum(b * b, axis=axis) + _MAG_EPS)
    cos = dot / rg.sqrt(mag)
    per = rg.where(t == 1, 1.0 - cos, 0.0) + rg.where(t == -1, rg.relu(cos - margin), 0.0)
    return reduce_loss(per, reduction, name)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last axis (``F.pairwise_distance``).

    >>> a = rg.input((4, 3), name="a")
    >>> pairwise_distance(a, a).shape
    (4,)
    """
    d = x1 - x2 + eps
    axis = d.ndim - 1
    if p == 2:
        return rg.sqrt(rg.sum(rg.square(d), axis=axis))
    if p == 1:
        return rg.sum(rg.abs(d), axis=axis)
    if p <= 0:
        fail("pairwise_distance", f"p must be > 0, got {p}", x1, x2)
    return rg.sum(rg.abs(d) ** float(p), axis=axis) ** (1.0 / p)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                        swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with the p-norm distance (``F.triplet_margin_loss``).

    ``swap=True`` uses ``min(d(a, n), d(p, n))`` as the negative distance (Balntas et al.).

    >>> a, p, n = (rg.input((1, 2), "float64", name=k) for k in "apn")
    >>> float(rg.evaluate(triplet_margin_loss(a, p, n, eps=0.0), {a: [[0.0, 0.0]], p: [[0.0, 1.0]], n: [[0.0, 1.5]]}))
    0.5
    """
    name = "triplet_margin_loss"
    a = as_float(name, anchor)
    pos = as_float(name, positive, a, "positive")
    neg = as_float(name, negative, a, "negative")
    same_shape(name, a, pos, "anchor and positive")
    same_shape(name, a, neg, "anchor and negative")
    if a.ndim not in (1, 2):
        fail(name, "inputs must be (D,) or (N, D)", a)
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = rg.minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return reduce_loss(rg.relu(margin + d_pos - d_neg), reduction, name)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``: rank ``x1`` above ``x2`` where ``y = 1`` (``F.margin_ranking_loss``).

    >>> a, b = rg.input((2,), "float64", name="a"), rg.input((2,), "float64", name="b")
    >>> rg.evaluate(margin_ranking_loss(a, b, np.array([1.0, -1.0]), reduction="none"), {a: [2.0, 2.0], b: [1.0, 1.0]})
    array([0., 1.])
    """
    name = "margin_ranking_loss"
    a = as_float(name, input1)
    b = as_float(name, input2, a, "input2")
    same_shape(name, a, b, "input1 and input2")
    t = as_float(name, target, a, "target")
    same_shape(name, a, t, "inputs and target")
    return reduce_loss(rg.relu(-t * (a - b) + margin), reduction, name)
