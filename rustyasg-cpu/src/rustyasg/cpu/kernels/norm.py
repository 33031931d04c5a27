"""layer_norm and batch_norm (training form) with their backward ops, in numba.

Both normalise over *statistic axes* and scale/shift per *parameter position*;
in a C-ordered view ``(A, C, B)`` they are the same computation with the roles
of the axes swapped:

- layer_norm over the last k axes: ``A`` rows of ``C*B`` values, parameters per
  column (viewed as ``(A, D)`` with ``D`` the normalised size);
- batch_norm with channel axis ``c``: statistics per channel over ``A`` and ``B``,
  parameters per channel.

Statistics accumulate in float64 (two passes: mean, then centred variance), so a
float32 batch of 50k values per channel keeps full float32 accuracy. A batch norm's
statistics are one ``(2, C)`` float64 value (:func:`channel_moments`): in a training step
``rewrites.batch_norm_stats`` computes it once (``cpu.channel_stats``) for the forward op,
the backward op, the forward op autograd repeats for the scale's gradient and the running
statistics; an op alone computes its own. The layer norm's backward op recomputes its
row statistics (one read of a row it reads anyway).

Example:
    >>> import numpy as np
    >>> out = np.empty((1, 2)); layer_norm_rows(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0, out, 0, 1)
    >>> out
    array([[-1.,  1.]])
"""

from __future__ import annotations

import functools
import math

import numpy as np

from rustyasg.core.backend_api import normalize_axis, outer_reduced_inner

from ..jit import accumulate, elementwise_jit, inlined_jit, kernel_jit
from ..threads import splitter
from .protocol import Impl, in_order


@kernel_jit
def _row_stats(x, eps, a):
    """(mean, 1/sqrt(var + eps)) of row a, in float64."""
    D = x.shape[1]
    s = 0.0
    for d in range(D):
        s += x[a, d]
    mu = s / D
    v = 0.0
    for d in range(D):
        t = x[a, d] - mu
        v += t * t
    return mu, 1.0 / math.sqrt(v / D + eps)


@kernel_jit
def _row_stats_split(x, eps, a):
    """Row a's statistics in the row's dtype: ``(mu_hi, mu_lo, r)`` with ``mu_hi + mu_lo`` the
    float64 mean. The per-element loops then stay in float32 for float32 rows (float64 operands
    made them 2x slower, measured on 1024x128) while ``(x - mu_hi) - mu_lo`` keeps the float64
    mean's accuracy: for rows of 1000 + 0.01 * noise, 2e-7 against 3e-3 with a rounded mean."""
    mu, r = _row_stats(x, eps, a)
    mu_hi = x.dtype.type(mu)
    return mu_hi, x.dtype.type(mu - mu_hi), x.dtype.type(r)


# These two are compiled without reassociation (which would fold ``(x - mu_hi) - mu_lo`` back
# into ``x - (mu_hi + mu_lo)``); their sums vectorize through :func:`accumulate`, and the
# statistics keep their own flags.
@elementwise_jit
def layer_norm_rows(x, gamma, beta, eps, out, lo, hi):
    D = x.shape[1]
    for a in range(lo, hi):
        mu_hi, mu_lo, r = _row_stats_split(x, eps, a)
        for d in range(D):
            out[a, d] = ((x[a, d] - mu_hi) - mu_lo) * r * gamma[d] + beta[d]


@elementwise_jit
def layer_norm_rows_backward(g, x, gamma, eps, out, lo, hi):
    D = x.shape[1]
    for a in range(lo, hi):
        mu_hi, mu_lo, r = _row_stats_split(x, eps, a)
        sa = 0.0
        sax = 0.0
        for d in range(D):
            ad = g[a, d] * gamma[d]
            sa = accumulate(sa, ad)
            sax = accumulate(sax, ad * (((x[a, d] - mu_hi) - mu_lo) * r))
        ma = x.dtype.type(sa / D)
        max_ = x.dtype.type(sax / D)
        for d in range(D):
            xh = ((x[a, d] - mu_hi) - mu_lo) * r
            out[a, d] = r * (g[a, d] * gamma[d] - ma - xh * max_)


