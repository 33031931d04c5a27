"""Fused attention on the cpu (numba + BLAS): ``attention``, ``attention_lse`` and ``attention_backward``.

Flash-attention's schedule, without the ``(L, S)`` score matrix in memory. The batch axes
are flattened to ``N`` (batch x heads); a *work item* is one block of ``bq`` queries of one
``n`` (``attention``, ``attention_lse``, the ``q`` gradient) or one block of keys (the ``k``
and ``v`` gradients, which sum over queries). Items are split across the threads of
:mod:`..threads`; each thread owns its tile buffers. Per item:

- forward: for each tile of keys, ``s = scale * q_blk @ k_tile^T`` (BLAS, :mod:`.blas`),
  the mask, then an online softmax (running max ``m``, sum ``l``; the accumulator is rescaled
  when ``m`` grows) and ``acc += p @ v_tile`` (BLAS). Under ``causal`` the keys after the
  block's last query are never visited, and ``lse = m + log(l)`` comes from the same loop;
- ``dq``: ``p = exp(s - lse)``, ``ds = p * (dout @ v^T - delta)``, ``dq += ds @ k`` per key tile;
- ``dk`` / ``dv``: the transposed tiles ``k_blk @ q_tile^T``: ``dk += ds^T @ q``, ``dv += p^T @ dout``
  per query tile (under ``causal`` from the key block's first key on).

Excluded pairs (masked keys, the causal triangle) have ``p = ds = 0`` in the tile. A product
with BLAS would still multiply such a zero by its row of ``v``/``k``/``q``/``dout``, and
``0 * inf`` is NaN, while the op's rule is that excluded keys take no part at all. So each
item first checks that the operand it contracts with is finite for its ``n``; if not (a NaN
in a padded value), that item's contraction runs as a loop over the allowed pairs only.
The scores, a max and exp per pair, stay in the operand dtype (float32 or float64; 16-bit
floats are widened before, see ``cpu_float16``).

Cost: a training step runs five of these passes over the scores (forward, ``attention_lse``,
and one per gradient: the op gives each gradient its own instruction), eleven tile products
where a single fused backward needs seven; each pass is bound by its BLAS products at long
``T`` and by the per-score max/exp at short ``T``. ``benchmarks/attention_cpu.py`` measures it.

Example:
    >>> import numpy as np
    >>> q = np.random.default_rng(0).standard_normal((1, 3, 4)); out = np.empty((1, 3, 4))
    >>> keep = np.ones((1, 1), np.bool_); lse = np.empty((1, 3))
    >>> attention_forward(q, q, q, keep, False, True, 0.5, out, lse, True, 64, 64, 0, 1)
    >>> bool(np.allclose(out[0, 0], q[0, 0])), bool(np.isclose(lse[0, 0], 0.5 * q[0, 0] @ q[0, 0]))
    (True, True)
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ..jit import helper_jit, kernel_jit
from ..threads import splitter
from .blas import gemm
from .fastmath import exp32
from .protocol import Impl

#: Queries per block, and the bound on one tile product ``rows * cols * features``: OpenBLAS runs
#: products up to 2**18 on the calling thread (no worker hand-off, nothing shared between threads).
BLOCK = 64
TILE_WORK = 1 << 18


def fexp(x):
    """``e**x`` at the precision of ``x``: the vectorizable :func:`.fastmath.exp32` for float32."""
    return math.exp(x)


@overload(fexp)
def _fexp(x):
    if x == types.float32:
        return lambda x: exp32(x)
    return lambda x: math.exp(x)


@intrinsic
def _bits(typingctx, x):
    """The IEEE bits of a float32 or float64 as a (sign-extended) int64."""
    if x not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        width = 32 if x == types.float32 else 64
        return builder.sext(builder.bitcast(args[0], ir.IntType(width)), ir.IntType(64)) if width == 32 \
            else builder.bitcast(args[0], ir.IntType(64))
    return types.int64(x), codegen


@intrinsic
def _float_of_bits(typingctx, bits, like):
    """Inverse of :func:`_bits`: the float (of ``like``'s type) with these IEEE bits."""
    if like not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        if like == types.float32:
            return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())
        return builder.bitcast(args[0], ir.DoubleType())
    return like(types.int64, like), codegen


@helper_jit
def _order_key(x):
    """An int64 that orders like the float ``x`` (sign-magnitude to two's complement); its own inverse."""
    i = _bits(x)
    return i ^ ((i >> 63) & 0x7FFFFFFFFFFFFFFF)


@helper_jit
def _row_max(row):
    """The largest value of a non-empty ``row``, as a max of order keys: an integer max vectorizes,
    a float one does not without fast-math's no-NaN (measured 25% of the forward at T=1024). A NaN
    orders beyond +-inf; its row turns NaN through the sum of exponentials either way.
    """
    best = _order_key(row[0])
    for b in range(1, row.shape[0]):
        best = max(best, _order_key(row[b]))
    return _float_of_bits(_order_key_inverse(best), row[0])


