"""numba kernels for row-wise normalisations: softmax, log_softmax, logsumexp.

All take the ``(A, R, B)`` layout (:mod:`.layout`) and normalise along ``R``.
The common case, the last axis (``B == 1``), has its own ``*_rows`` kernel whose
inner loops run over contiguous memory and vectorize.

Example:
    >>> import numpy as np
    >>> out = np.empty((1, 2)); softmax_rows(np.zeros((1, 2)), out); out
    array([[0.5, 0.5]])
"""

from __future__ import annotations

import math

import numpy as np

from ..jit import kernel_jit
from .fastmath import fexp


@kernel_jit
def softmax_rows(x, out):
    for a in range(x.shape[0]):
        m = x[a, 0]
        for r in range(1, x.shape[1]):
            m = max(m, x[a, r])
        s = x.dtype.type(0)
        for r in range(x.shape[1]):
            e = fexp(x[a, r] - m)
            out[a, r] = e
            s += e
        inv = x.dtype.type(1) / s
        for r in range(x.shape[1]):
            out[a, r] *= inv


@kernel_jit
def log_softmax_rows(x, out):
    for a in range(x.shape[0]):
        m = x[a, 0]
        for r in range(1, x.shape[1]):
            m = max(m, x[a, r])
        s = x.dtype.type(0)
        for r in range(x.shape[1]):
            s += fexp(x[a, r] - m)
        shift = m + x.dtype.type(math.log(s))
        for r in range(x.shape[1]):
            out[a, r] = x[a, r] - shift


@kernel_jit
def softmax_arb(x, out):
    A, R, B = x.shape
    for a in range(A):
        for b in range(B):
            m = x[a, 0, b]
            for r in range(1, R):
                m = max(m, x[a, r, b])
            s = x.dtype.type(0)
            for r in range(R):
                e = fexp(x[a, r, b] - m)
                out[a, r, b] = e
                s += e
            inv = x.dtype.type(1) / s
            for r in range(R):
                out[a, r, b] *= inv


@kernel_jit
def log_softmax_arb(x, out):
    A, R, B = x.shape
    for a in range(A):
        for b in range(B):
            m = x[a, 0, b]
            for r in range(1, R):
                m = max(m, x[a, r, b])
            s = x.dtype.type(0)
            for r in range(R):
                s += fexp(x[a, r, b] - m)
            shift = m + x.dtype.type(math.log(s))
            for r in range(R):
                out[a, r, b] = x[a, r, b] - shift


@kernel_jit
def logsumexp_arb(x, out):
    A, R, B = x.shape
    for a in range(A):
        for b in range(B):
            m = x[a, 0, b]
            for r in range(1, R):
                m = max(m, x[a, r, b])
            if not math.isfinite(m):
                m = x.dtype.type(0)  # as the reference: all -inf rows give -inf, not NaN
            s = x.dtype.type(0)
            for r in range(R):
                s += fexp(x[a, r, b] - m)
            out[a, b] = x.dtype.type(math.log(s)) + m