@inlined_jit
def _channel_moments(x, c):
    """(mean, sum of squared deviations from it) of channel c over the A and B axes, in float64."""
    A, _, B = x.shape
    s = 0.0
    for a in range(A):
        for b in range(B):
            s += x[a, c, b]
    m = s / (A * B)
    v = 0.0
    for a in range(A):
        for b in range(B):
            t = x[a, c, b] - m
            v += t * t
    return m, v


@kernel_jit
def channel_moments(x, correction, out, lo, hi):
    """Mean and variance (``correction`` as numpy's ``ddof``) of each channel c of (A, C, B) ``x``
    over A and B, into ``out[0, c]`` and ``out[1, c]``.

    A batch norm's statistics (float64 ``out``, correction 0), which its forward and backward
    kernels read, and its running statistics (``rewrites.moments``, ``rewrites.batch_norm_stats``)."""
    A, _, B = x.shape
    d = max(A * B - correction, 0.0)
    for c in range(lo, hi):
        m, v = _channel_moments(x, c)
        out[0, c] = m
        out[1, c] = v / d


@kernel_jit
def batch_norm_channels(x, stats, gamma, beta, eps, out, lo, hi):
    """Channel c of ``out`` = (x - mean) / sqrt(var + eps) * gamma + beta, with the float64 mean and
    biased variance of ``stats`` (``channel_moments``)."""
    A, _, B = x.shape
    for c in range(lo, hi):
        scale = gamma[c] / math.sqrt(stats[1, c] + eps)
        shift = beta[c] - stats[0, c] * scale
        for a in range(A):
            for b in range(B):
                out[a, c, b] = x[a, c, b] * scale + shift


@kernel_jit
def batch_norm_channels_backward(g, x, stats, gamma, eps, out, lo, hi):
    """The input gradient of :func:`batch_norm_channels` for the output gradient ``g``."""
    A, _, B = x.shape
    n = A * B
    for c in range(lo, hi):
        mu = stats[0, c]
        r = 1.0 / math.sqrt(stats[1, c] + eps)
        sa = 0.0
        sax = 0.0
        for a in range(A):
            for b in range(B):
                ad = g[a, c, b] * gamma[c]
                sa += ad
                sax += ad * (x[a, c, b] - mu) * r
        ma = sa / n
        max_ = sax / n
        for a in range(A):
            for b in range(B):
                xh = (x[a, c, b] - mu) * r
                out[a, c, b] = r * (g[a, c, b] * gamma[c] - ma - xh * max_)


def _ln_layout(ins, shape):
    k = ins.attrs["normalized_ndim"]
    return outer_reduced_inner(shape, range(len(shape) - k, len(shape)))[:2]


def _bn_layout(ins, shape):
    return outer_reduced_inner(shape, (normalize_axis(ins.attrs["axis"], len(shape)),))


def _layer_norm(ins, args):
    A, D = _ln_layout(ins, args[0].shape)
    eps = ins.attrs["eps"]

    def bind(x, gamma, beta, out):
        return splitter(layer_norm_rows, A, A * D, x.reshape(A, D), gamma.reshape(D), beta.reshape(D), eps,
                        out.reshape(A, D))

    return Impl(bind=bind, contiguous=True, label="numba.layer_norm")


def _layer_norm_backward(ins, args):
    A, D = _ln_layout(ins, args[1].shape)
    eps = ins.attrs["eps"]

    def bind(g, x, gamma, out):
        return splitter(layer_norm_rows_backward, A, 2 * A * D, g.reshape(A, D), x.reshape(A, D), gamma.reshape(D),
                        eps, out.reshape(A, D))

    return Impl(bind=bind, contiguous=True, label="numba.layer_norm_backward")


def _statistics(layout, correction=0.0):
    """A bind's call that writes the (2, C) mean and variance (``correction`` as numpy's ``ddof``;
    a batch norm's: 0, biased) of ``x`` (viewed as ``layout``) into ``stats``, and the float64
    stats scratch a batch norm needs."""
    def call(x, stats):
        return splitter(channel_moments, layout[1], 2 * x.size, x.reshape(layout), correction,
                        stats.reshape(2, layout[1]))
    return call, (((2, layout[1]), np.float64),)


