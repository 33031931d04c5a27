"""Normalization layers: ``LayerNorm``, ``RMSNorm`` and ``BatchNorm{1,2,3}d``.

Batch norm in training mode normalises with the batch statistics and records
new running statistics (PyTorch's momentum rule, unbiased running variance,
``num_batches_tracked``) as state updates: merge ``model.state_updates()`` into
the compiled step's ``updates`` and they are applied inside that step. In eval
mode the running statistics are used and nothing is recorded.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import BatchNorm2d
    >>> bn = BatchNorm2d(3)
    >>> y = bn(rg.input((None, 3, 4, 4), name="x"))
    >>> sorted(v.name for v in bn.state_updates())
    ['num_batches_tracked', 'running_mean', 'running_var']
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import check_rank, shape_error
from .module import Module


def layer_norm(x: Tensor, normalized_shape: Sequence[int], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes (biased variance), then scale and shift.

    >>> layer_norm(rg.input((2, 5, 8)), (8,)).shape
    (2, 5, 8)
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape or x.ndim < len(shape):
        raise shape_error("layer_norm", f"the trailing axes must be {shape}", x)
    return rg.layer_norm(x, weight, bias, normalized_ndim=len(shape), eps=eps)


class LayerNorm(Module):
    """Layer normalization with learnable ``weight`` (ones) and ``bias`` (zeros), as PyTorch.

    >>> LayerNorm(8)(rg.input((None, 8), name="x")).shape
    (Dim(x.0), 8)
    """

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, dtype="float32"):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, float(eps), elementwise_affine
        self.register_parameter("weight", init.ones(shape, dtype=dtype) if elementwise_affine else None)
        self.register_parameter("bias", init.zeros(shape, dtype=dtype) if elementwise_affine and bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


def rms_norm(x: Tensor, normalized_shape: Sequence[int], weight: Optional[Tensor] = None,
             eps: float = 1e-6) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing ``normalized_shape`` axes (RMSNorm).

    >>> rms_norm(rg.input((2, 5, 8)), (8,)).shape
    (2, 5, 8)
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise shape_error("rms_norm", f"the trailing axes must be {shape}", x)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = x * rg.rsqrt((x * x).mean(axis=axes, keepdims=True) + eps)
    return y if weight is None else y * weight


class RMSNorm(Module):
    """Root-mean-square normalization (Zhang & Sennrich; Llama's ``RMSNorm``) with a ``weight`` of ones.

    >>> RMSNorm(8, eps=1e-6)(rg.input((None, 3, 8), name="x")).shape
    (Dim(x.0), 3, 8)
    """

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-6,
                 elementwise_affine: bool = True, dtype="float32"):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, float(eps)
        self.register_parameter("weight", init.ones(shape, dtype=dtype) if elementwise_affine else None)

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """A per-channel ``(C,)`` tensor shaped to broadcast over ``(N, C, ...)``."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm(x: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, training: bool = False,
               eps: float = 1e-5) -> Tensor:
    """Batch normalization of ``(N, C, ...)`` over every axis but 1 (``torch.nn.functional.batch_norm``).

    Training mode normalises with the batch statistics (the core ``batch_norm`` op);
    otherwise with ``running_mean``/``running_var``. Running averages are not updated
    here: :class:`BatchNorm2d` records those updates itself.

    >>> batch_norm(rg.input((4, 3)), None, None, training=True).shape
    (4, 3)
    """
    if training:
        return rg.batch_norm(x, weight, bias, axis=1, eps=eps)
    # eval: one scale and shift per channel, folded from the running statistics
    scale = rg.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return x * _channel_view(scale, x.ndim) + _channel_view(shift, x.ndim)


def batch_statistics(x: Tensor):
    """``(mean, unbiased variance)`` per channel of ``(N, C, ...)``, as gradient-free ``(C,)`` tensors."""
    axes = (0,) + tuple(range(2, x.ndim))
    x = rg.stop_gradient(x)
    return x.mean(axis=axes), x.var(axis=axes, correction=1)


class _BatchNorm(Module):
    """Shared body of BatchNorm1d/2d/3d; subclasses give the accepted input ranks."""

    ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype="float32"):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter("weight", init.ones((num_features,), dtype=dtype) if affine else None)
        self.register_parameter("bias", init.zeros((num_features,), dtype=dtype) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", init.zeros((num_features,), dtype=dtype))
            self.register_buffer("running_var", init.ones((num_features,), dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        check_rank(name, x, self.ranks, "input (N, C, ...)")
        if x.shape[1] != self.num_features:
            raise shape_error(name, f"expected {self.num_features} channels along axis 1, got {x.shape[1]}", x)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            self.clear_updates()
            return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, self.eps)
        if self.training and self.track_running_stats:
            self._record_running_stats(*batch_statistics(x))
        return batch_norm(x, None, None, self.weight, self.bias, True, self.eps)

    def _record_running_stats(self, mean: Tensor, var: Tensor) -> None:
        count = self.num_batches_tracked + 1
        if self.momentum is None:  # cumulative moving average, as PyTorch
            factor = 1.0 / count.astype(mean.dtype)
        else:
            factor = float(self.momentum)
        self.record_update(self.running_mean, self.running_mean * (1.0 - factor) + mean * factor)
        self.record_update(self.running_var, self.running_var * (1.0 - factor) + var * factor)
        self.record_update(self.num_batches_tracked, count)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of ``(N, C)`` or ``(N, C, L)`` inputs.

    >>> list(BatchNorm1d(4).state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of ``(N, C, H, W)`` inputs.

    >>> BatchNorm2d(4, affine=False).weight is None
    True
    """

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch norm of ``(N, C, D, H, W)`` inputs (``torch.nn.BatchNorm3d``).

    >>> BatchNorm3d(2)(rg.input((4, 2, 3, 5, 5))).shape
    (4, 2, 3, 5, 5)
    """

    ranks = (5,)
