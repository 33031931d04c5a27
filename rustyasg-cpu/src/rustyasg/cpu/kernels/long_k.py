"""Products with a tiny result and a long inner dimension: a convolution's weight gradient.

``dW[o, t] = sum over images n and output positions p of grad[n, o, p] * cols[t, n*P + p]``
has ``O x T`` results (6 x 25 for LeNet's first layer) and an inner dimension of
``N * P`` (64 images x 784 positions = 50,176). BLAS packs such a product for a
GEMM it cannot fill: numpy's sgemm ran it at 14 GFLOP/s on two cores (1.1 ms on
the reference Xeon), after a transposing copy of the gradient. Here it is a set of
dot products computed 2 x 4 at a time (two gradient rows against four column rows
per pass: 6 loads feed 8 multiply-adds, the loop vectorizes with 8 reductions),
over chunks of at most :data:`CHUNK` positions so that the ~31 rows a chunk touches
stay in L1/L2: 0.40 ms on one core, reading the gradient in place.

Float32 operands add in float32 like BLAS does (in another association).

Example:
    >>> import numpy as np
    >>> g = np.arange(6.0, dtype=np.float32).reshape(1, 2, 3)      # (N, O, P)
    >>> cols = np.ones((3, 3), np.float32)                          # (T, N*P)
    >>> out = np.empty((2, 3), np.float32)
    >>> weight_gradient(g, cols, out, 0, 1); out.tolist()
    [[3.0, 3.0, 3.0], [12.0, 12.0, 12.0]]
"""

from __future__ import annotations

import numpy as np

from ..jit import helper_jit, kernel_jit

CHUNK = 1024  # positions per pass: 31 rows x 4 KiB stay in L2 (measured 0.40 ms vs 0.45 at 8192 on 6x25x50176)


@kernel_jit
def weight_gradient_flat(g, c, r, O, T, P, lo, hi):
    """``r[o*T + t] = sum_{n in [lo, hi), p < P} g[(n*O + o)*P + p] * c[t*NP + n*P + p]`` (``r`` is
    overwritten) for flat C-ordered ``g`` (N, O, P), ``c`` (T, N*P) and ``r`` (O, T).

    A last odd row or last taps past a multiple of 4 are computed by the 2 x 4 loop on repeated
    (in-bounds) rows whose sums are not stored: one loop body and no remainder loops (remainder
    loops added ~0.15 s to the kernel's compile, measured).
    """
    u = np.uint64
    Ou, Tu, Pu = u(O), u(T), u(P)
    NP = u(c.shape[0]) // Tu
    last_o, last_t = Ou - u(1), Tu - u(1)
    for i in range(Ou * Tu):
        r[i] = 0.0
    for n in range(u(lo), u(hi)):
        for p0 in range(u(0), Pu, u(CHUNK)):
            p1 = min(p0 + u(CHUNK), Pu)
            gb, cb = n * Ou * Pu, n * Pu
            for o in range(u(0), Ou, u(2)):
                o1 = min(o + u(1), last_o)
                ga, gc = gb + o * Pu, gb + o1 * Pu
                for t in range(u(0), Tu, u(4)):
                    t1, t2, t3 = min(t + u(1), last_t), min(t + u(2), last_t), min(t + u(3), last_t)
                    c0, c1, c2, c3 = t * NP + cb, t1 * NP + cb, t2 * NP + cb, t3 * NP + cb
                    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = r.dtype.type(0)
                    for p in range(p0, p1):
                        x, y = g[ga + p], g[gc + p]
                        a, b, d, e = c[c0 + p], c[c1 + p], c[c2 + p], c[c3 + p]
                        s0 += x * a
                        s1 += x * b
                        s2 += x * d
                        s3 += x * e
                        s4 += y * a
                        s5 += y * b
                        s6 += y * d
                        s7 += y * e
                    _add_taps(r, o * Tu + t, Tu - t, s0, s1, s2, s3)
                    if o + u(1) < Ou:
                        _add_taps(r, o1 * Tu + t, Tu - t, s4, s5, s6, s7)


@helper_jit
def _add_taps(r, at, left, a, b, d, e):
    """``r[at:at + 4] += (a, b, d, e)``, only the first ``left`` of them (the others were repeats)."""
    r[at] += a
    if left > 1:
        r[at + 1] += b
    if left > 2:
        r[at + 2] += d
    if left > 3:
        r[at + 3] += e


def weight_gradient(grad, cols, out, lo, hi):
    """``out[o, t] = sum_{n in [lo, hi), p} grad[n, o, p] * cols[t, n * P + p]`` (``out`` is overwritten).

    ``grad`` (N, O, P), ``cols`` (T, N * P), ``out`` (O, T); all C-contiguous.
    """
    N, O, P = grad.shape
    weight_gradient_flat(grad.reshape(-1), cols.reshape(-1), out.reshape(-1), O, cols.shape[0], P, lo, hi)


def worth_it(outputs: int, inner: int) -> bool:
    """Whether :func:`weight_gradient` beats BLAS: few results over a long inner dimension.

    Measured on the reference Xeon (one numba thread against two BLAS threads, BLAS timed with
    the gradient's transposing copy it needs): 6 x 25 over 50,176 0.39-0.43 vs 1.2-1.3 ms;
    16 x 150 over 64 images of 100 positions 1.1 vs 0.63 ms, and 32 x 288 over 64 x 196
    6.8 vs 2.6 ms, where BLAS keeps them.
    """
    return outputs <= 512 and inner >= 4096