def _batch_norm(ins, args, shared=False):
    """``batch_norm`` (training form): its statistics, then the normalisation. With ``shared``
    (``cpu.batch_norm``, from ``rewrites.batch_norm_stats``) the statistics are an input."""
    layout = _bn_layout(ins, args[0].shape)
    eps = ins.attrs["eps"]
    statistics, scratch = _statistics(layout)

    def normalise(x, stats, gamma, beta, out):
        return splitter(batch_norm_channels, layout[1], x.size, x.reshape(layout), stats, gamma, beta, eps,
                        out.reshape(layout))

    if shared:
        return Impl(bind=normalise, contiguous=True, label="numba.batch_norm")

    def bind(x, gamma, beta, out, stats):
        return in_order(statistics(x, stats), normalise(x, stats, gamma, beta, out))

    return Impl(bind=bind, scratch=scratch, contiguous=True, label="numba.batch_norm")


def _batch_norm_backward(ins, args, shared=False):
    """``batch_norm_backward``: the statistics again (or, ``shared``, as an input), then the gradient."""
    layout = _bn_layout(ins, args[1].shape)
    eps = ins.attrs["eps"]
    statistics, scratch = _statistics(layout)

    def gradient(g, x, stats, gamma, out):
        return splitter(batch_norm_channels_backward, layout[1], 2 * x.size, g.reshape(layout), x.reshape(layout),
                        stats, gamma, eps, out.reshape(layout))

    if shared:
        return Impl(bind=gradient, contiguous=True, label="numba.batch_norm_backward")

    def bind(g, x, gamma, out, stats):
        return in_order(statistics(x, stats), gradient(g, x, stats, gamma, out))

    return Impl(bind=bind, scratch=scratch, contiguous=True, label="numba.batch_norm_backward")


def _channel_stats(ins, args):
    """``cpu.channel_stats``: a batch norm's (2, C) float64 mean and biased variance, once for its
    forward, backward and running statistics (``rewrites.batch_norm_stats``)."""
    layout = _bn_layout(ins, args[0].shape)
    statistics, _ = _statistics(layout)
    return Impl(bind=statistics, contiguous=True, label="numba.channel_stats")


def _moments_from_stats(ins, args):
    """``cpu.moments_from_stats``: the running statistics (mean, variance with ``correction``) of
    the shared float64 statistics, on numpy (2 x C values)."""
    n, correction = ins.attrs["count"], ins.attrs["correction"]
    factor = n / (n - correction) if n > correction else np.inf  # numpy: inf (nan for a zero sum)

    def bind(stats, out):
        out2 = out.reshape(2, -1)

        def run():
            np.copyto(out2[0], stats[0], casting="same_kind")
            np.multiply(stats[1], factor, out=out2[1], casting="same_kind")
        return run
    return Impl(bind=bind, label="numpy.moments_from_stats")


def kept_block(shape, axes):
    """``(A, C, B)``: ``shape`` reduced over ``axes`` viewed with the kept axes as one middle block
    ``C`` (1 when nothing is kept), or None when the kept axes are not adjacent."""
    return outer_reduced_inner(shape, [d for d in range(len(shape)) if d not in set(axes)])


def _moments(ins, args):
    statistics, _ = _statistics(kept_block(args[0].shape, ins.attrs["axis"]), float(ins.attrs["correction"]))
    return Impl(bind=statistics, contiguous=True, label="numba.channel_moments")


def _moment(ins, args):
    k, shape = ins.attrs["index"], tuple(ins.shape)
    return Impl(view=lambda m: m[k, ...].reshape(shape), label="moment")  # [k, ...]: a view even when 0-d


KERNELS = {
    "cpu.channel_stats": _channel_stats,
    "cpu.batch_norm": functools.partial(_batch_norm, shared=True),
    "cpu.batch_norm_backward": functools.partial(_batch_norm_backward, shared=True),
    "cpu.moments_from_stats": _moments_from_stats,
    "cpu.moments": _moments,
    "cpu.moment": _moment,
    "layer_norm": _layer_norm,
    "layer_norm_backward": _layer_norm_backward,
    "batch_norm": _batch_norm,
    "batch_norm_backward": _batch_norm_backward,
}