@helper_jit
def _order_key_inverse(key):
    return key ^ ((key >> 63) & 0x7FFFFFFFFFFFFFFF)


@helper_jit
def _all_finite(x):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if not math.isfinite(x[i, j]):
                return False
    return True


@helper_jit
def _causal_top(causal, i, j0, nk):
    """How many keys of the tile starting at ``j0`` query ``i`` may see before the causal cut."""
    if not causal:
        return nk
    return max(0, min(nk, i - j0 + 1))


@kernel_jit
def attention_forward(q, k, v, keep, has_keep, causal, scale, out, lse, want_lse, bq, bk, lo, hi):
    """``out (N, L, Ev)`` and, if ``want_lse``, ``lse (N, L)`` for the query blocks ``lo..hi``."""
    N, L, E = q.shape
    S = k.shape[1]
    Ev = v.shape[2]
    zero = out.dtype.type(0)
    ninf = out.dtype.type(-np.inf)
    nqb = (L + bq - 1) // bq
    s = np.empty((bq, bk), q.dtype)
    acc = np.empty((bq, Ev), q.dtype)
    m = np.empty(bq, q.dtype)
    total = np.empty(bq, q.dtype)
    last_n = -1
    clean = True
    for item in range(lo, hi):
        n = item // nqb
        i0 = (item - n * nqb) * bq
        nb = min(bq, L - i0)
        if n != last_n:
            clean = _all_finite(v[n])
            last_n = n
        kend = min(S, i0 + nb) if causal else S
        m[:] = ninf
        total[:] = zero
        acc[:, :] = zero
        for j0 in range(0, kend, bk):
            nk = min(bk, kend - j0)
            gemm(False, True, nb, nk, E, scale, q, (n * L + i0) * E, E, k, (n * S + j0) * E, E, 0.0, s, 0, bk)
            for a in range(nb):
                top = _causal_top(causal, i0 + a, j0, nk)
                row = s[a, :top]  # 1-d views: their loops vectorize
                if has_keep:
                    for b in range(top):
                        if not keep[n, j0 + b]:
                            row[b] = ninf
                mt = _row_max(row) if top > 0 else ninf
                m_old = m[a]
                m_new = max(m_old, mt)
                shift = m_new if m_new != ninf else zero  # only -inf so far: every p is exp(-inf) = 0
                alpha = fexp(m_old - shift) if m_old != ninf else zero
                rs = zero
                for b in range(top):
                    p = fexp(row[b] - shift)
                    row[b] = p
                    rs += p
                s[a, top:nk] = zero
                total[a] = total[a] * alpha + rs
                if alpha != 1:
                    acc[a, :] *= alpha
                m[a] = m_new
            if clean:
                gemm(False, False, nb, Ev, nk, 1.0, s, 0, bk, v, (n * S + j0) * Ev, Ev, 1.0, acc, 0, Ev)
            else:
                for a in range(nb):
                    for b in range(_causal_top(causal, i0 + a, j0, nk)):
                        if has_keep and not keep[n, j0 + b]:
                            continue
                        p = s[a, b]
                        for e in range(Ev):
                            acc[a, e] += p * v[n, j0 + b, e]
        for a in range(nb):
            i = i0 + a
            if S == 0:  # no keys: softmax(s) @ v is an empty sum
                out[n, i, :] = zero
            elif m[a] == ninf:  # no allowed key, or only -inf scores: NaN, as the softmax of such a row
                out[n, i, :] = np.nan
            else:
                inv = out.dtype.type(1) / total[a]
                for e in range(Ev):
                    out[n, i, e] = acc[a, e] * inv
            if want_lse:
                # -inf + log(0) = -inf for a row with no allowed key; a NaN score made ``total`` NaN
                lse[n, i] = m[a] + math.log(total[a])


