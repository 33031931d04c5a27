"""Elementwise functions PyTorch defines in terms of other elementwise ops.

``lerp``, ``isclose``, ``nan_to_num``, ``div(rounding_mode=...)``, ``remainder`` and ``round(decimals=...)``
are a few core ops each: they fuse on every backend and differentiate through their parts.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> a = rg.constant(np.array([7.0, -7.0], np.float32))
    >>> rg.div(a, 2.0, rounding_mode="trunc").numpy(), rg.div(a, 2.0, rounding_mode="floor").numpy()
    (array([ 3., -3.], dtype=float32), array([ 3., -4.], dtype=float32))
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import dtypes
from .builders import builder
from .graph import Tensor, as_tensor, constant
from .ops import elementwise as ew
from .ops import elementwise_math as em

__all__ = ["div", "divide", "true_divide", "remainder", "lerp", "isclose", "nan_to_num", "round"]


def _pair(a, b):
    from .graph import _promote

    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    if like is None:
        raise TypeError("needs at least one tensor operand")
    return _promote([as_tensor(a, like), as_tensor(b, like)])


@builder()
def div(a, b, rounding_mode: Optional[str] = None) -> Tensor:
    """``a / b`` (``torch.div``): true division, or rounded toward zero (``'trunc'``) or down (``'floor'``).

    Integer operands stay integers with a rounding mode (exactly, as PyTorch); true division of
    integers is a float division.
    """
    a, b = _pair(a, b)
    if rounding_mode is None:
        if a.dtype.kind in "iub":
            a, b = a.astype(dtypes.DEFAULT_FLOAT), b.astype(dtypes.DEFAULT_FLOAT)
        return ew.div(a, b)
    if a.dtype == dtypes.bool_:
        raise TypeError("div with a rounding mode needs numeric operands, got bool; cast them first")
    if rounding_mode == "floor":  # Python's //, also for floats (inf // 1 is NaN, 1 // -inf is -1)
        return ew.floor_divide(a, b)
    if rounding_mode == "trunc":
        if dtypes.is_floating(a.dtype):
            return em.trunc(ew.div(a, b))
        return ew.floor_divide(a - em.fmod(a, b), b)  # exact: a - fmod(a, b) is a multiple of b
    raise ValueError(f"rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


divide = true_divide = div


@builder()
def remainder(a, b) -> Tensor:
    """Python's ``%``: the remainder with the sign of the divisor (``torch.remainder``)."""
    return ew.mod(*_pair(a, b))


@builder()
def lerp(start, end, weight) -> Tensor:
    """``start + weight * (end - start)``, computed from the nearer end as PyTorch does (exact at 0 and 1).

    >>> import rustyasg.core as rg
    >>> rg.lerp(rg.constant(1.0), rg.constant(3.0), 0.25).item()
    1.5
    """
    start, end = _pair(start, end)
    weight = as_tensor(weight, start)
    diff = end - start
    return ew.where(abs(weight) < 0.5, start + weight * diff, end - diff * (1.0 - weight))


@builder()
def isclose(a, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """``|a - b| <= atol + rtol * |b|`` elementwise (``torch.isclose``); infinities are close only to themselves."""
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    a, b = _pair(a, b)
    same = a == b
    if a.dtype.kind in "iub":
        a, b = a.astype(dtypes.float64), b.astype(dtypes.float64)
    finite = ew.logical_and(em.isfinite(a), em.isfinite(b))
    close = ew.logical_or(same, ew.logical_and(finite, abs(a - b) <= atol + rtol * abs(b)))
    if equal_nan:
        close = ew.logical_or(close, ew.logical_and(ew.isnan(a), ew.isnan(b)))
    return close


@builder()
def nan_to_num(x, nan: float = 0.0, posinf: Optional[float] = None, neginf: Optional[float] = None) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (default: the dtype's extremes).

    The gradient flows where ``x`` is finite, as in PyTorch.
    """
    x = as_tensor(x)
    if not dtypes.is_floating(x.dtype):
        return x
    info = np.finfo(x.dtype)
    posinf = float(info.max) if posinf is None else float(posinf)
    neginf = float(info.min) if neginf is None else float(neginf)
    big = ew.where(x > 0.0, constant(posinf, x.dtype), constant(neginf, x.dtype))
    return ew.where(em.isfinite(x), x, ew.where(ew.isnan(x), float(nan), big))


@builder()
def round(x, decimals: int = 0) -> Tensor:  # noqa: A001 - PyTorch's name
    """Round half to even (``torch.round``); with ``decimals``, to that many decimal places."""
    x = as_tensor(x)
    if decimals == 0 or not dtypes.is_floating(x.dtype):
        return ew.round(x)
    scale = 10.0 ** int(decimals)
    return ew.round(x * scale) / scale
