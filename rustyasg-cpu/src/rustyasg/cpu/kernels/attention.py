"""Fused attention on the cpu (numba + BLAS): ``attention``, ``attention_lse`` and ``attention_backward``.

Flash-attention's schedule, without the ``(L, S)`` score matrix in memory. The batch axes
are flattened to ``N`` (batch x heads). Work items are split across the threads of
:mod:`..threads`; each thread owns its tile buffers. Two kernels, one per direction:

- :func:`attention_forward` (``attention``, ``attention_lse``, and both at once for
  ``cpu.attention_with_lse``), one item per block of ``bq`` queries of one ``n``: for each tile
  of keys, ``s = scale * q_blk @ k_tile^T`` (BLAS, :mod:`.blas`), the mask, then an online
  softmax (running max ``m``, sum ``l``; the accumulator is rescaled when ``m`` grows) and
  ``acc += p @ v_tile`` (BLAS). Under ``causal`` the keys after the block's last query are never
  visited, and ``lse = m + log(l)`` comes from the same loop;
- :func:`attention_grads` (``cpu.attention_grads``, and one ``attention_backward`` with the
  other two gradients in scratch), one item per ``n``: per tile (key blocks outside, query
  blocks inside, the causal triangle skipped) ``p = exp(s - lse)`` and ``ds = p * (dout @ v^T -
  delta)`` once, then ``dv += p^T @ dout``, ``dk += scale * ds^T @ q``, ``dq += scale * ds @ k``:
  five tile products. With fewer batch entries than threads the rest of the threads idle (one
  head of one long sequence runs on one core).

Operands are read in place: ``q``, ``k``, ``v`` and ``dout`` need contiguous features only
(:func:`rows_operand`), so the heads a model splits off a packed ``qkv`` by ``permute`` reach BLAS
as they are, with their row stride (GPT-mini's step: 14 copies fewer, 0.7 ms; with rows 1536
bytes apart the kernels measured 0-10% slower there, and as fast as on packed rows alone).

Excluded pairs (masked keys, the causal triangle) have ``p = ds = 0`` in the tile. A product
with BLAS would still multiply such a zero by its row of ``v``/``k``/``q``/``dout``, and
``0 * inf`` is NaN, while the op's rule is that excluded keys take no part at all. So each
item first checks that the operands it contracts with are finite for its ``n``; if not (a NaN
in a padded value), that item's contractions run as loops over the allowed pairs only.
The scores, a max and exp per pair, stay in the operand dtype (float32 or float64; 16-bit
floats are widened before, see ``cpu_float16``).

Cost: the op's gradient rule gives the forward, ``attention_lse`` and each gradient an
instruction of its own, five passes over the scores; :mod:`..attention_share` runs them as the
two kernels above (``benchmarks/attention_cpu.py`` measures it).

Example:
    >>> import numpy as np
    >>> q = np.random.default_rng(0).standard_normal((1, 3, 4)); out = np.empty((1, 3, 4))
    >>> keep = np.ones((1, 1), np.bool_); lse = np.empty((1, 3))
    >>> x = rows_operand(q)
    >>> attention_forward(x, x, x, (1, 3, 3, 4, 4), keep, False, True, 0.5, out, lse, True, 64, 64, 0, 1)
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
def _rows_finite(x, n, rows, cols):
    """No NaN or inf in batch entry ``n`` of the operand ``x`` (see :func:`rows_operand`): a max over
    exponent fields, which vectorizes (an early-exit ``isfinite`` loop does not: measured 0.06 ms a
    pass at GPT-mini's shape)."""
    flat, offsets, ld = x
    top = _bits(flat.dtype.type(np.inf))  # every exponent bit set: inf or NaN
    most = 0  # the largest exponent field: ``top`` only if some element has every exponent bit set
    for r in range(rows):
        row = flat[offsets[n] + r * ld:offsets[n] + r * ld + cols]
        for c in range(cols):
            most = max(most, _bits(row[c]) & top)
    return most != top


@helper_jit
def _causal_top(causal, i, j0, nk):
    """How many keys of the tile starting at ``j0`` query ``i`` may see before the causal cut."""
    if not causal:
        return nk
    return max(0, min(nk, i - j0 + 1))


@kernel_jit
def attention_forward(q, k, v, dims, keep, has_keep, causal, scale, out, lse, want_lse, bq, bk, lo, hi):
    """``out (N, L, Ev)`` and, if ``want_lse``, ``lse (N, L)`` for the query blocks ``lo..hi``.

    ``q``, ``k``, ``v`` are operands as :func:`rows_operand` gives them; ``dims`` is ``(N, L, S, E, Ev)``.
    """
    N, L, S, E, Ev = dims
    qf, qo, lq = q
    kf, ko, lk = k
    vf, vo, lv = v
    zero = out.dtype.type(0)
    ninf = out.dtype.type(-np.inf)
    nqb = (L + bq - 1) // bq
    s = np.empty((bq, bk), out.dtype)
    acc = np.empty((bq, Ev), out.dtype)
    m = np.empty(bq, out.dtype)
    total = np.empty(bq, out.dtype)
    last_n = -1
    clean = True
    for item in range(lo, hi):
        n = item // nqb
        i0 = (item - n * nqb) * bq
        nb = min(bq, L - i0)
        if n != last_n:
            clean = _rows_finite(v, n, S, Ev)
            last_n = n
        kend = min(S, i0 + nb) if causal else S
        m[:] = ninf
        total[:] = zero
        acc[:, :] = zero
        for j0 in range(0, kend, bk):
            nk = min(bk, kend - j0)
            gemm(False, True, nb, nk, E, scale, qf, qo[n] + i0 * lq, lq, kf, ko[n] + j0 * lk, lk, 0.0, s, 0, bk)
            for a in range(nb):
                top = _causal_top(causal, i0 + a, j0, nk)
                row = s[a, :top]  # 1-d views: their loops vectorize
                if has_keep:
                    for b in range(top):
                        if not keep[n, j0 + b]:
                            row[b] = ninf
                m_old = m[a]
                m_new = max(m_old, _row_max(row) if top > 0 else ninf)
                shift = m_new if m_new != ninf else zero  # only -inf so far: every p is exp(-inf) = 0
                rs = zero
                for b in range(top):
                    p = fexp(row[b] - shift)
                    row[b] = p
                    rs += p
                s[a, top:nk] = zero
                if m_old == ninf and total[a] == 0:  # nothing seen yet (not even a NaN): zeros to keep
                    total[a] = rs
                else:
                    alpha = fexp(m_old - shift) if m_old != ninf else zero
                    total[a] = total[a] * alpha + rs
                    if alpha != 1:  # a loop: ``acc[a, :] *= alpha`` cost 2 µs a block (measured)
                        for e in range(Ev):
                            acc[a, e] *= alpha
                m[a] = m_new
            if clean:
                gemm(False, False, nb, Ev, nk, 1.0, s, 0, bk, vf, vo[n] + j0 * lv, lv, 1.0, acc, 0, Ev)
            else:
                for a in range(nb):
                    for b in range(_causal_top(causal, i0 + a, j0, nk)):
                        if has_keep and not keep[n, j0 + b]:
                            continue
                        p = s[a, b]
                        at = vo[n] + (j0 + b) * lv
                        for e in range(Ev):
                            acc[a, e] += p * vf[at + e]
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
def attention_grads(q, k, v, dout, dims, lse, delta, keep, has_keep, causal, scale, dq, dk, dv, bq, bk, lo, hi):
    """``dq (N, L, E)``, ``dk (N, S, E)`` and ``dv (N, S, Ev)`` together, for the batch entries ``lo..hi``.

    Operands and ``dims`` as for :func:`attention_forward`. One item is one ``n``: its three
    gradients accumulate over all its tiles in the outputs themselves (no other item writes
    them), so any split across threads gives the same bits.
    """
    N, L, S, E, Ev = dims
    qf, qo, lq = q
    kf, ko, lk = k
    vf, vo, lv = v
    gf, go, lg = dout
    zero = dq.dtype.type(0)
    sc = dq.dtype.type(scale)
    p = np.empty((bq, bk), dq.dtype)
    ds = np.empty((bq, bk), dq.dtype)
    for n in range(lo, hi):
        dq[n, :, :] = zero
        dk[n, :, :] = zero
        dv[n, :, :] = zero
        # each product contracts with one operand: q (dk), k (dq), dout (dv)
        clean = _rows_finite(q, n, L, E) and _rows_finite(k, n, S, E) and _rows_finite(dout, n, L, Ev)
        for j0 in range(0, S, bk):
            nk = min(bk, S - j0)
            # under causal, the query blocks before the one holding query j0 see none of these keys
            for i0 in range(j0 // bq * bq if causal else 0, L, bq):
                nb = min(bq, L - i0)
                gemm(False, True, nb, nk, E, scale, qf, qo[n] + i0 * lq, lq, kf, ko[n] + j0 * lk, lk, 0.0, p, 0, bk)
                gemm(False, True, nb, nk, Ev, 1.0, gf, go[n] + i0 * lg, lg, vf, vo[n] + j0 * lv, lv, 0.0, ds, 0, bk)
                for a in range(nb):
                    top = _causal_top(causal, i0 + a, j0, nk)
                    li = lse[n, i0 + a]
                    di = delta[n, i0 + a]
                    # Whole rows, the causal cut zeroed after: loops of one length vectorize whole
                    # (a loop to ``top`` runs its tail scalar: ~3x the time per exp, measured)
                    prow = p[a, :nk]
                    drow = ds[a, :nk]
                    for b in range(nk):
                        pb = fexp(prow[b] - li)
                        prow[b] = pb
                        drow[b] = pb * (drow[b] - di)
                    if has_keep:
                        for b in range(top):
                            if not keep[n, j0 + b]:
                                prow[b] = zero
                                drow[b] = zero
                    p[a, top:nk] = zero
                    ds[a, top:nk] = zero
                if clean:
                    gemm(True, False, nk, Ev, nb, 1.0, p, 0, bk, gf, go[n] + i0 * lg, lg, 1.0,
                         dv, (n * S + j0) * Ev, Ev)
                    gemm(True, False, nk, E, nb, scale, ds, 0, bk, qf, qo[n] + i0 * lq, lq, 1.0,
                         dk, (n * S + j0) * E, E)
                    gemm(False, False, nb, E, nk, scale, ds, 0, bk, kf, ko[n] + j0 * lk, lk, 1.0,
                         dq, (n * L + i0) * E, E)
                    continue
                for a in range(nb):  # a non-finite operand: only the allowed pairs take part
                    i = i0 + a
                    for b in range(_causal_top(causal, i, j0, nk)):
                        j = j0 + b
                        if has_keep and not keep[n, j]:
                            continue
                        pw = p[a, b]
                        dw = ds[a, b] * sc
                        for e in range(Ev):
                            dv[n, j, e] += pw * gf[go[n] + i * lg + e]
                        for e in range(E):
                            dk[n, j, e] += dw * qf[qo[n] + i * lq + e]
                            dq[n, i, e] += dw * kf[ko[n] + j * lk + e]


# --- binding ------------------------------------------------------------------------------------
def reads_rows(a):
    """Whether the kernels read ``a (*B, rows, features)`` as it is: contiguous features, rows and
    batch entries at non-negative strides (a head split's ``permute`` of a packed ``qkv``); any
    other layout is copied first."""
    item = a.itemsize
    if a.ndim < 2 or any(st < 0 or st % item for st in a.strides):
        return False
    rows, features = a.shape[-2:]
    return (features <= 1 or a.strides[-1] == item) and (rows <= 1 or a.strides[-2] >= features * item)


def rows_operand(a):
    """``(flat, offsets, ld)``: ``a (*B, rows, features)`` for the kernels, where :func:`reads_rows`.

    Batch entry ``n`` (row-major over ``*B``) has row ``r`` at ``flat[offsets[n] + r * ld:][:features]``;
    ``flat`` is a 1-d view from ``a``'s first element (no copy), so a strided ``a`` costs nothing.

    >>> a = np.arange(24.0).reshape(2, 3, 4)[:, :, :2]      # rows 4 apart, features contiguous
    >>> flat, offsets, ld = rows_operand(a)
    >>> offsets.tolist(), ld, flat[offsets[1] + 2 * ld:][:2].tolist() == a[1, 2].tolist()
    ([0, 12], 4, True)
    """
    rows, features = a.shape[-2:]
    item = a.itemsize
    strides = [st // item for st in a.strides]
    offsets = np.zeros(1, np.int64)
    for size, st in zip(a.shape[:-2], strides[:-2]):
        offsets = (offsets[:, None] + np.arange(size, dtype=np.int64) * st).reshape(-1)
    ld = strides[-2] if rows > 1 else features
    span = 0 if a.size == 0 else int(offsets.max()) + (rows - 1) * ld + features
    flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(item,)) if span else np.empty(0, a.dtype)
    return flat, offsets, int(max(ld, 0))


def _tile(rows, features, length):
    """Keys per tile against ``rows`` queries: ``rows * tile * features`` <= TILE_WORK."""
    t = TILE_WORK // max(1, rows * max(1, features))
    return int(max(1, min(length, max(16, t // 16 * 16))))


class _Layout:
    """Flattened ``(N, L, E)`` / ``(N, S, E)`` / ``(N, S, Ev)`` sizes of one instruction, and its tiles."""

    def __init__(self, q_shape, k_shape, v_features, causal):
        *batch, self.L, self.E = q_shape
        self.S = k_shape[-2]
        self.Ev = v_features
        self.N = int(np.prod(batch, dtype=np.int64))
        self.bq = max(1, min(BLOCK, self.L))
        self.bk = _tile(self.bq, max(self.E, self.Ev), self.S)
        pairs = self.N * self.L * self.S // (2 if causal else 1)
        self.work = pairs * (self.E + self.Ev)  # multiply-adds of the forward, what the splitter weighs
        self.dims = (self.N, self.L, self.S, self.E, self.Ev)

    @classmethod
    def of(cls, ins, args):
        """The layout of an instruction whose operands start with ``q, k[, v]``."""
        v_features = args[2].shape[-1] if len(args) > 2 and args[2].dtype != np.bool_ else 0
        return cls(args[0].shape, args[1].shape, v_features, bool(ins.attrs["causal"]))

    def sizes(self, *what):
        """Element counts of the flattened ``out``/``lse``/``dq``/``dk``/``dv`` (a packed result's parts)."""
        size = {"out": self.L * self.Ev, "lse": self.L, "dq": self.L * self.E, "dk": self.S * self.E,
                "dv": self.S * self.Ev}
        return [self.N * size[w] for w in what]

    def unpack(self, flat, *what):
        """Views of ``flat``'s consecutive parts, shaped as the kernels take them."""
        shapes = {"out": (self.N, self.L, self.Ev), "lse": (self.N, self.L), "dq": (self.N, self.L, self.E),
                  "dk": (self.N, self.S, self.E), "dv": (self.N, self.S, self.Ev)}
        views, at = [], 0
        for w, size in zip(what, self.sizes(*what)):
            views.append(flat.reshape(-1)[at:at + size].reshape(shapes[w]))
            at += size
        return views

    def query_items(self):
        return self.N * -(-self.L // self.bq)

    def rows(self, a):
        return a.reshape(self.N, self.L)

    def keep(self, rest):
        """``(keep, has_keep)`` from the optional trailing operand."""
        if rest:
            return rest[0].reshape(self.N, self.S), True
        return np.ones((1, 1), np.bool_), False

    def forward(self, ins, qa, ka, va, keep, out, lse):
        """The forward kernel's step: ``out`` and, unless it is ``None``, ``lse``."""
        keep, has_keep = self.keep(keep)
        want_lse = lse is not None
        lse = lse if want_lse else np.empty((1, 1), out.dtype)
        return splitter(attention_forward, self.query_items(), self.work, rows_operand(qa), rows_operand(ka),
                        rows_operand(va), self.dims, keep, has_keep, bool(ins.attrs["causal"]),
                        float(ins.attrs["scale"]), out, lse, want_lse, self.bq, self.bk)

    def backward(self, ins, qa, ka, va, da, lse, delta, keep, dq, dk, dv):
        """The backward kernel's step: the three gradients, one batch entry per item."""
        keep, has_keep = self.keep(keep)
        return splitter(attention_grads, self.N, 3 * self.work, *(rows_operand(a) for a in (qa, ka, va, da)),
                        self.dims, self.rows(lse), self.rows(delta), keep, has_keep, bool(ins.attrs["causal"]),
                        float(ins.attrs["scale"]), dq, dk, dv, self.bq, self.bk)


def _strided(count):
    """``Impl.reads_strided`` of a kernel whose first ``count`` operands go through :func:`rows_operand`."""
    return lambda k, a: k < count and reads_rows(a)


def _attention(ins, args):
    lay = _Layout.of(ins, args)

    def bind(qa, ka, va, *rest):
        *keep, out = rest
        return lay.forward(ins, qa, ka, va, keep, *lay.unpack(out, "out"), None)

    return Impl(bind=bind, contiguous=True, reads_strided=_strided(3), label="numba.attention")


def _attention_lse(ins, args):
    lay = _Layout.of(ins, args)

    def bind(qa, ka, *rest):
        *keep, out = rest
        no_values = np.empty(qa.shape[:-2] + (lay.S, 0), qa.dtype)  # the same loop, without the value product
        return lay.forward(ins, qa, ka, no_values, keep, np.empty((lay.N, lay.L, 0), qa.dtype), lay.rows(out))

    return Impl(bind=bind, contiguous=True, reads_strided=_strided(2), label="numba.attention_lse")


def _attention_with_lse(ins, args):
    """``cpu.attention_with_lse``: the forward and its ``lse`` in one pass, packed ``[out | lse]``."""
    lay = _Layout.of(ins, args)

    def bind(qa, ka, va, *rest):
        *keep, packed = rest
        return lay.forward(ins, qa, ka, va, keep, *lay.unpack(packed, "out", "lse"))

    return Impl(bind=bind, contiguous=True, reads_strided=_strided(3), label="numba.attention_with_lse")


def _attention_backward(ins, args):
    """One gradient: the three-gradient kernel, the other two written to scratch."""
    lay = _Layout.of(ins, args)
    wrt = ins.attrs["wrt"]
    others = [w for w in _GRADS if w != "d" + wrt]
    scratch = tuple(((size,), ins.dtype) for size in lay.sizes(*others))

    def bind(qa, ka, va, da, lse, delta, *rest):
        keep, out, spare = rest[:-3], rest[-3], rest[-2:]
        grads = dict(zip(others, (lay.unpack(a, w)[0] for a, w in zip(spare, others))))
        grads["d" + wrt] = lay.unpack(out, "d" + wrt)[0]
        return lay.backward(ins, qa, ka, va, da, lse, delta, keep, *(grads[w] for w in _GRADS))

    return Impl(bind=bind, scratch=scratch, contiguous=True, reads_strided=_strided(4),
                label=f"numba.attention_backward_{wrt}")


def _attention_grads(ins, args):
    """``cpu.attention_grads``: the three gradients in one pass, packed ``[dq | dk | dv]``."""
    lay = _Layout.of(ins, args)

    def bind(qa, ka, va, da, lse, delta, *rest):
        *keep, packed = rest
        return lay.backward(ins, qa, ka, va, da, lse, delta, keep, *lay.unpack(packed, *_GRADS))

    return Impl(bind=bind, contiguous=True, reads_strided=_strided(4), label="numba.attention_grads")


_GRADS = ("dq", "dk", "dv")

KERNELS = {
    "attention": _attention,
    "attention_lse": _attention_lse,
    "attention_backward": _attention_backward,
    "cpu.attention_with_lse": _attention_with_lse,
    "cpu.attention_grads": _attention_grads,
}
