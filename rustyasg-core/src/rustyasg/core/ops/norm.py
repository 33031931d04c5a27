"""Normalization ops: ``layer_norm`` and ``batch_norm`` (training form), each with a backward op.

Both normalize ``x`` over a set of *statistic axes* with the biased variance, then
scale and shift by ``gamma`` and ``beta``:
``y = (x - mean) / sqrt(var + eps) * gamma + beta``. They differ only in the layout:

- ``layer_norm``: statistics over the last ``normalized_ndim`` axes; ``gamma``/``beta``
  have exactly those axes' shape.
- ``batch_norm``: statistics over every axis but the channel ``axis`` (1, as PyTorch);
  ``gamma``/``beta`` are ``(C,)``. Running statistics are the nn package's business.

One generator declares both pairs, so they share the reference, the shape rule and
the gradient rules. With ``xh`` the normalized input, ``r = 1/sqrt(var + eps)`` and
``a = g * gamma``, the backward op is ``dx = r * (a - mean(a) - xh * mean(a * xh))``;
``dgamma = sum(g * xh)`` and ``dbeta = sum(g)`` over the other axes are reduce ops.
The backward op has its own (closed-form) gradient rule, so double backward works.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((None, 10, 64), name="x")
    >>> rg.layer_norm(x, rg.input((64,)), rg.input((64,))).shape
    (Dim(x.0), 10, 64)
"""

from __future__ import annotations

import numpy as np

from ..registry import Attr, Example, InputSpec, as_float, as_int
from ..shapes import format_shape, normalize_axis
from ..builders import builder
from ._define import defop
from ._nn_checks import require_floating, user_error
from .elementwise import rsqrt
from .misc import ones_like_scalar
from .movement import zeros_like_shape
from .reduce import mean, sum_to, var


# --- layouts: (statistic axes, parameter shape, parameter view for broadcasting) --------------
def _layer_norm_layout(shape, normalized_ndim, eps):
    k = normalized_ndim
    if not 1 <= k <= len(shape):
        raise ValueError(f"normalized_ndim={k} must be between 1 and the rank {len(shape)} of {format_shape(shape)}")
    params = tuple(shape[len(shape) - k:])
    return tuple(range(len(shape) - k, len(shape))), params, params


def _batch_norm_layout(shape, axis, eps):
    if len(shape) < 2:
        raise ValueError(f"needs a batch and a channel axis (rank >= 2), got shape {format_shape(shape)}")
    ax = normalize_axis(axis, len(shape))
    stats = tuple(i for i in range(len(shape)) if i != ax)
    count = [shape[i] for i in stats]
    if all(isinstance(d, int) for d in count) and int(np.prod(count)) <= 1:
        raise ValueError(f"expected more than 1 value per channel when training, got shape {format_shape(shape)}")
    return stats, (shape[ax],), (shape[ax],) + (1,) * (len(shape) - ax - 1)


