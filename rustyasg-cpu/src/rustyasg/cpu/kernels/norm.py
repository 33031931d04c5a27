"""layer_norm and batch_norm (training form) with their backward ops, in numba.

Both normalise over *statistic axes* and scale/shift per *parameter position*;
in a C-ordered view ``(A, C, B)`` they are the same computation with the roles
of the axes swapped:

- layer_norm over the last k axes: ``A`` rows of ``C*B`` values, parameters per
  column (viewed as ``(A, D)`` with ``D`` the normalised size);
- batch_norm with channel axis ``c``: statistics per channel over ``A`` and ``B``,
  parameters per channel.

Statistics accumulate in float64 (two passes: mean, then centred variance), so a
float32 batch of 50k values per channel keeps full float32 accuracy. The
backward ops recompute the statistics instead of keeping them: it is one read
of ``x``, cheaper than storing and planning two more buffers per call.

Example:
    >>> import numpy as np
    >>> out = np.empty((1, 2)); layer_norm_rows(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0, out)
    >>> out
    array([[-1.,  1.]])
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rustyasg.core.shapes import normalize_axis

from ..jit import kernel_jit
from .protocol import Impl


@kernel_jit
def layer_norm_rows(x, gamma, beta, eps, out):
    A, D = x.shape
    for a in range(A):
        s = 0.0
        for d in range(D):
            s += x[a, d]
        mu = s / D
        v = 0.0
        for d in range(D):
            t = x[a, d] - mu
            v += t * t
        r = 1.0 / math.sqrt(v / D + eps)
        for d in range(D):
            out[a, d] = (x[a, d] - mu) * r * gamma[d] + beta[d]


@kernel_jit
def layer_norm_rows_backward(g, x, gamma, eps, out):
    A, D = x.shape
    for a in range(A):
        s = 0.0
        for d in range(D):
            s += x[a, d]
        mu = s / D
        v = 0.0
        for d in range(D):
            t = x[a, d] - mu
            v += t * t
        r = 1.0 / math.sqrt(v / D + eps)
        sa = 0.0
        sax = 0.0
        for d in range(D):
            ad = g[a, d] * gamma[d]
            sa += ad
            sax += ad * (x[a, d] - mu) * r
        ma = sa / D
        max_ = sax / D
        for d in range(D):
            xh = (x[a, d] - mu) * r
            out[a, d] = r * (g[a, d] * gamma[d] - ma - xh * max_)


@kernel_jit
def _channel_stats(x, eps, mu, r):
    A, C, B = x.shape
    n = A * B
    for c in range(C):
        s = 0.0
        for a in range(A):
            for b in range(B):
                s += x[a, c, b]
        m = s / n
        v = 0.0
        for a in range(A):
            for b in range(B):
                t = x[a, c, b] - m
                v += t * t
        mu[c] = m
        r[c] = 1.0 / math.sqrt(v / n + eps)


@kernel_jit
def batch_norm_channels(x, gamma, beta, eps, out):
    A, C, B = x.shape
    mu = np.empty(C)
    r = np.empty(C)
    _channel_stats(x, eps, mu, r)
    for a in range(A):
        for c in range(C):
            scale = r[c] * gamma[c]
            shift = beta[c] - mu[c] * scale
            for b in range(B):
                out[a, c, b] = x[a, c, b] * scale + shift


@kernel_jit
def batch_norm_channels_backward(g, x, gamma, eps, out):
    A, C, B = x.shape
    n = A * B
    mu = np.empty(C)
    r = np.empty(C)
    _channel_stats(x, eps, mu, r)
    for c in range(C):
        sa = 0.0
        sax = 0.0
        for a in range(A):
            for b in range(B):
                ad = g[a, c, b] * gamma[c]
                sa += ad
                sax += ad * (x[a, c, b] - mu[c]) * r[c]
        ma = sa / n
        max_ = sax / n
        for a in range(A):
            for b in range(B):
                xh = (x[a, c, b] - mu[c]) * r[c]
                out[a, c, b] = r[c] * (g[a, c, b] * gamma[c] - ma - xh * max_)


def _ln_layout(ins, shape):
    k = ins.attrs["normalized_ndim"]
    D = math.prod(shape[len(shape) - k:])
    return math.prod(shape[:len(shape) - k]), D


def _bn_layout(ins, shape):
    ax = normalize_axis(ins.attrs["axis"], len(shape))
    return math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:])


def _layer_norm(ins, args):
    A, D = _ln_layout(ins, args[0].shape)
    eps = ins.attrs["eps"]

    def bind(x, gamma, beta, out):
        return functools.partial(layer_norm_rows, x.reshape(A, D), gamma.reshape(D), beta.reshape(D), eps,
                                 out.reshape(A, D))

    return Impl(bind=bind, contiguous=True, label="numba.layer_norm")


def _layer_norm_backward(ins, args):
    A, D = _ln_layout(ins, args[1].shape)
    eps = ins.attrs["eps"]

    def bind(g, x, gamma, out):
        return functools.partial(layer_norm_rows_backward, g.reshape(A, D), x.reshape(A, D), gamma.reshape(D), eps,
                                 out.reshape(A, D))

    return Impl(bind=bind, contiguous=True, label="numba.layer_norm_backward")


def _batch_norm(ins, args):
    layout = _bn_layout(ins, args[0].shape)
    eps = ins.attrs["eps"]

    def bind(x, gamma, beta, out):
        return functools.partial(batch_norm_channels, x.reshape(layout), gamma, beta, eps, out.reshape(layout))

    return Impl(bind=bind, contiguous=True, label="numba.batch_norm")


def _batch_norm_backward(ins, args):
    layout = _bn_layout(ins, args[1].shape)
    eps = ins.attrs["eps"]

    def bind(g, x, gamma, out):
        return functools.partial(batch_norm_channels_backward, g.reshape(layout), x.reshape(layout), gamma, eps,
                                 out.reshape(layout))

    return Impl(bind=bind, contiguous=True, label="numba.batch_norm_backward")


KERNELS = {
    "layer_norm": _layer_norm,
    "layer_norm_backward": _layer_norm_backward,
    "batch_norm": _batch_norm,
    "batch_norm_backward": _batch_norm_backward,
}
