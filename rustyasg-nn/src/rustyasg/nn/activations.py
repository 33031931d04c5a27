"""Activation functions and their module forms (``relu`` / ``ReLU`` ...).

The functions map onto core ops (so backends fuse them); the module classes are
generated from one table, each holding its hyper-parameters as attributes with
PyTorch's names and defaults.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import GELU, gelu
    >>> x = rg.input((2, 3), name="x")
    >>> GELU(approximate="tanh")(x).op, gelu(x).op
    ('gelu_tanh', 'gelu')
"""

from __future__ import annotations

import rustyasg.core as rg
from rustyasg.core import Tensor

from .module import Module


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``."""
    return rg.relu(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, else ``negative_slope * x``."""
    return rg.leaky_relu(x, negative_slope=negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU: exact ``x * Phi(x)`` (``approximate="none"``) or the tanh approximation (``"tanh"``)."""
    if approximate == "none":
        return rg.gelu(x)
    if approximate == "tanh":
        return rg.gelu_tanh(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: Tensor) -> Tensor:
    """SiLU / Swish: ``x * sigmoid(x)``."""
    return rg.silu(x)


swish = silu


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return rg.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid."""
    return rg.sigmoid(x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` where positive, else ``alpha * (exp(x) - 1)``."""
    return rg.elu(x, alpha=alpha)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold`` (as PyTorch)."""
    return rg.softplus(x, beta=beta, threshold=threshold)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax along ``dim``."""
    return rg.softmax(x, axis=dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably."""
    return rg.log_softmax(x, axis=dim)


def _activation_class(name: str, fn, params: dict, doc: str):
    """A Module class whose constructor takes ``params`` (name -> default) and calls ``fn``."""
    names = tuple(params)

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        if len(args) > len(names):
            raise TypeError(f"{name} takes at most {len(names)} positional argument(s), got {len(args)}")
        values = dict(params)
        values.update(zip(names, args))
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"{name}: unexpected argument(s) {sorted(unknown)}; takes {list(names) or 'none'}")
        values.update(kwargs)
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def forward(self, x):
        return fn(x, **{k: getattr(self, k) for k in names})

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in names)

    cls = type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                 "__doc__": doc, "__module__": __name__})
    return cls


# name, function, constructor parameters with PyTorch's defaults
_TABLE = (
    ("ReLU", relu, {}),
    ("LeakyReLU", leaky_relu, {"negative_slope": 0.01}),
    ("GELU", gelu, {"approximate": "none"}),
    ("SiLU", silu, {}),
    ("Tanh", tanh, {}),
    ("Sigmoid", sigmoid, {}),
    ("ELU", elu, {"alpha": 1.0}),
    ("Softplus", softplus, {"beta": 1.0, "threshold": 20.0}),
    ("Softmax", softmax, {"dim": -1}),
    ("LogSoftmax", log_softmax, {"dim": -1}),
)

for _name, _fn, _params in _TABLE:
    _sig = ", ".join(f"{k}={v!r}" for k, v in _params.items())
    globals()[_name] = _activation_class(
        _name, _fn, _params,
        f"Module form of :func:`{_fn.__name__}`: ``{_name}({_sig})``.\n\n"
        f"    >>> import rustyasg.core as rg\n"
        f"    >>> {_name}()(rg.input((2, 3), name='x')).shape\n"
        f"    (2, 3)\n")
Swish = globals()["SiLU"]

ACTIVATIONS = {"relu": relu, "leaky_relu": leaky_relu, "gelu": gelu, "gelu_tanh": lambda x: gelu(x, "tanh"),
               "silu": silu, "swish": silu, "tanh": tanh, "sigmoid": sigmoid, "elu": elu, "softplus": softplus}
# Hugging Face's names (config.json "hidden_act" / "activation_function") for the same functions
ACTIVATIONS.update({"gelu_new": ACTIVATIONS["gelu_tanh"], "gelu_pytorch_tanh": ACTIVATIONS["gelu_tanh"],
                    "gelu_fast": ACTIVATIONS["gelu_tanh"]})


def get_activation(act) -> callable:
    """An activation by name (``"relu"``, ``"gelu"``, ...) or a callable passed through.

    >>> get_activation("gelu").__name__
    'gelu'
    """
    if callable(act):
        return act
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; known: {sorted(ACTIVATIONS)}") from None


__all__ = ["relu", "leaky_relu", "gelu", "silu", "swish", "tanh", "sigmoid", "elu", "softplus", "softmax",
           "log_softmax", "get_activation", "Swish"] + [row[0] for row in _TABLE]
