"""1-D and 3-D convolutions and their transposes, lowered to the core's 2-D convolution.

* ``conv1d`` is ``conv2d`` over a unit height.
* ``conv3d`` gathers the ``kd`` depth taps of every output depth with one constant-index
  ``take`` and folds them into channels (grouped per ``groups``), so ONE ``conv2d`` over
  ``(N*D_out, kd*C, H, W)`` with weights reshaped to ``(O, kd*C/g, kh, kw)`` does the work.
* ``conv_transpose1d`` is ``conv_transpose2d`` over a unit height; ``conv_transpose3d`` is a
  stride-1 ``conv3d`` of the zero-stuffed, padded input with flipped, in/out-swapped weights
  (the definition of a transposed convolution).

Padding is an int, a tuple, ``"valid"`` or ``"same"`` (an odd total puts the extra element at
the end, as PyTorch), or explicit ``((before, after), ...)`` pairs for asymmetric padding.
The modules follow ``torch.nn`` (names, arguments, ``weight``/``bias`` keys, initialisation,
``padding_mode`` zeros / reflect / replicate / circular).

Example:
    >>> import rustyasg.core as rg
    >>> conv3d(rg.input((2, 4, 5, 6, 7)), rg.input((8, 2, 3, 3, 3)), groups=2, padding=1).shape
    (2, 8, 5, 6, 7)
    >>> Conv1d(3, 5, 3, padding="same")(rg.input((1, 3, 10))).shape
    (1, 5, 10)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import check_rank, shape_error
from .conv import conv2d, conv_transpose2d
from .module import Module

__all__ = ["conv1d", "conv3d", "conv_transpose1d", "conv_transpose3d", "conv_padding", "Conv1d", "Conv3d",
           "ConvTranspose1d", "ConvTranspose3d"]


def _tuple(v, n: int, what: str) -> tuple:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise ValueError(f"{what} needs {n} values, got {v}")
    return v


def conv_padding(padding, kernel, dilation, stride, nd: int):
    """Per-axis ``(before, after)`` pads from PyTorch's padding forms (int, tuple, 'valid', 'same', pairs).

    >>> conv_padding("same", (4,), (1,), (1,), 1)
    ((1, 2),)
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))
    if not isinstance(padding, (int, np.integer)) and len(padding) and not isinstance(padding[0], (int, np.integer)):
        pairs = tuple((int(a), int(b)) for a, b in padding)
        if len(pairs) != nd:
            raise ValueError(f"padding needs {nd} (before, after) pairs, got {pairs}")
        return pairs
    return tuple((p, p) for p in _tuple(padding, nd, "padding"))


def _pad_spatial(x: Tensor, pads, mode: str = "constant") -> Tensor:
    if all(a == 0 and b == 0 for a, b in pads):
        return x
    widths = (0, 0, 0, 0) + tuple(w for pair in pads for w in pair)
    return rg.pad(x, widths, mode=mode)


def _check(x: Tensor, weight: Tensor, nd: int, groups: int, where: str, transposed: bool = False):
    check_rank(where, x, nd + 2, f"input (N, C, {'D, ' if nd == 3 else ''}{'H, ' if nd >= 2 else ''}W)")
    check_rank(where, weight, nd + 2, "weight")
    c = x.shape[1]
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if isinstance(c, int) and c != expected:
        raise shape_error(where, f"input has {c} channels, the weight expects {expected} (groups={groups})", x, weight)


