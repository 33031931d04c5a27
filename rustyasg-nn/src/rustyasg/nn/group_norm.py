"""Group and instance normalization over ``(N, C, ...)``, as ``torch.nn.GroupNorm`` / ``InstanceNorm{1,2,3}d``.

Both normalise over groups of channels and all spatial positions with the biased variance;
instance norm is group norm with one channel per group. The statistics are graph
reductions, so gradients and every backend come for free.

Example:
    >>> import rustyasg.core as rg
    >>> GroupNorm(2, 6)(rg.input((4, 6, 5, 5))).shape
    (4, 6, 5, 5)
    >>> InstanceNorm1d(3, affine=True).weight.shape
    (3,)
"""

from __future__ import annotations

from typing import Optional

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import shape_error
from .module import Module
from .normalization import _BatchNorm, batch_norm

__all__ = ["group_norm", "instance_norm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


def _affine(y: Tensor, weight: Optional[Tensor], bias: Optional[Tensor]) -> Tensor:
    view = (1, -1) + (1,) * (y.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(view)
    return y if bias is None else y + bias.reshape(view)


@rg.builder()
def group_norm(x: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               eps: float = 1e-5) -> Tensor:
    """``torch.nn.functional.group_norm``: normalise each group of ``C/num_groups`` channels per sample.

    >>> group_norm(rg.input((2, 4, 3)), 2).shape
    (2, 4, 3)
    """
    if x.ndim < 2:
        raise shape_error("group_norm", f"input must be (N, C, ...), got rank {x.ndim}", x)
    n, c = x.shape[0], x.shape[1]
    if not isinstance(c, int) or num_groups <= 0 or c % num_groups:
        raise shape_error("group_norm", f"channels {c} must be divisible by num_groups {num_groups}", x)
    g = x.reshape((n, num_groups, -1))
    mean = g.mean(axis=-1, keepdims=True)
    centred = g - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    y = (centred * rg.rsqrt(var + eps)).reshape(tuple(x.shape))
    return _affine(y, weight, bias)


@rg.builder()
def instance_norm(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                  eps: float = 1e-5) -> Tensor:
    """``torch.nn.functional.instance_norm`` with batch statistics (no running stats).

    >>> instance_norm(rg.input((2, 4, 3, 3))).shape
    (2, 4, 3, 3)
    """
    if x.ndim < 3:
        raise shape_error("instance_norm", f"input must be (N, C, spatial...), got rank {x.ndim}", x)
    return _affine(group_norm(x, int(x.shape[1]), eps=eps), weight, bias)


class GroupNorm(Module):
    """``torch.nn.GroupNorm``: ``weight`` ones and ``bias`` zeros of shape ``(num_channels,)``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype="float32"):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups {num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, float(eps), affine
        self.register_parameter("weight", init.ones((num_channels,), dtype=dtype) if affine else None)
        self.register_parameter("bias", init.zeros((num_channels,), dtype=dtype) if affine else None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise shape_error("GroupNorm", f"expected (N, {self.num_channels}, ...)", x)
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_BatchNorm):
    """``torch.nn.InstanceNorm{1,2,3}d``: per-sample statistics; ``affine`` and ``track_running_stats`` off by default.

    With ``track_running_stats`` training records running averages of the per-instance means
    and unbiased variances (averaged over the batch, as PyTorch), and evaluation normalises
    with them, as batch norm does.
    """

    spatial = 1

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = False,
                 track_running_stats: bool = False, dtype="float32"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != self.spatial + 2 or x.shape[1] != self.num_features:
            raise shape_error(type(self).__name__, f"expected (N, {self.num_features}"
                              + ", ..." * self.spatial + ")", x)
        if self.track_running_stats and not self.training:
            self.clear_updates()
            return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, self.eps)
        if self.track_running_stats:
            # PyTorch's instance norm: momentum None means no update, num_batches_tracked stays as it is.
            axes, xs, m = tuple(range(2, x.ndim)), rg.stop_gradient(x), float(self.momentum or 0.0)
            mean, var = xs.mean(axis=axes).mean(axis=0), xs.var(axis=axes, correction=1).mean(axis=0)
            self.record_update(self.running_mean, self.running_mean * (1.0 - m) + mean * m)
            self.record_update(self.running_var, self.running_var * (1.0 - m) + var * m)
        return instance_norm(x, self.weight, self.bias, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """``torch.nn.InstanceNorm1d`` over ``(N, C, L)``."""

    spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """``torch.nn.InstanceNorm2d`` over ``(N, C, H, W)``."""

    spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """``torch.nn.InstanceNorm3d`` over ``(N, C, D, H, W)``."""

    spatial = 3