@kernel_jit
def attention_grad_q(q, k, v, dout, lse, delta, keep, has_keep, causal, scale, dq, bq, bk, lo, hi):
    """``dq (N, L, E)`` for the query blocks ``lo..hi``."""
    N, L, E = q.shape
    S = k.shape[1]
    Ev = v.shape[2]
    zero = q.dtype.type(0)
    sc = q.dtype.type(scale)
    nqb = (L + bq - 1) // bq
    s = np.empty((bq, bk), q.dtype)
    dp = np.empty((bq, bk), q.dtype)
    last_n = -1
    clean = True
    for item in range(lo, hi):
        n = item // nqb
        i0 = (item - n * nqb) * bq
        nb = min(bq, L - i0)
        if n != last_n:
            clean = _all_finite(k[n])
            last_n = n
        dq[n, i0:i0 + nb, :] = zero
        kend = min(S, i0 + nb) if causal else S
        for j0 in range(0, kend, bk):
            nk = min(bk, kend - j0)
            gemm(False, True, nb, nk, E, scale, q, (n * L + i0) * E, E, k, (n * S + j0) * E, E, 0.0, s, 0, bk)
            gemm(False, True, nb, nk, Ev, 1.0, dout, (n * L + i0) * Ev, Ev, v, (n * S + j0) * Ev, Ev, 0.0, dp, 0, bk)
            for a in range(nb):
                top = _causal_top(causal, i0 + a, j0, nk)
                li = lse[n, i0 + a]
                di = delta[n, i0 + a]
                row = s[a, :top]  # 1-d views: their loops vectorize
                drow = dp[a, :top]
                for b in range(top):
                    row[b] = fexp(row[b] - li) * (drow[b] - di)
                if has_keep:
                    for b in range(top):
                        if not keep[n, j0 + b]:
                            row[b] = zero
                s[a, top:nk] = zero
            if clean:
                gemm(False, False, nb, E, nk, 1.0, s, 0, bk, k, (n * S + j0) * E, E, 1.0, dq, (n * L + i0) * E, E)
            else:
                for a in range(nb):
                    for b in range(_causal_top(causal, i0 + a, j0, nk)):
                        if has_keep and not keep[n, j0 + b]:
                            continue
                        w = s[a, b]
                        for e in range(E):
                            dq[n, i0 + a, e] += w * k[n, j0 + b, e]
        for a in range(nb):
            for e in range(E):
                dq[n, i0 + a, e] *= sc


@kernel_jit
def attention_grad_kv(q, k, v, dout, lse, delta, keep, has_keep, causal, scale, want_k, x, grad, bk, bq, lo, hi):
    """``dk (N, S, E)`` if ``want_k``, else ``dv (N, S, Ev)``, for the key blocks ``lo..hi``.

    ``x`` is the operand the gradient contracts with: ``q`` for ``dk``, ``dout`` for ``dv``.
    """
    N, L, E = q.shape
    S = k.shape[1]
    Ev = v.shape[2]
    zero = q.dtype.type(0)
    sc = q.dtype.type(scale)
    D = x.shape[2]
    nkb = (S + bk - 1) // bk
    st = np.empty((bk, bq), q.dtype)
    dpt = np.empty((bk, bq), q.dtype)
    last_n = -1
    clean = True
    for item in range(lo, hi):
        n = item // nkb
        j0 = (item - n * nkb) * bk
        nk = min(bk, S - j0)
        if n != last_n:
            clean = _all_finite(x[n])
            last_n = n
        grad[n, j0:j0 + nk, :] = zero
        for i0 in range(j0 if causal else 0, L, bq):  # under causal, queries before j0 see none of these keys
            nb = min(bq, L - i0)
            gemm(False, True, nk, nb, E, scale, k, (n * S + j0) * E, E, q, (n * L + i0) * E, E, 0.0, st, 0, bq)
            if want_k:
                gemm(False, True, nk, nb, Ev, 1.0, v, (n * S + j0) * Ev, Ev, dout, (n * L + i0) * Ev, Ev, 0.0,
                     dpt, 0, bq)
            lse_t = lse[n, i0:i0 + nb]
            delta_t = delta[n, i0:i0 + nb]
            for b in range(nk):
                j = j0 + b
                first = min(nb, max(0, j - i0)) if causal else 0  # queries i >= j see key j
                if has_keep and not keep[n, j]:
                    first = nb
                st[b, :first] = zero
                # Slices that start at 0: loops over ``range(first, nb)`` did not vectorize (measured 6x slower).
                row = st[b, first:nb]
                lse_r = lse_t[first:]
                if want_k:  # two loops, not a branch per element
                    drow = dpt[b, first:nb]
                    delta_r = delta_t[first:]
                    for a in range(nb - first):
                        row[a] = fexp(row[a] - lse_r[a]) * (drow[a] - delta_r[a])
                else:
                    for a in range(nb - first):
                        row[a] = fexp(row[a] - lse_r[a])
            if clean:
                gemm(False, False, nk, D, nb, 1.0, st, 0, bq, x, (n * L + i0) * D, D, 1.0, grad, (n * S + j0) * D, D)
            else:
                for b in range(nk):
                    j = j0 + b
                    if has_keep and not keep[n, j]:
                        continue
                    for a in range(min(nb, max(0, j - i0)) if causal else 0, nb):
                        w = st[b, a]
                        for e in range(D):
                            grad[n, j, e] += w * x[n, i0 + a, e]
        if want_k:
            for b in range(nk):
                for e in range(D):
                    grad[n, j0 + b, e] *= sc


