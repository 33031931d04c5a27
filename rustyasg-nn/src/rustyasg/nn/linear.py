"""Dense layers and shape helpers: ``Linear``, ``Identity``, ``Flatten`` (and ``linear``).

Weights use PyTorch's layout, ``weight`` of shape ``(out_features, in_features)``,
so state dicts load unchanged.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import Linear
    >>> Linear(4, 3)(rg.input((None, 7, 4), name="x")).shape
    (Dim(x.0), 7, 3)
"""

from __future__ import annotations

from typing import Optional

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import shape_error
from .module import Module


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``x @ weight.T + bias`` over the last axis of ``x`` (``weight`` is ``(out, in)``).

    Leading axes are merged first so the product is one 2-D matmul whose weight
    gradient needs no batch reduction.

    >>> x, w = rg.input((2, 5, 4), name="x"), rg.input((3, 4), name="w")
    >>> linear(x, w).shape
    (2, 5, 3)
    """
    if x.ndim == 0 or x.shape[-1] != weight.shape[-1]:
        raise shape_error("linear", f"input features {x.shape[-1] if x.ndim else '()'} do not match "
                          f"weight in_features {weight.shape[-1]}", x, weight)
    lead = x.shape[:-1]
    flat = x.reshape((-1, x.shape[-1])) if x.ndim != 2 else x
    y = rg.matmul(flat, weight.T)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (weight.shape[0],)) if x.ndim != 2 else y


class Linear(Module):
    """``y = x @ weight.T + bias``, PyTorch's default init (``U(-1/sqrt(in), 1/sqrt(in))``).

    >>> layer = Linear(4, 3, bias=False)
    >>> list(layer.state_dict())
    ['weight']
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype="float32"):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = rg.variable(init.kaiming_uniform((out_features, in_features), a=5 ** 0.5, dtype=dtype),
                                  name="weight")
        self.register_parameter("bias", init.fan_in_uniform((out_features,), in_features, dtype=dtype)
                                if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a removed head).

    >>> Identity()(rg.input((2,), name="x")).op
    'input'
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` (PyTorch's defaults keep the batch axis).

    >>> Flatten()(rg.input((None, 3, 4, 5), name="x")).shape
    (Dim(x.0), 60)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return rg.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
