"""2-D convolution: ``conv2d`` and its two backward ops, plus ``conv_transpose2d`` built on them.

Layouts are PyTorch's: input ``(N, C, H, W)``, weight ``(O, C/groups, kh, kw)``;
``stride``, ``padding`` and ``dilation`` are ints or (h, w) pairs. The bias is
added by the caller. The three ops are bilinear, so each one's gradient is made
of the other two (and double backward works):

- ``conv2d(x, w)``                         -> dx = backward_input(g, w), dw = backward_weight(g, x)
- ``conv2d_backward_input(g, w; input_size)``  -> dg = conv2d(h, w),      dw = backward_weight(g, h)
- ``conv2d_backward_weight(g, x; kernel_size)`` -> dg = conv2d(x, h),      dx = backward_input(g, h)

A transposed convolution *is* the input-gradient of a convolution, so
:func:`conv_transpose2d` is ``conv2d_backward_input`` with the output size worked out.

The backward ops accept a gradient smaller than the full convolution output
(positions past its end count as zero); ``conv_transpose2d`` with
``output_padding >= stride`` (allowed when ``dilation`` is larger) needs that.

Example:
    >>> import rustyasg.core as rg
    >>> x, w = rg.input((None, 3, 32, 32), name="x"), rg.input((8, 3, 3, 3), name="w")
    >>> rg.conv2d(x, w, stride=2, padding=1).shape
    (Dim(x.0), 8, 16, 16)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..registry import Attr, Example, InputSpec, TensorType, as_int, as_pair
from ..builders import builder
from ._define import defop
from ._nn_checks import require_floating, require_non_negative, require_positive, require_rank, static_dims, user_error
from .movement import slice_
from .window_geometry import conv_output_size, conv_transpose_output_size, effective_kernel

_HYPER = {"stride": Attr(as_pair, (1, 1), "step between windows (int or (h, w))"),
          "padding": Attr(as_pair, (0, 0), "zeros added on both sides (int or (h, w))"),
          "dilation": Attr(as_pair, (1, 1), "spacing between kernel taps (int or (h, w))"),
          "groups": Attr(as_int, 1, "channel groups; input and output channels must divide by it")}


# --- shape rules ---------------------------------------------------------------------
def _check_hyper(stride, padding, dilation, groups):
    require_positive("stride", stride)
    require_non_negative("padding", padding)
    require_positive("dilation", dilation)
    require_positive("groups", (groups,))


def _check_groups(in_channels, out_channels, weight_in, groups, weight_shape):
    if in_channels % groups:
        raise ValueError(f"input channels {in_channels} are not divisible by groups={groups}")
    if out_channels % groups:
        raise ValueError(f"output channels {out_channels} are not divisible by groups={groups}")
    if weight_in * groups != in_channels:
        raise ValueError(f"channel mismatch: weight {tuple(weight_shape)} takes {weight_in} channels per group "
                         f"(x groups={groups} = {weight_in * groups}), but the input has {in_channels}")


def _output_hw(hw, kernel, stride, padding, dilation):
    out = tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation))
    if min(out) <= 0:
        span = tuple(effective_kernel(k, d) for k, d in zip(kernel, dilation))
        padded = tuple(n + 2 * p for n, p in zip(hw, padding))
        raise ValueError(f"kernel {tuple(kernel)} (dilation {tuple(dilation)}: spans {span}) is larger than "
                         f"the padded input {padded}")
    return out


def _check_covers(grad_hw, hw, kernel, stride, padding, dilation, size_name):
    full = _output_hw(hw, kernel, stride, padding, dilation)
    if grad_hw[0] > full[0] or grad_hw[1] > full[1]:
        raise ValueError(f"gradient spatial size {tuple(grad_hw)} exceeds the convolution output {full} "
                         f"of {size_name} {tuple(hw)}")


def _conv2d_infer(ts, stride, padding, dilation, groups):
    x, w = ts
    require_rank(x, 4, "input", "(N, C, H, W)")
    require_rank(w, 4, "weight", "(O, C/groups, kh, kw)")
    require_floating(x, w)
    _check_hyper(stride, padding, dilation, groups)
    C, H, W = static_dims(x, (1, 2, 3), "conv2d")
    O, Cg, kh, kw = static_dims(w, (0, 1, 2, 3), "conv2d")
    _check_groups(C, O, Cg, groups, w.shape)
    oh, ow = _output_hw((H, W), (kh, kw), stride, padding, dilation)
    return TensorType((x.shape[0], O, oh, ow), x.dtype)


def _backward_input_infer(ts, input_size, stride, padding, dilation, groups):
    g, w = ts
    require_rank(g, 4, "gradient", "(N, O, OH, OW)")
    require_rank(w, 4, "weight", "(O, C/groups, kh, kw)")
    require_floating(g, w)
    _check_hyper(stride, padding, dilation, groups)
    require_positive("input_size", input_size)
    O, OH, OW = static_dims(g, (1, 2, 3), "conv2d_backward_input")
    Ow, Cg, kh, kw = static_dims(w, (0, 1, 2, 3), "conv2d_backward_input")
    if O != Ow:
        raise ValueError(f"channel mismatch: the gradient has {O} channels, the weight {tuple(w.shape)} has {Ow} "
                         "output channels")
    _check_groups(Cg * groups, O, Cg, groups, w.shape)
    _check_covers((OH, OW), input_size, (kh, kw), stride, padding, dilation, "input size")
    return TensorType((g.shape[0], Cg * groups) + tuple(input_size), g.dtype)


def _backward_weight_infer(ts, kernel_size, stride, padding, dilation, groups):
    g, x = ts
    require_rank(g, 4, "gradient", "(N, O, OH, OW)")
    require_rank(x, 4, "input", "(N, C, H, W)")
    require_floating(g, x)
    _check_hyper(stride, padding, dilation, groups)
    require_positive("kernel_size", kernel_size)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"batch sizes differ: gradient {g.shape[0]} vs input {x.shape[0]}")
    O, OH, OW = static_dims(g, (1, 2, 3), "conv2d_backward_weight")
    C, H, W = static_dims(x, (1, 2, 3), "conv2d_backward_weight")
    if C % groups:
        raise ValueError(f"input channels {C} are not divisible by groups={groups}")
    _check_groups(C, O, C // groups, groups, (O, C // groups) + tuple(kernel_size))
    _check_covers((OH, OW), (H, W), kernel_size, stride, padding, dilation, "input")
    return TensorType((O, C // groups) + tuple(kernel_size), g.dtype)


# --- float64 references ----------------------------------------------------------------
def _windows(x, kernel, stride, padding, dilation, out_hw, groups):
    """im2col as a strided view: ``(N, groups, C/groups, OH, OW, kh, kw)`` of the zero-padded input."""
    (p0, p1), (s0, s1), (d0, d1) = padding, stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (p0, p0), (p1, p1)))
    n, c = x.shape[:2]
    sn, sc, sh, sw = xp.strides
    view = as_strided(xp, (n, groups, c // groups) + tuple(out_hw) + tuple(kernel),
                      (sn, sc * (c // groups), sc, sh * s0, sw * s1, sh * d0, sw * d1), writeable=False)
    return view


def _conv2d_ref(x, w, stride, padding, dilation, groups):
    out_hw = _output_hw(x.shape[2:], w.shape[2:], stride, padding, dilation)
    cols = _windows(x, w.shape[2:], stride, padding, dilation, out_hw, groups)
    wg = w.reshape((groups, w.shape[0] // groups) + w.shape[1:])
    out = np.einsum("ngchwij,gocij->ngohw", cols, wg, optimize=True)
    return out.reshape((x.shape[0], w.shape[0]) + out_hw)


def _backward_weight_ref(g, x, kernel_size, stride, padding, dilation, groups):
    n, o = g.shape[:2]
    cols = _windows(x, kernel_size, stride, padding, dilation, g.shape[2:], groups)
    gg = g.reshape((n, groups, o // groups) + g.shape[2:])
    dw = np.einsum("ngohw,ngchwij->gocij", gg, cols, optimize=True)
    return dw.reshape((o, x.shape[1] // groups) + tuple(kernel_size))


def _backward_input_ref(g, w, input_size, stride, padding, dilation, groups):
    n, o, oh, ow = g.shape
    cg, kh, kw = w.shape[1:]
    (p0, p1), (s0, s1), (d0, d1) = padding, stride, dilation
    gg = g.reshape(n, groups, o // groups, oh, ow)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    cols = np.einsum("ngohw,gocij->ngcijhw", gg, wg, optimize=True).reshape(n, groups * cg, kh, kw, oh, ow)
    dxp = np.zeros((n, groups * cg, input_size[0] + 2 * p0, input_size[1] + 2 * p1))
    for i in range(kh):  # one strided add per kernel tap (col2im)
        for j in range(kw):
            dxp[:, :, i * d0:i * d0 + s0 * (oh - 1) + 1:s0, j * d1:j * d1 + s1 * (ow - 1) + 1:s1] += cols[:, :, i, j]
    return dxp[:, :, p0:p0 + input_size[0], p1:p1 + input_size[1]]


# --- gradient rules ------------------------------------------------------------------------
def _crop(t, hw):
    """The first ``hw`` output positions of ``t`` (the backward ops may see a shorter gradient)."""
    if tuple(t.shape[2:]) == tuple(hw):
        return t
    return slice_(t, starts=(0, 0, 0, 0), stops=(None, None) + tuple(hw), steps=(1, 1, 1, 1))


def _conv2d_grad(g, y, x, w, **hp):
    return (conv2d_backward_input(g, w, input_size=x.shape[2:], **hp),
            conv2d_backward_weight(g, x, kernel_size=w.shape[2:], **hp))


def _backward_input_grad(h, y, g, w, input_size, **hp):
    return (_crop(conv2d(h, w, **hp), g.shape[2:]),
            conv2d_backward_weight(g, h, kernel_size=w.shape[2:], **hp))


def _backward_weight_grad(h, y, g, x, kernel_size, **hp):
    return (_crop(conv2d(x, h, **hp), g.shape[2:]),
            conv2d_backward_input(g, h, input_size=x.shape[2:], **hp))


# --- declarations -----------------------------------------------------------------------
def _hp(stride=1, padding=0, dilation=1, groups=1):
    """Complete, canonical attributes for an example (the kit hands them to the reference as given)."""
    return {"stride": as_pair(stride), "padding": as_pair(padding), "dilation": as_pair(dilation), "groups": groups}


_X = InputSpec
conv2d = defop(
    "conv2d", infer=_conv2d_infer, reference=_conv2d_ref, grad=_conv2d_grad, attrs=_HYPER, kind="nn",
    num_inputs=2, promote=True, precision="low",
    examples=(Example((_X((2, 3, 5, 5)), _X((4, 3, 3, 3))), _hp()),
              Example((_X((1, 4, 6, 5)), _X((6, 2, 3, 2))), _hp((2, 1), (1, 2), (1, 2), 2)),
              Example((_X((2, 2, 7, 6)), _X((2, 1, 3, 3))), _hp(2, 1, 2, 2))),
    doc="""2-D cross-correlation (``torch.nn.functional.conv2d`` without bias).

    ``x``: ``(N, C, H, W)``; ``w``: ``(O, C/groups, kh, kw)``; output ``(N, O, OH, OW)`` with
    ``OH = (H + 2*padding - dilation*(kh-1) - 1) // stride + 1``.

    >>> import rustyasg.core as rg
    >>> rg.conv2d(rg.input((2, 4, 9, 9)), rg.input((6, 2, 3, 3)), groups=2, dilation=2).shape
    (2, 6, 5, 5)
    """)

conv2d_backward_input = defop(
    "conv2d_backward_input", infer=_backward_input_infer, reference=_backward_input_ref, grad=_backward_input_grad,
    attrs={"input_size": Attr(as_pair, doc="(H, W) of the convolution's input"), **_HYPER}, kind="nn",
    num_inputs=2, promote=True, precision="low",
    examples=(Example((_X((2, 4, 3, 3)), _X((4, 3, 3, 3))), {"input_size": (5, 5), **_hp()}),
              Example((_X((1, 6, 4, 8)), _X((6, 2, 3, 2))), {"input_size": (7, 6), **_hp((2, 1), (1, 2), (1, 2), 2)}),
              Example((_X((2, 2, 2, 3)), _X((2, 1, 3, 3))), {"input_size": (6, 7), **_hp(2, 1, 2, 2)}),
              # a gradient shorter than the full output (conv_transpose2d with output_padding >= stride)
              Example((_X((1, 2, 3, 3)), _X((2, 3, 3, 3))), {"input_size": (8, 8), **_hp(1, 0, 2)})),
    doc="""Gradient of ``conv2d`` with respect to its input: ``(N, O, OH, OW), (O, C/g, kh, kw) -> (N, C, H, W)``.

    ``input_size`` is the ``(H, W)`` of the input (striding loses it).

    >>> import rustyasg.core as rg
    >>> rg.conv2d_backward_input(rg.input((2, 8, 4, 4)), rg.input((8, 3, 3, 3)), input_size=(8, 8),
    ...                          stride=2, padding=1).shape
    (2, 3, 8, 8)
    """)

conv2d_backward_weight = defop(
    "conv2d_backward_weight", infer=_backward_weight_infer, reference=_backward_weight_ref,
    grad=_backward_weight_grad,
    attrs={"kernel_size": Attr(as_pair, doc="(kh, kw) of the weight"), **_HYPER}, kind="nn",
    num_inputs=2, promote=True, precision="low",
    examples=(Example((_X((2, 4, 3, 3)), _X((2, 3, 5, 5))), {"kernel_size": (3, 3), **_hp()}),
              Example((_X((1, 6, 3, 7)), _X((1, 4, 6, 5))), {"kernel_size": (3, 2), **_hp((2, 1), (1, 2), (1, 2), 2)}),
              Example((_X((2, 2, 3, 2)), _X((2, 2, 7, 6))), {"kernel_size": (3, 3), **_hp(2, 1, 2, 2)}),
              Example((_X((1, 2, 3, 3)), _X((1, 3, 8, 8))), {"kernel_size": (3, 3), **_hp(1, 0, 2)})),
    doc="""Gradient of ``conv2d`` with respect to its weight: ``(N, O, OH, OW), (N, C, H, W) -> (O, C/g, kh, kw)``.

    >>> import rustyasg.core as rg
    >>> rg.conv2d_backward_weight(rg.input((2, 8, 4, 4)), rg.input((2, 3, 8, 8)), kernel_size=3,
    ...                           stride=2, padding=1).shape
    (8, 3, 3, 3)
    """)


def _transpose_output_hw(x, w, stride, padding, output_padding, groups, dilation):
    require_rank(x, 4, "input", "(N, C_in, H, W)")
    require_rank(w, 4, "weight", "(C_in, C_out/groups, kh, kw)")
    require_floating(x, w)
    _check_hyper(stride, padding, dilation, groups)
    require_non_negative("output_padding", output_padding)
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"output_padding {tuple(output_padding)} must be smaller than either stride "
                             f"{tuple(stride)} or dilation {tuple(dilation)}")
    C, H, W = static_dims(x, (1, 2, 3), "conv_transpose2d")
    Cw, _, kh, kw = static_dims(w, (0, 1, 2, 3), "conv_transpose2d")
    if C != Cw:
        raise ValueError(f"channel mismatch: the input has {C} channels, the weight {tuple(w.shape)} takes {Cw}")
    if C % groups:
        raise ValueError(f"input channels {C} are not divisible by groups={groups}")
    out = tuple(conv_transpose_output_size(n, k, s, p, d, op) for n, k, s, p, d, op
                in zip((H, W), (kh, kw), stride, padding, dilation, output_padding))
    if min(out) <= 0:
        raise ValueError(f"the output size {out} is not positive (padding {tuple(padding)} is too large)")
    return out


@builder()
def conv_transpose2d(x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1, name=None):
    """Transposed 2-D convolution (``torch.nn.functional.conv_transpose2d`` without bias).

    ``x``: ``(N, C_in, H, W)``; ``w``: ``(C_in, C_out/groups, kh, kw)``; output
    ``(N, C_out, (H-1)*stride - 2*padding + dilation*(kh-1) + output_padding + 1, ...)``.
    It is the input-gradient of a convolution, so it is built as ``conv2d_backward_input``.

    >>> import rustyasg.core as rg
    >>> rg.conv_transpose2d(rg.input((1, 8, 4, 4)), rg.input((8, 3, 3, 3)), stride=2, padding=1,
    ...                     output_padding=1).shape
    (1, 3, 8, 8)
    """
    from ..graph import as_tensor

    x, w = as_tensor(x), as_tensor(w)
    stride, padding, dilation, output_padding = (as_pair(v) for v in (stride, padding, dilation, output_padding))
    try:
        out_hw = _transpose_output_hw(x, w, stride, padding, output_padding, int(groups), dilation)
    except (ValueError, TypeError) as exc:
        raise user_error("conv_transpose2d", exc, (x, w)) from None
    return conv2d_backward_input(x, w, input_size=out_hw, stride=stride, padding=padding, dilation=dilation,
                                 groups=groups, name=name)
