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


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    return rg.celu(x, alpha)


def selu(x: Tensor) -> Tensor:
    """Scaled ELU with the self-normalising constants."""
    return rg.selu(x)


def hardsigmoid(x: Tensor) -> Tensor:
    """``clamp(x / 6 + 1/2, 0, 1)``."""
    return rg.hardsigmoid(x)


def hardswish(x: Tensor) -> Tensor:
    """``x * clamp(x + 3, 0, 6) / 6``."""
    return rg.hardswish(x)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``clamp(x, min_val, max_val)``; gradient 0 on the bounds, as PyTorch's."""
    return rg.hardtanh(x, min_val, max_val)


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return rg.relu6(x)


def logsigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x))``, stable."""
    return rg.logsigmoid(x)


def mish(x: Tensor) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return rg.mish(x)


def softsign(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return rg.softsign(x)


def tanhshrink(x: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return rg.tanhshrink(x)


def softmin(x: Tensor, dim: int = -1) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    return rg.softmin(x, dim)


def glu(x: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: halves ``a, b`` of ``x`` along ``dim``, ``a * sigmoid(b)``."""
    return rg.glu(x, dim)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, else ``weight * x`` (one weight, or one per channel of axis 1)."""
    return rg.prelu(x, weight)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``."""
    return rg.normalize(x, p, dim, eps)


class PReLU(Module):
    """``x`` where positive, else ``weight * x`` with a learned ``weight``: one value shared by every
    channel (``num_parameters=1``) or one per channel (axis 1), initialised to ``init`` as torch.nn.PReLU.

    >>> import rustyasg.core as rg
    >>> layer = PReLU(3)
    >>> list(layer.state_dict()), layer(rg.input((2, 3, 4), name="x")).shape
    (['weight'], (2, 3, 4))
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype="float32"):
        super().__init__()
        import numpy as np

        self.num_parameters = num_parameters
        self.weight = rg.variable(np.full((num_parameters,), init, dtype=dtype), name="weight")

    def forward(self, x: Tensor) -> Tensor:
        return prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


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
    ("CELU", celu, {"alpha": 1.0}),
    ("SELU", selu, {}),
    ("Hardsigmoid", hardsigmoid, {}),
    ("Hardswish", hardswish, {}),
    ("Hardtanh", hardtanh, {"min_val": -1.0, "max_val": 1.0}),
    ("ReLU6", relu6, {}),
    ("LogSigmoid", logsigmoid, {}),
    ("Mish", mish, {}),
    ("Softsign", softsign, {}),
    ("Tanhshrink", tanhshrink, {}),
    ("Softmin", softmin, {"dim": -1}),
    ("GLU", glu, {"dim": -1}),
)

for _name, _fn, _params in _TABLE:
    _sig = ", ".join(f"{k}={v!r}" for k, v in _params.items())
    globals()[_name] = _activation_class(
        _name, _fn, _params,
        f"Module form of :func:`{_fn.__name__}`: ``{_name}({_sig})``.\n\n"
        f"    >>> import rustyasg.core as rg\n"
        f"    >>> {_name}()(rg.input((2, 4), name='x')).shape\n"
        f"    {'(2, 2)' if _name == 'GLU' else '(2, 4)'}\n")  # GLU halves its last axis
Swish = globals()["SiLU"]

ACTIVATIONS = {"relu": relu, "leaky_relu": leaky_relu, "gelu": gelu, "gelu_tanh": lambda x: gelu(x, "tanh"),
               "silu": silu, "swish": silu, "tanh": tanh, "sigmoid": sigmoid, "elu": elu, "softplus": softplus,
               "celu": celu, "selu": selu, "hardsigmoid": hardsigmoid, "hardswish": hardswish, "hardtanh": hardtanh,
               "relu6": relu6, "logsigmoid": logsigmoid, "mish": mish, "softsign": softsign, "tanhshrink": tanhshrink,
               "quick_gelu": rg.quick_gelu}
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
           "log_softmax", "get_activation", "Swish", "celu", "selu", "hardsigmoid", "hardswish", "hardtanh", "relu6",
           "logsigmoid", "mish", "softsign", "tanhshrink", "softmin", "glu", "prelu", "normalize",
           "PReLU"] + [row[0] for row in _TABLE]
