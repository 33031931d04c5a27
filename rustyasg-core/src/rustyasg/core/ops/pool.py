"""2-D pooling over ``(N, C, H, W)``: max, average and their adaptive forms, with PyTorch's semantics.

Two families, each declared by one generator:

- **max** (``max_pool2d``, ``adaptive_max_pool2d``): the op, an ``*_indices`` op (int64
  flat ``h*W + w`` index of each window's maximum in its input plane, PyTorch's
  ``return_indices``) and a ``*_backward(g, x)`` op that routes ``g`` to those maxima.
  One selection rule, PyTorch's: the first maximum in row-major window order, or the last
  NaN when the window holds NaNs (NaN propagates). The backward op's own gradient gathers by the indices.
- **average** (``avg_pool2d``, ``adaptive_avg_pool2d``): the op and ``*_backward(g; input_size)``.
  Both are linear, so each is the other's gradient. Averaging is separable
  (``A_h @ x @ A_w.T`` per plane), which the references use.

Window geometry (output sizes, ceil mode, padding rules, adaptive bounds) lives in
:mod:`.window_geometry` for the backends to share.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((None, 16, 32, 32), name="x")
    >>> rg.max_pool2d(x, 2).shape, rg.adaptive_avg_pool2d(x, (7, 7)).shape[1:]
    ((Dim(x.0), 16, 16, 16), (16, 7, 7))
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType, as_bool, as_pair
from ..shapes import format_shape
from ..builders import builder
from ._define import defop
from ._nn_checks import require_floating, require_non_negative, require_positive, require_rank, static_dims, user_error
from .movement import gather
from .window_geometry import (adaptive_avg_matrix, adaptive_positions, avg_pool_matrix, effective_kernel,
                              pool_output_size, pool_positions)


# --- geometry of each pooling kind (raises ValueError with PyTorch's rules) --------------------
def _check_window(kernel_size, stride, padding, dilation=(1, 1)):
    require_positive("kernel_size", kernel_size)
    require_positive("stride", stride)
    require_positive("dilation", dilation)
    require_non_negative("padding", padding)
    for k, p, d in zip(kernel_size, padding, dilation):
        if p > k // 2 or p > effective_kernel(k, d) // 2:
            raise ValueError(f"padding {tuple(padding)} must be at most half of the kernel size {tuple(kernel_size)}")


def _check_output(hw, out, what):
    if min(out) <= 0:
        raise ValueError(f"{what} gives an empty output {out} for input size {tuple(hw)} (output size is too small)")


def _max_pool_geometry(hw, kernel_size, stride, padding, dilation, ceil_mode):
    _check_window(kernel_size, stride, padding, dilation)
    _check_output(hw, tuple(pool_output_size(*a, ceil_mode) for a in zip(hw, kernel_size, stride, padding, dilation)),
                  f"kernel {tuple(kernel_size)} with stride {tuple(stride)}")
    return tuple(pool_positions(*a, ceil_mode) for a in zip(hw, kernel_size, stride, padding, dilation))


def _adaptive_geometry(hw, output_size):
    require_positive("output_size", output_size)
    return tuple(adaptive_positions(n, o) for n, o in zip(hw, output_size))


def _avg_pool_matrices(hw, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    _check_window(kernel_size, stride, padding)
    _check_output(hw, tuple(pool_output_size(n, k, s, p, 1, ceil_mode)
                            for n, k, s, p in zip(hw, kernel_size, stride, padding)),
                  f"kernel {tuple(kernel_size)} with stride {tuple(stride)}")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("divisor_override must be non-zero")
    # The override divides once: put it on the width axis and 1 on the height axis.
    divisors = (0.0, 0.0) if divisor_override is None else (1.0, float(divisor_override))
    return tuple(avg_pool_matrix(n, k, s, p, ceil_mode, count_include_pad, div)
                 for n, k, s, p, div in zip(hw, kernel_size, stride, padding, divisors))


def _adaptive_avg_matrices(hw, output_size):
    require_positive("output_size", output_size)
    return tuple(adaptive_avg_matrix(n, o) for n, o in zip(hw, output_size))


# --- shared shape rules -----------------------------------------------------------------------
def _plane_hw(x, op):
    require_rank(x, 4, "input", "(N, C, H, W)")
    require_floating(x)
    return static_dims(x, (2, 3), op)


def _pooled_type(x, sizes, dtype=None):
    return TensorType(tuple(x.shape[:2]) + tuple(sizes), x.dtype if dtype is None else dtype)


def _check_grad_shape(g, expected):
    if tuple(g.shape) != tuple(expected.shape):
        raise ValueError(f"gradient shape {format_shape(g.shape)} differs from the pooled output "
                         f"{format_shape(expected.shape)}")
    if g.dtype != expected.dtype:
        raise TypeError(f"gradient dtype {g.dtype} differs from the input's {expected.dtype}")


# --- max family -------------------------------------------------------------------------------
def _argmax_index(x, geometry):
    """Flat ``h*W + w`` input index of each window's maximum, PyTorch's rule.

    PyTorch scans a window in row-major order and takes an element when ``v > best or
    isnan(v)``: the first maximum wins ties (``-0.0`` and ``0.0`` tie), the last NaN wins
    when there are NaNs, and padding never wins (a window of ``-inf`` picks its first
    element inside the input).

    >>> x = np.array([1.0, np.nan, 3.0, np.nan, 2.0, 2.0]).reshape(1, 1, 1, 6)
    >>> whole = ((np.zeros((1, 1), np.int64), np.ones((1, 1), bool)),
    ...          (np.arange(6)[None, :], np.ones((1, 6), bool)))
    >>> _argmax_index(x, whole).item()
    3
    """
    n, c, _, w = x.shape
    (hp, hv), (wp, wv) = geometry
    oh, ow = len(hp), len(wp)
    win = x[:, :, hp[:, None, :, None], wp[None, :, None, :]]            # (N, C, OH, OW, KH, KW)
    valid = np.broadcast_to(hv[:, None, :, None] & wv[None, :, None, :], win.shape).reshape(n, c, oh * ow, -1)
    win = win.reshape(n, c, oh * ow, -1)
    flat = (hp[:, None, :, None] * w + wp[None, :, None, :]).reshape(oh * ow, -1)
    nan = np.isnan(win) & valid
    best = np.max(np.where(valid, win, -np.inf), axis=-1, keepdims=True)
    first_max = np.argmax(valid & (win == best), axis=-1)
    last_nan = nan.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    k = np.where(nan.any(axis=-1), last_nan, first_max)
    return flat[np.arange(oh * ow), k].reshape(n, c, oh, ow)


def _define_max_pool(name, geometry, attrs, examples, doc):
    """Declare ``name``, ``name_indices`` and ``name_backward`` for a max pooling with ``geometry(hw, **attrs)``."""

    def infer(ts, **kw):
        x = ts[0]
        pos = geometry(_plane_hw(x, name), **kw)
        return _pooled_type(x, (len(pos[0][0]), len(pos[1][0])))

    def indices_ref(x, **kw):
        return _argmax_index(x, geometry(x.shape[2:], **kw)).astype(np.int64)

    def forward_ref(x, **kw):
        idx = indices_ref(x, **kw)
        n, c = x.shape[:2]
        return np.take_along_axis(x.reshape(n, c, -1), idx.reshape(n, c, -1), axis=2).reshape(idx.shape)

    def backward_infer(ts, **kw):
        g, x = ts
        _check_grad_shape(g, infer([x], **kw))
        return x

    def backward_ref(g, x, **kw):
        idx = indices_ref(x, **kw)
        n, c, h, w = x.shape
        plane = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
        return np.bincount((plane + idx).ravel(), weights=g.ravel(), minlength=x.size).reshape(x.shape)

    def backward_grad(hh, y, g, x, **kw):
        # The unpool is linear in g: its transpose picks h at each window's argmax.
        n, c, h, w = x.shape
        idx = indices(x, **kw).reshape((n, c, -1))
        return gather(hh.reshape((n, c, h * w)), idx, axis=2).reshape(g.shape), None

    forward = defop(name, infer=infer, reference=forward_ref, grad=lambda g, y, x, **kw: (backward(g, x, **kw),),
                    attrs=attrs, kind="nn", examples=examples, doc=doc)
    indices = defop(f"{name}_indices", infer=lambda ts, **kw: TensorType(infer(ts, **kw).shape, dtypes.int64),
                    reference=indices_ref, grad=lambda g, y, x, **kw: (None,), attrs=attrs, kind="nn",
                    examples=tuple(Example(e.inputs, e.attrs, check_grad=False) for e in examples),
                    doc=f"Flat ``h*W + w`` index into each input plane of every ``{name}`` window's maximum "
                        "(PyTorch's ``return_indices``); the first maximum on ties, the last NaN if any.")
    backward = defop(f"{name}_backward", infer=backward_infer, reference=backward_ref, grad=backward_grad,
                     attrs=attrs, kind="nn", num_inputs=2,
                     examples=tuple(Example((InputSpec(_out_shape(infer, e)), e.inputs[0]), e.attrs)
                                    for e in examples),
                     doc=f"Gradient of ``{name}``: ``g`` routed to each window's maximum in ``x`` "
                         "(the first on ties, the last NaN if any, as PyTorch); overlapping windows add up.")
    return forward, indices, backward


def _out_shape(infer, example):
    """Output shape of a forward example (to build the backward op's examples from it)."""
    return tuple(infer([TensorType(example.inputs[0].shape, dtypes.float64)], **example.attrs).shape)


# --- average family -----------------------------------------------------------------------------
def _weighted_windows(x, weights, axis):
    """``weights @ x`` along ``axis``, summing only each row's window (its nonzero weights).

    A dense product would multiply every element outside the window by 0, and a NaN or inf
    there would spread to every output (``nan * 0`` is NaN); here an output sees only the
    elements of its own window, as in PyTorch.

    >>> x = np.array([1.0, np.nan, 3.0, 5.0])
    >>> _weighted_windows(x, np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]), 0).tolist()
    [nan, 4.0]
    """
    rows = [np.flatnonzero(r) for r in weights]
    width = max((len(r) for r in rows), default=0)
    index = np.zeros((len(rows), width), np.intp)
    weight = np.zeros((len(rows), width), weights.dtype)
    inside = np.zeros((len(rows), width), bool)
    for i, cols in enumerate(rows):
        index[i, :len(cols)], weight[i, :len(cols)], inside[i, :len(cols)] = cols, weights[i, cols], True
    gathered = np.take(np.moveaxis(x, axis, -1), index, axis=-1)  # (..., out, width)
    summed = np.where(inside, gathered * weight, 0).sum(axis=-1).astype(x.dtype, copy=False)
    return np.moveaxis(summed, -1, axis)


def _define_avg_pool(name, matrices, attrs, examples, doc):
    """Declare ``name`` and ``name_backward`` for a separable average pooling ``matrices(hw, **attrs)``."""

    def infer(ts, **kw):
        x = ts[0]
        ah, aw = matrices(_plane_hw(x, name), **kw)
        return _pooled_type(x, (ah.shape[0], aw.shape[0]))

    def forward_ref(x, **kw):
        ah, aw = matrices(x.shape[2:], **kw)
        return _weighted_windows(_weighted_windows(x, ah, 2), aw, 3)

    def backward_infer(ts, input_size, **kw):
        g = ts[0]
        require_positive("input_size", input_size)
        x_type = TensorType(tuple(g.shape[:2]) + tuple(input_size), g.dtype)
        _check_grad_shape(g, infer([x_type], **kw))
        return x_type

    def backward_ref(g, input_size, **kw):
        ah, aw = matrices(tuple(input_size), **kw)
        return _weighted_windows(_weighted_windows(g, ah.T, 2), aw.T, 3)

    forward = defop(name, infer=infer, reference=forward_ref,
                    grad=lambda g, y, x, **kw: (backward(g, input_size=x.shape[2:], **kw),),
                    attrs=attrs, kind="nn", examples=examples, doc=doc)
    backward = defop(f"{name}_backward", infer=backward_infer, reference=backward_ref,
                     grad=lambda h, y, g, input_size, **kw: (forward(h, **kw),),
                     attrs={"input_size": Attr(as_pair, doc="(H, W) of the pooled input"), **attrs}, kind="nn",
                     examples=tuple(Example((InputSpec(_out_shape(infer, e)),),
                                            {"input_size": e.inputs[0].shape[2:], **e.attrs}) for e in examples),
                     doc=f"Gradient of ``{name}`` (its transpose): spreads ``g`` back over each window.")
    return forward, backward


# --- declarations -------------------------------------------------------------------------------
def _opt_int(v):
    return None if v is None else int(v)


_WINDOW = {"kernel_size": Attr(as_pair, doc="(kh, kw)"), "stride": Attr(as_pair, doc="(sh, sw); the user "
           "functions default it to kernel_size"), "padding": Attr(as_pair, (0, 0)),
           "ceil_mode": Attr(as_bool, False, "round the output size up (windows may run past the end)")}
_ADAPTIVE = {"output_size": Attr(as_pair, doc="(OH, OW)")}


def _ex(shape, **attrs):
    return Example((InputSpec(shape),), attrs)


def _win(kernel, stride, padding, ceil_mode, **extra):
    return {"kernel_size": as_pair(kernel), "stride": as_pair(stride), "padding": as_pair(padding),
            "ceil_mode": ceil_mode, **extra}


_max_pool2d, _max_pool2d_indices, max_pool2d_backward = _define_max_pool(
    "max_pool2d", _max_pool_geometry,
    {**_WINDOW, "dilation": Attr(as_pair, (1, 1))},
    (_ex((2, 3, 6, 6), **_win(2, 2, 0, False, dilation=(1, 1))),
     _ex((1, 2, 7, 6), **_win((3, 2), (2, 1), 1, True, dilation=(1, 2))),
     _ex((1, 2, 5, 5), **_win(3, 2, 1, True, dilation=(2, 2)))),
    "Max pooling (``torch.nn.functional.max_pool2d``); padding is -inf. Use :func:`max_pool2d`.")

_avg_pool2d, avg_pool2d_backward = _define_avg_pool(
    "avg_pool2d", _avg_pool_matrices,
    {**_WINDOW, "count_include_pad": Attr(as_bool, True, "zero padding counts in the divisor"),
     "divisor_override": Attr(_opt_int, None, "divide every window by this instead")},
    (_ex((2, 3, 6, 6), **_win(2, 2, 0, False, count_include_pad=True, divisor_override=None)),
     _ex((1, 2, 7, 6), **_win((3, 2), (2, 1), 1, True, count_include_pad=False, divisor_override=None)),
     _ex((1, 2, 5, 5), **_win(3, 2, 1, True, count_include_pad=True, divisor_override=5)),
     _ex((1, 1, 6, 5), **_win(3, 2, 1, True, count_include_pad=True, divisor_override=None))),
    "Average pooling (``torch.nn.functional.avg_pool2d``). Use :func:`avg_pool2d`.")

_adaptive_max_pool2d, _adaptive_max_pool2d_indices, adaptive_max_pool2d_backward = _define_max_pool(
    "adaptive_max_pool2d", _adaptive_geometry, _ADAPTIVE,
    (_ex((2, 3, 7, 5), output_size=(3, 2)), _ex((1, 2, 2, 3), output_size=(3, 4))),
    "Adaptive max pooling to ``output_size`` (window ``i`` spans ``floor(i*H/OH)`` to "
    "``ceil((i+1)*H/OH)``). Use :func:`adaptive_max_pool2d`.")

_adaptive_avg_pool2d, adaptive_avg_pool2d_backward = _define_avg_pool(
    "adaptive_avg_pool2d", _adaptive_avg_matrices, _ADAPTIVE,
    (_ex((2, 3, 7, 5), output_size=(3, 2)), _ex((1, 2, 2, 3), output_size=(3, 4)),
     _ex((2, 2, 4, 3), output_size=(1, 1))),
    "Adaptive average pooling to ``output_size``. Use :func:`adaptive_avg_pool2d`.")


# --- user functions (PyTorch's signatures and defaults) -----------------------------------------
def _window_attrs(kernel_size, stride, padding, ceil_mode):
    kernel_size = as_pair(kernel_size)
    stride = kernel_size if stride is None or stride == () else as_pair(stride)
    return {"kernel_size": kernel_size, "stride": stride, "padding": as_pair(padding), "ceil_mode": bool(ceil_mode)}


@builder()
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, name=None):
    """Max pooling over ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``.

    >>> import rustyasg.core as rg
    >>> rg.max_pool2d(rg.input((1, 3, 7, 7)), 3, stride=2, ceil_mode=True).shape
    (1, 3, 3, 3)
    """
    return _max_pool2d(x, name=name, dilation=dilation, **_window_attrs(kernel_size, stride, padding, ceil_mode))


