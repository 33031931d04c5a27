"""Classification losses: cross entropy (class indices or probabilities, label
smoothing, class weights, ``ignore_index``), NLL, binary cross entropy (on
probabilities and on logits with ``pos_weight``), KL divergence and the sigmoid
focal loss. Formulas, defaults and weighted means follow PyTorch (and
torchvision for the focal loss).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.losses import cross_entropy
    >>> logits = rg.input((2, 3), "float64", name="logits")
    >>> labels = rg.input((2,), "int64", name="labels")
    >>> loss = cross_entropy(logits, labels, label_smoothing=0.1)
    >>> round(float(rg.evaluate(loss, {logits: np.zeros((2, 3)), labels: [0, 2]})), 6)
    1.098612
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.shapes import format_shape, same_shape as same_shape_dims

from ._common import along, as_float, as_index, check_reduction, class_weight, fail, reduce_loss, same_shape


def _class_axis(loss: str, x: Tensor) -> int:
    if x.ndim == 0:
        fail(loss, "input needs a class axis: (C,), (N, C) or (N, C, d1, ...)", x)
    return 0 if x.ndim == 1 else 1


def _pick(loss: str, logp: Tensor, target, weight, ignore_index: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-element ``-w[t] * logp[t]`` (zero where ignored), the weights ``w[t]`` and the valid mask."""
    axis = _class_axis(loss, logp)
    t = as_index(loss, target)
    expected = logp.shape[:axis] + logp.shape[axis + 1:]
    if not same_shape_dims(t.shape, expected):
        fail(loss, f"target of class indices must have shape {format_shape(expected)} for input "
                   f"{format_shape(logp.shape)} (classes on axis {axis})", logp, t)
    valid = t != ignore_index
    safe = rg.where(valid, t, 0)  # ignored rows gather class 0, then get weight 0
    picked = rg.squeeze(rg.gather(logp, rg.unsqueeze(safe, axis), axis=axis), axis)
    if tuple(picked.shape) != tuple(expected):
        # Two None batch dims were taken as one size; broadcasting checks it when the call's shapes are known
        # (gather alone would quietly read fewer rows than the input has).
        picked = rg.broadcast_to(picked, shape=expected)
    mask = valid.astype(logp.dtype)
    w = mask if weight is None else rg.take(class_weight(loss, weight, logp.shape[axis], logp), safe) * mask
    return -picked * w, w, mask


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Negative log-likelihood of class indices given log-probabilities (``F.nll_loss``).

    ``input`` is (C,), (N, C) or (N, C, d1, ...); ``target`` holds class indices shaped like
    ``input`` without the class axis. The mean is weighted: ``sum(w[t] * l) / sum(w[t])``
    over entries whose target is not ``ignore_index``.

    >>> logp, y = rg.input((2, 3), "float64", name="logp"), rg.input((2,), "int64", name="y")
    >>> round(float(rg.evaluate(nll_loss(logp, y), {logp: np.log(np.full((2, 3), 0.25)), y: [0, 2]})), 4)
    1.3863
    """
    check_reduction("nll_loss", reduction)
    logp = as_float("nll_loss", input)
    per, w, _ = _pick("nll_loss", logp, target, weight, ignore_index)
    if reduction == "mean":
        return rg.sum(per) / rg.sum(w)
    return reduce_loss(per, reduction, "nll_loss")


def _prob_target_ce(x, logp, target, weight, reduction, label_smoothing, axis):
    t = as_float("cross_entropy", target, x, "target")
    same_shape("cross_entropy", x, t, "input and probability target")
    n_classes = x.shape[axis]
    if label_smoothing > 0:
        t = t * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = logp * t
    if weight is not None:
        prod = prod * along(class_weight("cross_entropy", weight, n_classes, x), axis, x.ndim)
    if reduction == "none":
        return -rg.sum(prod, axis=axis)
    total = -rg.sum(prod)
    if reduction == "sum":
        return total
    others = tuple(i for i in range(x.ndim) if i != axis)
    return total / rg.dim_size(x, axis=others, dtype=x.dtype) if others else total


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",  # noqa: A002
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross entropy of logits (``F.cross_entropy``).

    - ``input``: logits (C,), (N, C) or (N, C, d1, ...), classes on axis 1 (0 for 1-D).
    - ``target``: integer class indices (shaped like ``input`` without the class axis), or
      floating class probabilities shaped like ``input``.
    - ``weight``: per-class weights (C,); ``ignore_index`` (index targets only) contributes nothing.
    - ``label_smoothing`` in [0, 1]: mixes the target with the uniform distribution.

    >>> x, y = rg.input((2, 3), "float64", name="x"), rg.input((2,), "int64", name="y")
    >>> round(float(rg.evaluate(cross_entropy(x, y, ignore_index=2), {x: np.zeros((2, 3)), y: [0, 2]})), 4)
    1.0986
    """
    check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        fail("cross_entropy", f"label_smoothing must be in [0, 1], got {label_smoothing}")
    x = as_float("cross_entropy", input)
    axis = _class_axis("cross_entropy", x)
    logp = rg.log_softmax(x, axis=axis)
    if _holds_floats(target):
        return _prob_target_ce(x, logp, target, weight, reduction, label_smoothing, axis)
    per, w, mask = _pick("cross_entropy", logp, target, weight, ignore_index)
    if label_smoothing > 0:
        n_classes = x.shape[axis]
        wl = logp if weight is None else logp * along(class_weight("cross_entropy", weight, n_classes, x), axis, x.ndim)
        smooth = -rg.sum(wl, axis=axis) * mask
        per = (1.0 - label_smoothing) * per + (label_smoothing / n_classes) * smooth
    if reduction == "mean":
        return rg.sum(per) / rg.sum(w)
    return reduce_loss(per, reduction, "cross_entropy")


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Binary cross entropy of probabilities in [0, 1] (``F.binary_cross_entropy``).

    Each log is clamped at -100, as PyTorch does, so saturated probabilities give a finite loss.

    >>> p, t = rg.input((2,), "float64", name="p"), rg.input((2,), "float64", name="t")
    >>> round(float(rg.evaluate(binary_cross_entropy(p, t), {p: [0.5, 0.5], t: [1.0, 0.0]})), 4)
    0.6931
    """
    x = as_float("binary_cross_entropy", input)
    t = as_float("binary_cross_entropy", target, x, "target")
    same_shape("binary_cross_entropy", x, t)
    per = (t - 1.0) * rg.clamp(rg.log1p(-x), min=-100.0) - t * rg.clamp(rg.log(x), min=-100.0)
    if weight is not None:
        per = per * as_float("binary_cross_entropy", weight, x, "weight")
    return reduce_loss(per, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",  # noqa: A002
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross entropy in one stable expression (``F.binary_cross_entropy_with_logits``).

    ``loss = (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)``; ``pos_weight`` (broadcast along the
    last axis, one entry per class) scales the positive term.

    >>> x, t = rg.input((2,), "float64", name="x"), rg.input((2,), "float64", name="t")
    >>> loss = binary_cross_entropy_with_logits(x, t, pos_weight=np.array([3.0, 3.0]), reduction="none")
    >>> np.round(rg.evaluate(loss, {x: [0.0, 0.0], t: [1.0, 0.0]}), 4)
    array([2.0794, 0.6931])
    """
    x = as_float("binary_cross_entropy_with_logits", input)
    t = as_float("binary_cross_entropy_with_logits", target, x, "target")
    same_shape("binary_cross_entropy_with_logits", x, t)
    neg_log_sigmoid = rg.softplus(-x)
    if pos_weight is not None:
        pw = as_float("binary_cross_entropy_with_logits", pos_weight, x, "pos_weight")
        neg_log_sigmoid = neg_log_sigmoid * ((pw - 1.0) * t + 1.0)
    per = (1.0 - t) * x + neg_log_sigmoid
    if weight is not None:
        per = per * as_float("binary_cross_entropy_with_logits", weight, x, "weight")
    return reduce_loss(per, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Tensor:  # noqa: A002
    """KL divergence ``target * (log target - input)`` with ``input`` in log space (``F.kl_div``).

    ``log_target=True`` takes the target in log space too. ``reduction='batchmean'`` divides
    the sum by the batch size (the mathematically correct KL); ``'mean'`` averages every element.

    >>> logq, p = rg.input((2,), "float64", name="logq"), rg.input((2,), "float64", name="p")
    >>> float(rg.evaluate(kl_div(logq, p, reduction="sum"), {logq: np.log([0.5, 0.5]), p: [0.5, 0.5]}))
    0.0
    """
    check_reduction("kl_div", reduction, ("mean", "batchmean", "sum", "none"))
    x = as_float("kl_div", input)
    t = as_float("kl_div", target, x, "target")
    same_shape("kl_div", x, t)
    if log_target:
        per = rg.exp(t) * (t - x)
    else:
        per = t * rg.log(rg.where(t > 0, t, 1.0)) - t * x  # xlogy(t, t): 0 where t == 0
    if reduction == "batchmean":
        return rg.sum(per) / rg.dim_size(x, axis=(0,), dtype=x.dtype) if x.ndim else rg.sum(per)
    return reduce_loss(per, reduction, "kl_div")


def sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "none") -> Tensor:
    """Focal loss of RetinaNet on logits (``torchvision.ops.sigmoid_focal_loss``, same defaults).

    ``alpha_t * (1 - p_t) ** gamma * BCEWithLogits``; a negative ``alpha`` disables the weighting.

    >>> x, t = rg.input((2,), "float64", name="x"), rg.input((2,), "float64", name="t")
    >>> np.round(rg.evaluate(sigmoid_focal_loss(x, t), {x: [0.0, 0.0], t: [1.0, 0.0]}), 4)
    array([0.0433, 0.13  ])
    """
    check_reduction("sigmoid_focal_loss", reduction)
    if gamma < 0:
        fail("sigmoid_focal_loss", f"gamma must be >= 0, got {gamma}")
    x = as_float("sigmoid_focal_loss", inputs)
    t = as_float("sigmoid_focal_loss", targets, x, "targets")
    same_shape("sigmoid_focal_loss", x, t, "inputs and targets")
    p = rg.sigmoid(x)
    loss = binary_cross_entropy_with_logits(x, t, reduction="none")
    if gamma != 0:
        p_t = p * t + (1.0 - p) * (1.0 - t)
        loss = loss * (1.0 - p_t) ** float(gamma)
    if alpha >= 0:
        loss = (alpha * t + (1.0 - alpha) * (1.0 - t)) * loss
    return reduce_loss(loss, reduction, "sigmoid_focal_loss")


def _holds_floats(value) -> bool:
    """Probability targets are floating; class indices are integers."""
    dtype = value.dtype if isinstance(value, Tensor) else np.asarray(value).dtype
    return dtype.kind == "f"