# --- references ----------------------------------------------------------------------------------
def _normalized(x, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    r = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return (x - mu) * r, r


def _param_view(t, view):
    return t if tuple(t.shape) == tuple(view) else t.reshape(view)


def _define_norm(name, layout, attrs, examples, backward_examples, doc):
    """Declare ``name(x, gamma, beta)`` and ``name_backward(g, x, gamma)`` for ``layout(shape, **attrs)``."""

    def check(x, params, **kw):
        require_floating(x, *params)
        _, pshape, _ = layout(x.shape, **kw)
        for what, p in zip(("gamma", "beta"), params):
            if tuple(p.shape) != tuple(pshape):
                raise ValueError(f"{what} shape {format_shape(p.shape)} must be {format_shape(pshape)} "
                                 f"for input {format_shape(x.shape)}")

    def infer(ts, **kw):
        x, gamma, beta = ts
        check(x, (gamma, beta), **kw)
        return x

    def backward_infer(ts, **kw):
        g, x, gamma = ts
        if tuple(g.shape) != tuple(x.shape):
            raise ValueError(f"gradient shape {format_shape(g.shape)} differs from the input's {format_shape(x.shape)}")
        check(x, (gamma,), **kw)
        return x

    def forward_ref(x, gamma, beta, **kw):
        axes, _, view = layout(x.shape, **kw)
        xh, _ = _normalized(x, axes, kw["eps"])
        return xh * gamma.reshape(view) + beta.reshape(view)

    def backward_ref(g, x, gamma, **kw):
        axes, _, view = layout(x.shape, **kw)
        xh, r = _normalized(x, axes, kw["eps"])
        a = g * gamma.reshape(view)
        return r * (a - a.mean(axis=axes, keepdims=True) - xh * (a * xh).mean(axis=axes, keepdims=True))

    def to_param(t, x, **kw):
        """Sum ``t`` (shaped like x) over the axes that gamma does not have."""
        _, pshape, view = layout(x.shape, **kw)
        s = sum_to(t, shape=view)
        return s if tuple(view) == tuple(pshape) else s.reshape(pshape)

    def forward_grad(g, y, x, gamma, beta, **kw):
        xh = forward(x, ones_like_scalar(gamma), zeros_like_shape(beta), **kw)
        return backward(g, x, gamma, **kw), to_param(g * xh, x, **kw), to_param(g, x, **kw)

    def backward_grad(h, dx, g, x, gamma, **kw):
        # dx = J a with a = g*gamma and J = d(xh)/dx, which is symmetric: so d<h,dx>/da = J h.
        # The x-derivative differentiates r, xh and mean(a*xh) inside J (closed form, checked by the kit).
        axes, _, view = layout(x.shape, **kw)

        def avg(t):
            return mean(t, axis=axes, keepdims=True)

        r = rsqrt(var(x, axis=axes, keepdims=True, correction=0) + kw["eps"])
        xh = (x - avg(x)) * r
        gv = _param_view(gamma, view)
        jh = backward(h, x, ones_like_scalar(gamma), **kw)
        grad_x = -r * (xh * avg(h * dx) + avg(h * xh) * dx + avg(g * gv * xh) * jh)
        return jh * gv, grad_x, to_param(jh * g, x, **kw)

    forward = defop(name, infer=infer, reference=forward_ref, grad=forward_grad, attrs=attrs, kind="nn",
                    num_inputs=3, promote=True, examples=examples, doc=doc, precision="float32")
    backward = defop(f"{name}_backward", infer=backward_infer, reference=backward_ref, grad=backward_grad,
                     attrs=attrs, kind="nn", num_inputs=3, promote=True, examples=backward_examples, precision="float32",
                     doc=f"Gradient of ``{name}`` with respect to ``x``: ``(g, x, gamma) -> dx``, "
                         "through the mean and the variance.")
    return forward, backward


def _ex(x_shape, p_shape, n_params, **attrs):
    return Example((InputSpec(x_shape),) * (3 - n_params) + (InputSpec(p_shape),) * n_params, attrs)


_layer_norm, layer_norm_backward = _define_norm(
    "layer_norm", _layer_norm_layout,
    {"normalized_ndim": Attr(as_int, 1, "how many trailing axes are normalized"), "eps": Attr(as_float, 1e-5)},
    (_ex((3, 5), (5,), 2, normalized_ndim=1, eps=1e-5), _ex((2, 3, 4), (3, 4), 2, normalized_ndim=2, eps=1e-3)),
    (_ex((3, 5), (5,), 1, normalized_ndim=1, eps=1e-5), _ex((2, 3, 4), (3, 4), 1, normalized_ndim=2, eps=1e-3)),
    "Layer normalization over the last ``normalized_ndim`` axes. Use :func:`layer_norm`.")

_batch_norm, batch_norm_backward = _define_norm(
    "batch_norm", _batch_norm_layout,
    {"axis": Attr(as_int, 1, "the channel axis"), "eps": Attr(as_float, 1e-5)},
    (_ex((4, 3), (3,), 2, axis=1, eps=1e-5), _ex((2, 3, 2, 3), (3,), 2, axis=1, eps=1e-5),
     _ex((3, 2, 4), (4,), 2, axis=-1, eps=1e-3)),
    (_ex((4, 3), (3,), 1, axis=1, eps=1e-5), _ex((2, 3, 2, 3), (3,), 1, axis=1, eps=1e-5),
     _ex((3, 2, 4), (4,), 1, axis=-1, eps=1e-3)),
    "Batch normalization with batch statistics (training form). Use :func:`batch_norm`.")


# --- user functions ---------------------------------------------------------------------------------
def _with_params(op, layout, x, gamma, beta, **attrs):
    """Fill a missing ``gamma``/``beta`` with constant ones/zeros (PyTorch's ``weight=None``)."""
    from ..graph import as_tensor, constant

    x = as_tensor(x)
    if gamma is not None and beta is not None:
        return x, gamma, beta
    try:
        _, pshape, _ = layout(x.shape, **attrs)
        if not all(isinstance(d, int) for d in pshape):
            raise ValueError(f"cannot make default parameters of symbolic shape {format_shape(pshape)}; "
                             "pass gamma and beta")
    except ValueError as exc:
        raise user_error(op, exc, (x,)) from None
    dt = x.dtype if np.dtype(x.dtype).kind == "f" else np.float32
    gamma = constant(np.ones(pshape, dt)) if gamma is None else gamma
    beta = constant(np.zeros(pshape, dt)) if beta is None else beta
    return x, gamma, beta


@builder()
def layer_norm(x, gamma=None, beta=None, normalized_ndim=None, eps=1e-5, name=None):
    """Layer normalization over the trailing axes that ``gamma`` covers (``torch.nn.functional.layer_norm``).

    ``normalized_ndim`` defaults to ``gamma.ndim`` (or 1 without gamma); a missing
    ``gamma``/``beta`` means no scale/shift.

    >>> import rustyasg.core as rg
    >>> rg.layer_norm(rg.input((4, 6, 8)), rg.input((6, 8)), rg.input((6, 8))).op
    'layer_norm'
    """
    if normalized_ndim is None:
        normalized_ndim = next((len(p.shape) for p in (gamma, beta) if p is not None), 1)
    attrs = {"normalized_ndim": int(normalized_ndim), "eps": float(eps)}
    x, gamma, beta = _with_params("layer_norm", _layer_norm_layout, x, gamma, beta, **attrs)
    return _layer_norm(x, gamma, beta, name=name, **attrs)


@builder()
def batch_norm(x, gamma=None, beta=None, axis=1, eps=1e-5, name=None):
    """Batch normalization with the batch's statistics (``F.batch_norm(..., training=True)``).

    Mean and biased variance over every axis but ``axis``; ``gamma``/``beta`` are ``(C,)``.

    >>> import rustyasg.core as rg
    >>> rg.batch_norm(rg.input((8, 3, 5, 5)), rg.input((3,)), rg.input((3,))).shape
    (8, 3, 5, 5)
    """
    attrs = {"axis": int(axis), "eps": float(eps)}
    x, gamma, beta = _with_params("batch_norm", _batch_norm_layout, x, gamma, beta, **attrs)
    return _batch_norm(x, gamma, beta, name=name, **attrs)
