"""Activation functions PyTorch defines as compositions of other functions, built the same way.

Each is a few core ops, so it fuses with its neighbours on every backend and its gradient comes
from theirs; where PyTorch's gradient differs from the composition's at a kink (``hardtanh`` is
0 *on* its bounds, ``clamp`` 1), the composition is written so the gradient matches PyTorch's.
``hardsigmoid`` and ``hardswish`` are rows of the elementwise table (:mod:`.ops.elementwise_math`).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4,), name="x")
    >>> f = rg.function([x], rg.relu6(x * 4.0), backend="reference")
    >>> f(np.array([-1.0, 0.5, 1.0, 2.0], np.float32))
    array([0., 2., 4., 6.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .builders import builder
from .graph import Tensor, as_tensor
from .ops import clamp, elu, logical_and, reduce, sigmoid, softplus, stop_gradient, tanh, where
from .shapes import normalize_axis

__all__ = ["hardtanh", "relu6", "selu", "celu", "logsigmoid", "mish", "softsign", "quick_gelu", "softmin",
           "tanhshrink", "glu", "prelu", "normalize"]

#: SELU's constants (Klambauer et al. 2017), as PyTorch writes them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@builder()
def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``clamp(x, min_val, max_val)`` whose gradient is 0 on the bounds too, as PyTorch's.

    >>> import rustyasg.core as rg
    >>> rg.hardtanh(rg.input((3,), name="h")).shape
    (3,)
    """
    if min_val > max_val:
        raise ValueError(f"min_val {min_val} is above max_val {max_val}")
    x = as_tensor(x)
    inside = logical_and(x > min_val, x < max_val)
    return where(inside, x, stop_gradient(clamp(x, min=min_val, max=max_val)))


@builder()
def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)`` (``hardtanh(x, 0, 6)``)."""
    return hardtanh(x, 0.0, 6.0)


@builder()
def selu(x: Tensor) -> Tensor:
    """Scaled ELU: ``scale * elu(x, alpha)`` with the self-normalising constants."""
    return SELU_SCALE * elu(as_tensor(x), alpha=SELU_ALPHA)


@builder()
def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``, i.e. ``alpha * elu(x / alpha)``."""
    if alpha == 0:
        raise ValueError("alpha must not be 0 (CELU divides by it)")
    return alpha * elu(as_tensor(x) * (1.0 / alpha), alpha=1.0)


@builder()
def logsigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    return -softplus(-as_tensor(x), beta=1.0, threshold=20.0)


@builder()
def mish(x: Tensor) -> Tensor:
    """``x * tanh(softplus(x))``."""
    x = as_tensor(x)
    return x * tanh(softplus(x, beta=1.0, threshold=20.0))


@builder()
def softsign(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    x = as_tensor(x)
    return x / (1.0 + abs(x))


@builder()
def quick_gelu(x: Tensor) -> Tensor:
    """``x * sigmoid(1.702 * x)`` (the GELU approximation of CLIP and others)."""
    x = as_tensor(x)
    return x * sigmoid(1.702 * x)


@builder()
def softmin(x: Tensor, dim: int = -1) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    return reduce.softmax(-as_tensor(x), axis=dim)


@builder()
def tanhshrink(x: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    x = as_tensor(x)
    return x - tanh(x)


@builder()
def glu(x: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``x`` in halves ``a, b`` along ``dim``, return ``a * sigmoid(b)``.

    >>> import rustyasg.core as rg
    >>> rg.glu(rg.input((2, 6), name="g")).shape
    (2, 3)
    """
    from .functional import split

    x = as_tensor(x)
    if x.ndim == 0:
        raise ValueError("glu needs at least one dimension")
    ax = normalize_axis(dim, x.ndim)
    n = x.shape[ax]
    if not isinstance(n, (int, np.integer)) or n % 2:
        raise ValueError(f"dimension {dim} of size {n} must be even to split in halves")
    a, b = split(x, 2, axis=ax)
    return a * sigmoid(b)


@builder()
def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, else ``weight * x``; ``weight`` has one entry or one per channel (axis 1).

    >>> import numpy as np, rustyasg.core as rg
    >>> rg.prelu(rg.input((2, 3, 4), name="p"), np.full(3, 0.25, np.float32)).shape
    (2, 3, 4)
    """
    x = as_tensor(x)
    weight = as_tensor(weight, x)
    if weight.ndim > 1:
        raise ValueError(f"weight must be 1-d (one value, or one per channel), got {weight.describe()}")
    count = weight.shape[0] if weight.ndim else 1
    if count != 1:
        channels = x.shape[1] if x.ndim >= 2 else None
        if channels != count:
            raise ValueError(f"weight has {count} entries but the input has {channels} channels (axis 1)")
        weight = weight.reshape((count,) + (1,) * (x.ndim - 2))
    elif weight.ndim:
        weight = weight.reshape(())
    return where(x > 0.0, x, weight * x)


@builder()
def normalize(x: Tensor, p: float = 2.0, dim=1, eps: float = 1e-12) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim`` (``torch.nn.functional.normalize``).

    >>> import rustyasg.core as rg
    >>> rg.normalize(rg.input((2, 3), name="n")).shape
    (2, 3)
    """
    from .reductions import vector_norm

    x = as_tensor(x)
    norm = vector_norm(x, p, dim=dim, keepdim=True)
    return x / reduce.broadcast_to(clamp(norm, min=eps), shape=x.shape)
