"""Regression losses: MSE, L1, SmoothL1 and Huber (PyTorch's formulas and defaults).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.losses import mse_loss
    >>> x, y = rg.input((3,), "float64", name="x"), rg.input((3,), "float64", name="y")
    >>> float(rg.evaluate(mse_loss(x, y), {x: [1.0, 2.0, 3.0], y: [1.0, 2.0, 5.0]}))
    1.3333333333333333
"""

from __future__ import annotations

import rustyasg.core as rg
from rustyasg.core import Tensor

from ._common import as_float, fail, reduce_loss, same_shape


def _difference(loss: str, input, target) -> Tensor:
    x = as_float(loss, input)
    t = as_float(loss, target, x, "target")
    same_shape(loss, x, t)
    return x - t


def mse_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002 - PyTorch's names
    """Squared error ``(input - target) ** 2``, reduced (``torch.nn.functional.mse_loss``).

    >>> x, t = rg.input((2,), "float64", name="x"), rg.input((2,), "float64", name="t")
    >>> float(rg.evaluate(mse_loss(x, t), {x: [0.0, 3.0], t: [1.0, 1.0]}))
    2.5
    """
    return reduce_loss(rg.square(_difference("mse_loss", input, target)), reduction, "mse_loss")


def l1_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Absolute error ``|input - target|``, reduced (``F.l1_loss``).

    >>> x, t = rg.input((2,), "float64", name="x"), rg.input((2,), "float64", name="t")
    >>> float(rg.evaluate(l1_loss(x, t), {x: [0.0, 3.0], t: [1.0, 1.0]}))
    1.5
    """
    return reduce_loss(rg.abs(_difference("l1_loss", input, target)), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:  # noqa: A002
    """Quadratic below ``beta``, linear above: ``0.5 d**2 / beta`` or ``|d| - 0.5 beta`` (``F.smooth_l1_loss``).

    ``beta = 0`` is exactly the L1 loss, as in PyTorch.

    >>> x, t = rg.input((2,), "float64", name="x"), rg.input((2,), "float64", name="t")
    >>> rg.evaluate(smooth_l1_loss(x, t, reduction="none"), {x: [0.0, 3.0], t: [1.0, 1.0]})
    array([0.5, 1.5])
    """
    if beta < 0:
        fail("smooth_l1_loss", f"beta must be >= 0, got {beta}")
    d = _difference("smooth_l1_loss", input, target)
    a = rg.abs(d)
    per = a if beta == 0 else rg.where(a < beta, rg.square(d) * (0.5 / beta), a - 0.5 * beta)
    return reduce_loss(per, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """Quadratic below ``delta``, linear above: ``0.5 d**2`` or ``delta (|d| - 0.5 delta)`` (``F.huber_loss``).

    >>> x, t = rg.input((2,), "float64", name="x"), rg.input((2,), "float64", name="t")
    >>> rg.evaluate(huber_loss(x, t, reduction="none", delta=0.5), {x: [0.0, 3.0], t: [0.2, 1.0]})
    array([0.02 , 0.875])
    """
    if delta <= 0:
        fail("huber_loss", f"delta must be > 0, got {delta}")
    d = _difference("huber_loss", input, target)
    a = rg.abs(d)
    per = rg.where(a < delta, 0.5 * rg.square(d), delta * (a - 0.5 * delta))
    return reduce_loss(per, reduction, "huber_loss")