@rg.builder()
def conv1d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution of ``(N, C, L)`` with ``(O, C/groups, k)`` weights (``torch.nn.functional.conv1d``).

    >>> conv1d(rg.input((2, 4, 9)), rg.input((6, 4, 3)), stride=2).shape
    (2, 6, 4)
    """
    _check(x, weight, 1, groups, "conv1d")
    (s,), (d,) = _tuple(stride, 1, "stride"), _tuple(dilation, 1, "dilation")
    ((a, b),) = conv_padding(padding, tuple(weight.shape[2:]), (d,), (s,), 1)
    x2 = rg.unsqueeze(x, 2)
    if a != b:  # asymmetric: padded explicitly
        x2, a = _pad_spatial(x2, ((0, 0), (a, b))), 0
    y = rg.squeeze(conv2d(x2, rg.unsqueeze(weight, 2), None, (1, s), (0, a), (1, d), groups), 2)
    return y if bias is None else y + bias.reshape((1, -1, 1))


@rg.builder()
def conv3d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-D convolution of ``(N, C, D, H, W)`` with ``(O, C/groups, kd, kh, kw)`` weights.

    >>> conv3d(rg.input((1, 2, 4, 4, 4)), rg.input((3, 2, 2, 2, 2)), stride=2).shape
    (1, 3, 2, 2, 2)
    """
    _check(x, weight, 3, groups, "conv3d")
    stride, dilation = _tuple(stride, 3, "stride"), _tuple(dilation, 3, "dilation")
    kernel = tuple(int(k) for k in weight.shape[2:])
    pads = conv_padding(padding, kernel, dilation, stride, 3)
    symmetric = all(a == b for a, b in pads[1:])
    # depth is gathered below, so padded here; height/width too when asymmetric
    x = _pad_spatial(x, pads if not symmetric else pads[:1] + ((0, 0), (0, 0)))
    hw_pad = (pads[1][0], pads[2][0]) if symmetric else (0, 0)
    n, c, depth = x.shape[0], x.shape[1], x.shape[2]
    (kd, kh, kw), (sd, sh, sw), (dd, dh, dw) = kernel, stride, dilation
    d_out = (depth - dd * (kd - 1) - 1) // sd + 1
    if d_out <= 0:
        raise shape_error("conv3d", f"the kernel depth {kd} (dilation {dd}) exceeds the padded depth {depth}", x)
    taps = np.arange(d_out)[:, None] * sd + np.arange(kd)[None, :] * dd
    # Depth first, once, at the input's size; the gathered taps then come out as (N, Do, kd, C, H, W).
    h, w = x.shape[3], x.shape[4]
    cols = rg.take(rg.transpose(x, (0, 2, 1, 3, 4)), rg.constant(taps.astype(np.int64)), axis=1)
    if groups > 1:  # each group's channels must be contiguous: (g, kd, C/g)
        cols = rg.transpose(cols.reshape((n, d_out, kd, groups, c // groups, h, w)), (0, 1, 3, 2, 4, 5, 6))
    cols = cols.reshape((n * d_out, c * kd, h, w))
    o = weight.shape[0]
    w2 = rg.transpose(weight, (0, 2, 1, 3, 4)).reshape((o, kd * (c // groups), kh, kw))
    y = conv2d(cols, w2, None, (sh, sw), hw_pad, (dh, dw), groups)
    y = rg.transpose(y.reshape((n, d_out, o) + tuple(y.shape[2:])), (0, 2, 1, 3, 4))
    return y if bias is None else y + bias.reshape((1, -1, 1, 1, 1))


@rg.builder()
def conv_transpose1d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-D convolution of ``(N, C_in, L)`` with ``(C_in, C_out/groups, k)`` weights.

    >>> conv_transpose1d(rg.input((1, 4, 5)), rg.input((4, 2, 3)), stride=2).shape
    (1, 2, 11)
    """
    _check(x, weight, 1, groups, "conv_transpose1d", transposed=True)
    one = lambda v, what: (1,) + _tuple(v, 1, what)  # noqa: E731
    y = conv_transpose2d(rg.unsqueeze(x, 2), rg.unsqueeze(weight, 2), None, one(stride, "stride"),
                         (0,) + _tuple(padding, 1, "padding"), (0,) + _tuple(output_padding, 1, "output_padding"),
                         groups, one(dilation, "dilation"))
    y = rg.squeeze(y, 2)
    return y if bias is None else y + bias.reshape((1, -1, 1))


def _zero_stuff(x: Tensor, axis: int, stride: int) -> Tensor:
    """Insert ``stride - 1`` zeros between neighbours along ``axis``."""
    if stride == 1:
        return x
    n = x.shape[axis]
    y = rg.unsqueeze(x, axis + 1)
    widths = [0] * (2 * y.ndim)
    widths[2 * (axis + 1) + 1] = stride - 1
    y = rg.pad(y, tuple(widths)).reshape(tuple(x.shape[:axis]) + (n * stride,) + tuple(x.shape[axis + 1:]))
    return rg.narrow(y, axis, 0, (n - 1) * stride + 1)


@rg.builder()
def conv_transpose3d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-D convolution of ``(N, C_in, D, H, W)`` with ``(C_in, C_out/groups, kd, kh, kw)`` weights.

    >>> conv_transpose3d(rg.input((1, 4, 3, 3, 3)), rg.input((4, 2, 3, 3, 3)), stride=2, padding=1).shape
    (1, 2, 5, 5, 5)
    """
    _check(x, weight, 3, groups, "conv_transpose3d", transposed=True)
    stride, padding = _tuple(stride, 3, "stride"), _tuple(padding, 3, "padding")
    output_padding, dilation = _tuple(output_padding, 3, "output_padding"), _tuple(dilation, 3, "dilation")
    for op, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op < max(s, d):
            raise ValueError(f"output_padding {output_padding} must be smaller than stride or dilation")
    kernel = tuple(int(k) for k in weight.shape[2:])
    y = x
    for i, s in enumerate(stride):
        y = _zero_stuff(y, 2 + i, s)
    pads = tuple((d * (k - 1) - p, d * (k - 1) - p + op)
                 for k, d, p, op in zip(kernel, dilation, padding, output_padding))
    y = rg.pad(y, (0, 0, 0, 0) + tuple(w for pair in pads for w in pair))
    cin, cout_g = weight.shape[0], weight.shape[1]
    w = weight.reshape((groups, cin // groups, cout_g) + kernel)
    w = rg.transpose(w, (0, 2, 1, 3, 4, 5)).reshape((groups * cout_g, cin // groups) + kernel)
    w = rg.flip(w, axes=(2, 3, 4))
    out = conv3d(y, w, None, 1, 0, dilation, groups)
    return out if bias is None else out + bias.reshape((1, -1, 1, 1, 1))


_FUNCTIONS = {(1, False): conv1d, (3, False): conv3d, (1, True): conv_transpose1d, (3, True): conv_transpose3d}


class _ConvN(Module):
    """Shared by Conv1d/Conv3d/ConvTranspose1d/ConvTranspose3d: torch.nn's arguments, keys and init."""

    nd = 1
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", output_padding=0, dtype="float32"):
        super().__init__()
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels {in_channels} and out_channels {out_channels} must be divisible "
                             f"by groups {groups}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                             f"got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported (as in PyTorch)")
        nd = self.nd
        self.in_channels, self.out_channels, self.groups, self.padding_mode = in_channels, out_channels, groups, \
            padding_mode
        self.kernel_size, self.stride = _tuple(kernel_size, nd, "kernel_size"), _tuple(stride, nd, "stride")
        self.dilation = _tuple(dilation, nd, "dilation")
        self.padding = padding if isinstance(padding, str) else _tuple(padding, nd, "padding")
        self.output_padding = _tuple(output_padding, nd, "output_padding")
        shape = ((in_channels, out_channels // groups) if self.transposed else
                 (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = rg.variable(init.kaiming_uniform(shape, a=5 ** 0.5, dtype=dtype), name="weight")
        fan_in, _ = init.fan_in_and_fan_out(shape)
        self.register_parameter("bias", init.fan_in_uniform((out_channels,), fan_in, dtype=dtype) if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        fn = _FUNCTIONS[(self.nd, self.transposed)]
        if self.transposed:
            return fn(x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups,
                      self.dilation)
        padding = self.padding
        if self.padding_mode != "zeros":
            check_rank(type(self).__name__, x, self.nd + 2, "input")
            pads = conv_padding(padding, self.kernel_size, self.dilation, self.stride, self.nd)
            x, padding = _pad_spatial(x, pads, self.padding_mode), 0
        return fn(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvN):
    """``torch.nn.Conv1d``: weight ``(out, in/groups, k)``.

    >>> Conv1d(4, 8, 3, groups=2).weight.shape
    (8, 2, 3)
    """

    nd = 1


class Conv3d(_ConvN):
    """``torch.nn.Conv3d``: weight ``(out, in/groups, kd, kh, kw)``.

    >>> Conv3d(2, 4, (1, 3, 3)).weight.shape
    (4, 2, 1, 3, 3)
    """

    nd = 3


class ConvTranspose1d(_ConvN):
    """``torch.nn.ConvTranspose1d``: weight ``(in, out/groups, k)``.

    >>> ConvTranspose1d(4, 2, 3, stride=2)(rg.input((1, 4, 5))).shape
    (1, 2, 11)
    """

    nd, transposed = 1, True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", dtype="float32"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, dtype)


class ConvTranspose3d(ConvTranspose1d):
    """``torch.nn.ConvTranspose3d``: weight ``(in, out/groups, kd, kh, kw)``.

    >>> ConvTranspose3d(4, 2, 2, stride=2)(rg.input((1, 4, 2, 2, 2))).shape
    (1, 2, 4, 4, 4)
    """

    nd = 3

