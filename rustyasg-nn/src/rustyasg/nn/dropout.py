"""Dropout layers: element-wise (``Dropout``) and channel-wise (``Dropout2d`` / ``SpatialDropout``).

Masks come from the module's :class:`rustyasg.core.RNG` (``Module.rng``; share one
per model with ``model.set_rng(seed)``), whose state advances on every compiled
call, so each step draws a fresh mask. In eval mode the layers are the identity.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import Dropout
    >>> d = Dropout(0.5)
    >>> x = rg.input((None, 8), name="x")
    >>> d(x).op, d.eval()(x).op
    ('where', 'input')
"""

from __future__ import annotations

import rustyasg.core as rg
from rustyasg.core import Tensor

from ._checks import check_rank
from .module import Module


def _check_p(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    return float(p)


def _without_mask(name: str, x: Tensor, p: float, training: bool, rng) -> Tensor | None:
    """The result when no mask is drawn (eval mode, ``p`` 0 or 1), else None after checking that ``rng`` is set."""
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    if rng is None:
        raise ValueError(f"{name} in training mode needs an rng (rustyasg.core.RNG)")
    return None


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: rg.RNG = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale survivors by ``1/(1-p)``.

    >>> dropout(rg.input((3,), name="x"), 0.2, training=False).op
    'input'
    """
    p = _check_p(p)
    trivial = _without_mask("dropout", x, p, training, rng)
    if trivial is not None:
        return trivial
    return rng.dropout(x, p)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, rng: rg.RNG = None) -> Tensor:
    """Channel dropout for ``(N, C, H, W)`` (or ``(C, H, W)``): whole feature maps are zeroed.

    >>> dropout2d(rg.input((2, 3, 4, 4), name="x"), 0.5, training=False).op
    'input'
    """
    check_rank("dropout2d", x, (3, 4))
    p = _check_p(p)
    trivial = _without_mask("dropout2d", x, p, training, rng)
    if trivial is not None:
        return trivial
    mask_shape = x.shape[:-2] + (1, 1)
    keep = rng.uniform(mask_shape, dtype=x.dtype) >= p
    return rg.where(keep, x * (1.0 / (1.0 - p)), 0.0)


class _DropoutLayer(Module):
    """A dropout module: applies its functional form ``_function`` with probability ``p``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = _check_p(p)

    def forward(self, x: Tensor) -> Tensor:
        return self._function(x, self.p, self.training, self.rng if self.training and self.p > 0 else None)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout(_DropoutLayer):
    """Element-wise dropout in training mode; identity in eval mode."""

    _function = staticmethod(dropout)


class Dropout2d(_DropoutLayer):
    """Spatial (channel-wise) dropout of ``(N, C, H, W)`` inputs, as ``torch.nn.Dropout2d``."""

    _function = staticmethod(dropout2d)


SpatialDropout = Dropout2d
