"""Seeded weight initializers, computed on the host with numpy.

Each initializer takes a shape and returns a numpy array drawn from the same
distribution as PyTorch's ``torch.nn.init`` function of that name (fans and
gains follow ``torch.nn.init._calculate_fan_in_and_fan_out`` and
``calculate_gain``). The exact numbers cannot match torch's generator; parity
tests copy weights from torch instead. The trailing-underscore forms
(``xavier_uniform_(var)``) re-initialise a variable in place, as in PyTorch.

Draws come from ``generator`` if given, else from a module-wide
``np.random.Generator`` that :func:`manual_seed` resets.

Example:
    >>> from rustyasg.nn import init
    >>> init.manual_seed(0)
    >>> w = init.kaiming_uniform((4, 3), a=5 ** 0.5)
    >>> bool(abs(w).max() <= 1 / 3 ** 0.5)
    True
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

import rustyasg.core as rg

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset the default generator used by every initializer (and so by layer constructors).

    >>> manual_seed(1); a = uniform((2,)); manual_seed(1); bool((a == uniform((2,))).all())
    True
    """
    global _generator
    _generator = np.random.default_rng(int(seed))


def _on_core_seed(seed: int) -> None:
    manual_seed(seed)


rg.seeding.on_manual_seed(_on_core_seed)  # rg.manual_seed(s) seeds the initializers too


def default_generator() -> np.random.Generator:
    """The generator initializers draw from when none is passed."""
    return _generator


def _gen(generator: Optional[np.random.Generator]) -> np.random.Generator:
    return _generator if generator is None else generator


def fan_in_and_fan_out(shape: Sequence[int]):
    """PyTorch's fans: ``fan_in = shape[1] * receptive``, ``fan_out = shape[0] * receptive``.

    >>> fan_in_and_fan_out((8, 3, 5, 5))
    (75, 200)
    """
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor of rank >= 2, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``).

    >>> round(calculate_gain("relu"), 4)
    1.4142
    """
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fan(shape, mode: str) -> int:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


_skipping = [0]  # > 0 inside skip_init(): random draws are replaced by zeros


class skip_init:
    """Within this context, random initializers return zeros instead of drawing (no time spent).

    For models whose weights are about to be overwritten by a checkpoint, as
    ``transformers``' ``no_init_weights``; the default generator is left untouched.

    >>> with skip_init():
    ...     normal((2,)).tolist()
    [0.0, 0.0]
    """

    def __enter__(self):
        _skipping[0] += 1
        return self

    def __exit__(self, *exc):
        _skipping[0] -= 1
        return False


def uniform(shape, a: float = 0.0, b: float = 1.0, *, generator=None, dtype="float32") -> np.ndarray:
    """Uniform on ``[a, b)``."""
    if _skipping[0]:
        return np.zeros(tuple(shape), dtype)
    return _gen(generator).uniform(a, b, size=tuple(shape)).astype(dtype)


def normal(shape, mean: float = 0.0, std: float = 1.0, *, generator=None, dtype="float32") -> np.ndarray:
    """Normal with ``mean`` and ``std``."""
    if _skipping[0]:
        return np.zeros(tuple(shape), dtype)
    return _gen(generator).normal(mean, std, size=tuple(shape)).astype(dtype)


def zeros(shape, *, generator=None, dtype="float32") -> np.ndarray:
    """All zeros (``generator`` is accepted for a uniform signature)."""
    return np.zeros(tuple(shape), dtype)


def ones(shape, *, generator=None, dtype="float32") -> np.ndarray:
    """All ones."""
    return np.ones(tuple(shape), dtype)


def constant(shape, value: float, *, generator=None, dtype="float32") -> np.ndarray:
    """Every entry ``value``."""
    return np.full(tuple(shape), value, dtype)


def _empty_if_no_elements(fn):
    """A zero-element tensor has nothing to draw: return it without computing fans (which may be 0).

    PyTorch's kaiming initialisers treat it as a no-op the same way.
    """
    def init(shape, *args, generator=None, dtype="float32", **kwargs):
        if 0 in tuple(shape):
            return np.zeros(tuple(shape), dtype)
        return fn(shape, *args, generator=generator, dtype=dtype, **kwargs)
    init.__name__, init.__qualname__, init.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    init.__wrapped__ = fn
    return init


@_empty_if_no_elements
def xavier_uniform(shape, gain: float = 1.0, *, generator=None, dtype="float32") -> np.ndarray:
    """Glorot uniform: ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -bound, bound, generator=generator, dtype=dtype)


@_empty_if_no_elements
def xavier_normal(shape, gain: float = 1.0, *, generator=None, dtype="float32") -> np.ndarray:
    """Glorot normal: ``N(0, std)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return normal(shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator, dtype=dtype)


@_empty_if_no_elements
def kaiming_uniform(shape, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *,
                    generator=None, dtype="float32") -> np.ndarray:
    """He uniform: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)``.

    PyTorch's Linear and Conv default is ``a=sqrt(5)``, which gives ``b = 1/sqrt(fan_in)``.
    """
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(shape, -bound, bound, generator=generator, dtype=dtype)


@_empty_if_no_elements
def kaiming_normal(shape, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *,
                   generator=None, dtype="float32") -> np.ndarray:
    """He normal: ``N(0, gain / sqrt(fan))``."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(shape, 0.0, std, generator=generator, dtype=dtype)


def fan_in_uniform(shape, fan_in: int, *, generator=None, dtype="float32") -> np.ndarray:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default bias init of Linear and Conv layers."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform(shape, -bound, bound, generator=generator, dtype=dtype)


def _in_place(fn):
    def init_(var, *args, generator=None, **kwargs):
        var.assign(fn(var.shape, *args, generator=generator, dtype=var.dtype, **kwargs))
        return var
    init_.__name__ = fn.__name__ + "_"
    init_.__doc__ = f"Re-initialise a variable in place with :func:`{fn.__name__}`."
    return init_


# PyTorch-style in-place forms (named statically, so linters, type checkers and IDEs see them).
uniform_ = _in_place(uniform)
normal_ = _in_place(normal)
zeros_ = _in_place(zeros)
ones_ = _in_place(ones)
constant_ = _in_place(constant)
xavier_uniform_ = _in_place(xavier_uniform)
xavier_normal_ = _in_place(xavier_normal)
kaiming_uniform_ = _in_place(kaiming_uniform)
kaiming_normal_ = _in_place(kaiming_normal)

__all__ = ["manual_seed", "default_generator", "fan_in_and_fan_out", "calculate_gain", "uniform", "normal",
           "zeros", "ones", "constant", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
           "fan_in_uniform", "uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]