@builder()
def max_pool2d_indices(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, name=None):
    """int64 flat ``h*W + w`` positions of :func:`max_pool2d`'s maxima (PyTorch's ``return_indices``).

    >>> import rustyasg.core as rg
    >>> rg.max_pool2d_indices(rg.input((1, 3, 4, 4)), 2).dtype
    dtype('int64')
    """
    return _max_pool2d_indices(x, name=name, dilation=dilation,
                               **_window_attrs(kernel_size, stride, padding, ceil_mode))


@builder()
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, name=None):
    """Average pooling over ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``.

    >>> import rustyasg.core as rg
    >>> rg.avg_pool2d(rg.input((2, 3, 8, 8)), 2).shape
    (2, 3, 4, 4)
    """
    return _avg_pool2d(x, name=name, count_include_pad=count_include_pad, divisor_override=divisor_override,
                       **_window_attrs(kernel_size, stride, padding, ceil_mode))


def _output_size(op, x, output_size):
    """Resolve PyTorch's ``None`` entries (keep that input size) of an adaptive ``output_size``."""
    from ..graph import as_tensor

    x = as_tensor(x)
    size = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or x.ndim != 4:
        raise user_error(op, ValueError(f"needs an (N, C, H, W) input and an int or (OH, OW) output_size, "
                                        f"got output_size={output_size!r}"), (x,))
    if any(s is None and not isinstance(d, int) for s, d in zip(size, x.shape[2:])):
        raise user_error(op, ValueError("output_size None keeps a symbolic input size; give it explicitly"), (x,))
    return x, tuple(d if s is None else s for s, d in zip(size, x.shape[2:]))


