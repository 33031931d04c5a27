"""Convolution layers: ``Conv2d`` (padding, stride, dilation, groups, depthwise) and ``ConvTranspose2d``.

Thin modules over the core ``conv2d`` / ``conv_transpose2d`` ops with PyTorch's
parameter layout and default initialisation (weights ``U(-1/sqrt(fan_in), ...)``
through ``kaiming_uniform(a=sqrt(5))``, the same bound for the bias).

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import Conv2d
    >>> conv = Conv2d(3, 8, 3, stride=2, padding=1)
    >>> conv(rg.input((None, 3, 32, 32), name="img")).shape
    (Dim(img.0), 8, 16, 16)
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import check_rank, shape_error
from .module import Module

IntOrPair = Union[int, Sequence[int]]


def _pair(v) -> tuple:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)


def _bias(y: Tensor, bias: Optional[Tensor]) -> Tensor:
    return y if bias is None else y + bias.reshape((1, -1, 1, 1))


def _same_padding(kernel, dilation):
    """(before, after) per spatial axis so that stride-1 output size equals input size (PyTorch's split)."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrPair = 1,
           padding: Union[IntOrPair, str] = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of ``(N, C, H, W)`` with ``(O, C/groups, kh, kw)`` weights.

    ``padding`` is an int, a pair, ``"valid"`` (0), ``"same"`` (stride 1; an odd total is
    split with the extra row/column at the end, as PyTorch does), or asymmetric
    ``((top, bottom), (left, right))``.

    >>> conv2d(rg.input((1, 4, 9, 9)), rg.input((4, 1, 3, 3)), groups=4, padding="same").shape
    (1, 4, 9, 9)
    """
    if not isinstance(padding, (str, int)) and len(padding) == 2 and not isinstance(padding[0], int):
        (t, b), (l, r) = padding  # asymmetric: padded explicitly, then a plain convolution
        x, padding = rg.pad(x, pad_width=(0, 0, 0, 0, t, b, l, r)), 0
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if _pair(stride) != (1, 1):
                raise ValueError("conv2d: padding='same' needs stride 1 (as in PyTorch)")
            (t, b), (l, r) = _same_padding(_pair(weight.shape[2:]), _pair(dilation))
            if (t, l) != (b, r):
                x = rg.pad(x, pad_width=(0, 0, 0, 0, t, b, l, r))
                padding = 0
            else:
                padding = (t, l)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    return _bias(rg.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups), bias)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1) -> Tensor:
    """Transposed convolution of ``(N, C_in, H, W)`` with ``(C_in, C_out/groups, kh, kw)`` weights.

    >>> conv_transpose2d(rg.input((1, 4, 5, 5)), rg.input((4, 2, 3, 3)), stride=2).shape
    (1, 2, 11, 11)
    """
    return _bias(rg.conv_transpose2d(x, weight, stride=stride, padding=padding, output_padding=output_padding,
                                     groups=groups, dilation=dilation), bias)


class _ConvNd(Module):
    """Shared constructor: hyper-parameters, weight and bias with PyTorch's default init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, weight_shape, dtype):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels {in_channels} and out_channels {out_channels} "
                             f"must be divisible by groups {groups}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{type(self).__name__}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.weight = rg.variable(init.kaiming_uniform(weight_shape, a=5 ** 0.5, dtype=dtype), name="weight")
        fan_in, _ = init.fan_in_and_fan_out(weight_shape)
        self.register_parameter("bias", init.fan_in_uniform((out_channels,), fan_in, dtype=dtype) if bias else None)

    def _check_input(self, x: Tensor) -> None:
        check_rank(type(self).__name__, x, 4, "input (N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise shape_error(type(self).__name__, f"expected {self.in_channels} input channels, got {x.shape[1]}", x)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution layer; ``groups=in_channels`` gives a depthwise convolution.

    >>> Conv2d(8, 8, 3, groups=8, bias=False).weight.shape
    (8, 1, 3, 3)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: Union[IntOrPair, str] = 0, dilation: IntOrPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", dtype="float32"):
        k = _pair(kernel_size)
        super().__init__(in_channels, out_channels, k, stride, padding, dilation, groups, bias, padding_mode,
                         (out_channels, in_channels // groups) + k, dtype)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        padding = self.padding
        if self.padding_mode != "zeros":  # the border comes from the input: padded first, then a valid conv
            from .conv_nd import conv_padding

            pads = conv_padding(padding, self.kernel_size, self.dilation, self.stride, 2)
            x, padding = rg.pad(x, (0, 0, 0, 0) + tuple(w for pair in pads for w in pair), mode=self.padding_mode), 0
        return conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (weight ``(in, out/groups, kh, kw)``, as PyTorch).

    ``forward(x, output_size=None)``: an explicit ``(H, W)`` output size picks the
    ``output_padding`` that reaches it, as in PyTorch.

    >>> ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)(rg.input((1, 4, 5, 5))).shape
    (1, 2, 10, 10)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrPair = 1, padding_mode: str = "zeros", dtype="float32"):
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported (as in PyTorch), "
                             f"got {padding_mode!r}")
        k = _pair(kernel_size)
        super().__init__(in_channels, out_channels, k, stride, padding, dilation, groups, bias, padding_mode,
                         (in_channels, out_channels // groups) + k, dtype)
        self.output_padding = _pair(output_padding)

    def _output_padding(self, x: Tensor, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        pads = []
        for i, want in enumerate(size):
            base = (x.shape[2 + i] - 1) * self.stride[i] - 2 * self.padding[i] + \
                self.dilation[i] * (self.kernel_size[i] - 1) + 1
            if not 0 <= want - base < max(self.stride[i], self.dilation[i]):
                raise shape_error("ConvTranspose2d", f"requested output size {size} is not reachable "
                                  f"(axis {i} can be {base}..{base + max(self.stride[i], self.dilation[i]) - 1})", x)
            pads.append(want - base)
        return tuple(pads)

    def forward(self, x: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        self._check_input(x)
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(x, output_size), self.groups, self.dilation)

    def extra_repr(self):
        s = super().extra_repr()
        return s + (f", output_padding={self.output_padding}" if self.output_padding != (0, 0) else "")