# --- binding ------------------------------------------------------------------------------------
def _tile(rows, features, length):
    """Keys (or queries) per tile against ``rows`` rows: ``rows * tile * features`` <= TILE_WORK."""
    t = TILE_WORK // max(1, rows * max(1, features))
    return int(max(1, min(length, max(16, t // 16 * 16))))


class _Layout:
    """Flattened ``(N, L, E)`` / ``(N, S, E)`` / ``(N, S, Ev)`` sizes of one instruction, and its blocks."""

    def __init__(self, q_shape, k_shape, v_features, causal):
        *batch, self.L, self.E = q_shape
        self.S = k_shape[-2]
        self.Ev = v_features
        self.N = int(np.prod(batch, dtype=np.int64))
        self.bq = max(1, min(BLOCK, self.L))
        self.bk = _tile(self.bq, max(self.E, self.Ev), self.S)
        self.kv_bk = max(1, min(BLOCK, self.S))
        self.kv_bq = _tile(self.kv_bk, max(self.E, self.Ev), self.L)
        pairs = self.N * self.L * self.S // (2 if causal else 1)
        self.work = pairs * (self.E + self.Ev)  # multiply-adds, what the splitter weighs

    def query_items(self):
        return self.N * -(-self.L // self.bq)

    def key_items(self):
        return self.N * -(-self.S // self.kv_bk)

    def q(self, a):
        return a.reshape(self.N, self.L, self.E)

    def k(self, a):
        return a.reshape(self.N, self.S, self.E)

    def v(self, a):
        return a.reshape(self.N, self.S, self.Ev)

    def dout(self, a):
        return a.reshape(self.N, self.L, self.Ev)

    def rows(self, a):
        return a.reshape(self.N, self.L)

    def keep(self, rest):
        """``(keep, has_keep)`` from the optional trailing operand."""
        if rest:
            return rest[0].reshape(self.N, self.S), True
        return np.ones((1, 1), np.bool_), False


def _attention(ins, args):
    q, k, v = args[:3]
    causal, scale = bool(ins.attrs["causal"]), float(ins.attrs["scale"])
    lay = _Layout(q.shape, k.shape, v.shape[-1], causal)

    def bind(qa, ka, va, *rest):
        *keep, out = rest
        keep, has_keep = lay.keep(keep)
        lse = np.empty((1, 1), out.dtype)
        return splitter(attention_forward, lay.query_items(), lay.work, lay.q(qa), lay.k(ka), lay.v(va), keep,
                        has_keep, causal, scale, lay.dout(out), lse, False, lay.bq, lay.bk)

    return Impl(bind=bind, contiguous=True, label="numba.attention")


def _attention_lse(ins, args):
    q, k = args[:2]
    causal, scale = bool(ins.attrs["causal"]), float(ins.attrs["scale"])
    lay = _Layout(q.shape, k.shape, 0, causal)

    def bind(qa, ka, *rest):
        *keep, out = rest
        keep, has_keep = lay.keep(keep)
        no_values = np.empty((lay.N, lay.S, 0), qa.dtype)  # the same loop, without the value product
        no_out = np.empty((lay.N, lay.L, 0), qa.dtype)
        return splitter(attention_forward, lay.query_items(), lay.work, lay.q(qa), lay.k(ka), no_values, keep,
                        has_keep, causal, scale, no_out, lay.rows(out), True, lay.bq, lay.bk)

    return Impl(bind=bind, contiguous=True, label="numba.attention_lse")


def _attention_backward(ins, args):
    q, k, v = args[:3]
    causal, scale, wrt = bool(ins.attrs["causal"]), float(ins.attrs["scale"]), ins.attrs["wrt"]
    lay = _Layout(q.shape, k.shape, v.shape[-1], causal)

    def bind(qa, ka, va, da, lse, delta, *rest):
        *keep, out = rest
        keep, has_keep = lay.keep(keep)
        common = (lay.q(qa), lay.k(ka), lay.v(va), lay.dout(da), lay.rows(lse), lay.rows(delta), keep, has_keep,
                  causal, scale)
        if wrt == "q":
            return splitter(attention_grad_q, lay.query_items(), 2 * lay.work, *common, lay.q(out), lay.bq, lay.bk)
        if wrt == "k":
            x, grad = lay.q(qa), lay.k(out)
        else:
            x, grad = lay.dout(da), lay.v(out)
        return splitter(attention_grad_kv, lay.key_items(), 2 * lay.work, *common, wrt == "k", x, grad, lay.kv_bk,
                        lay.kv_bq)

    return Impl(bind=bind, contiguous=True, label=f"numba.attention_backward_{wrt}")


KERNELS = {
    "attention": _attention,
    "attention_lse": _attention_lse,
    "attention_backward": _attention_backward,
}