@builder()
def adaptive_avg_pool2d(x, output_size, name=None):
    """Average pooling to a fixed ``output_size`` (an int, a pair, ``None`` keeps that input size).

    >>> import rustyasg.core as rg
    >>> rg.adaptive_avg_pool2d(rg.input((2, 3, 10, 9)), (4, None)).shape
    (2, 3, 4, 9)
    """
    x, size = _output_size("adaptive_avg_pool2d", x, output_size)
    return _adaptive_avg_pool2d(x, output_size=size, name=name)


@builder()
def adaptive_max_pool2d(x, output_size, name=None):
    """Max pooling to a fixed ``output_size`` (an int, a pair, ``None`` keeps that input size).

    >>> import rustyasg.core as rg
    >>> rg.adaptive_max_pool2d(rg.input((2, 3, 10, 9)), 3).shape
    (2, 3, 3, 3)
    """
    x, size = _output_size("adaptive_max_pool2d", x, output_size)
    return _adaptive_max_pool2d(x, output_size=size, name=name)


@builder()
def adaptive_max_pool2d_indices(x, output_size, name=None):
    """int64 flat ``h*W + w`` positions of :func:`adaptive_max_pool2d`'s maxima (PyTorch's ``return_indices``).

    >>> import rustyasg.core as rg
    >>> rg.adaptive_max_pool2d_indices(rg.input((2, 3, 10, 9)), 3).describe()
    'int64(2, 3, 3, 3)'
    """
    x, size = _output_size("adaptive_max_pool2d_indices", x, output_size)
    return _adaptive_max_pool2d_indices(x, output_size=size, name=name)


@builder()
def global_avg_pool2d(x, name=None):
    """Mean over the spatial axes, keeping them as size 1: ``(N, C, H, W) -> (N, C, 1, 1)``.

    >>> import rustyasg.core as rg
    >>> rg.global_avg_pool2d(rg.input((2, 8, 5, 5))).shape
    (2, 8, 1, 1)
    """
    return adaptive_avg_pool2d(x, (1, 1), name=name)
