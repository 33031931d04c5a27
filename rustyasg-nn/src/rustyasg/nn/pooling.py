"""Pooling layers over ``(N, C, H, W)``: max, average, adaptive (max / average) and global average.

Modules over the core pooling ops, with PyTorch's names, defaults and
``stride=None`` meaning ``stride=kernel_size``.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import AdaptiveAvgPool2d, MaxPool2d
    >>> x = rg.input((None, 3, 9, 9), name="x")
    >>> MaxPool2d(3, stride=2, padding=1)(x).shape, AdaptiveAvgPool2d((2, 3))(x).shape
    ((Dim(x.0), 3, 5, 5), (Dim(x.0), 3, 2, 3))
"""

from __future__ import annotations

import rustyasg.core as rg
from rustyasg.core import Tensor

from ._checks import check_rank
from .module import Module
from .pooling_nd import AdaptiveAvgPool2d, AdaptiveMaxPool2d  # noqa: F401  (their home: every rank)


def global_avg_pool2d(x: Tensor, keepdim: bool = False) -> Tensor:
    """Mean over ``H`` and ``W``: ``(N, C, H, W) -> (N, C)`` (``(N, C, 1, 1)`` with ``keepdim``).

    >>> global_avg_pool2d(rg.input((2, 5, 4, 4))).shape
    (2, 5)
    """
    check_rank("global_avg_pool2d", x, 4, "input (N, C, H, W)")
    return x.mean(axis=(2, 3), keepdims=keepdim)


class MaxPool2d(Module):
    """Max pooling (``padding`` counts as -inf; ``dilation`` and ``ceil_mode`` as PyTorch)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode, self.return_indices = dilation, ceil_mode, return_indices

    def forward(self, x: Tensor):
        y = rg.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
        if not self.return_indices:
            return y
        return y, rg.max_pool2d_indices(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Average pooling (``count_include_pad`` and ``divisor_override`` as PyTorch)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return rg.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                             self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class GlobalAvgPool2d(Module):
    """``(N, C, H, W) -> (N, C)`` spatial mean (``keepdim=True`` keeps ``(N, C, 1, 1)``)."""

    def __init__(self, keepdim: bool = False):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: Tensor) -> Tensor:
        return global_avg_pool2d(x, self.keepdim)
