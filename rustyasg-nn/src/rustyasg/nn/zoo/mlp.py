"""``MLP``: a stack of Linear layers with an activation (and optional dropout) between them.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import MLP
    >>> net = MLP(784, [128, 64], 10, activation="gelu", dropout=0.1)
    >>> net(rg.input((None, 784), name="x")).shape
    (Dim(x.0), 10)
    >>> list(net.state_dict())[:4]
    ['0.weight', '0.bias', '3.weight', '3.bias']
"""

from __future__ import annotations

from typing import Sequence

from ..activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Tanh
from ..containers import Sequential
from ..dropout import Dropout
from ..linear import Linear

_ACTIVATION_MODULES = {"relu": ReLU, "gelu": GELU, "tanh": Tanh, "sigmoid": Sigmoid, "silu": SiLU,
                       "swish": SiLU, "elu": ELU, "leaky_relu": LeakyReLU}


class MLP(Sequential):
    """``Linear -> activation [-> Dropout]`` for each hidden width, then a final ``Linear``.

    Children are numbered like the equivalent ``torch.nn.Sequential``, so state dicts match it.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, activation: str = "relu",
                 dropout: float = 0.0, bias: bool = True, dtype="float32"):
        if activation not in _ACTIVATION_MODULES:
            raise ValueError(f"MLP: unknown activation {activation!r}; known: {sorted(_ACTIVATION_MODULES)}")
        layers, width = [], in_features
        for h in hidden:
            layers += [Linear(width, h, bias=bias, dtype=dtype), _ACTIVATION_MODULES[activation]()]
            if dropout > 0:
                layers.append(Dropout(dropout))
            width = h
        layers.append(Linear(width, out_features, bias=bias, dtype=dtype))
        super().__init__(*layers)
