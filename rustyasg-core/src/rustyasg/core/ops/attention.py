"""Fused scaled-dot-product attention: ``attention`` with ``attention_lse`` and ``attention_backward``.

The attention of queries ``q (*B, L, E)`` over keys ``k (*B, S, E)`` and values
``v (*B, S, Ev)`` as one op, so that a backend can run it flash-attention style
(tiles of keys, an online softmax, no ``(L, S)`` matrix in memory):

- ``s[i, j] = scale * q[i] . k[j]``; key ``j`` is *allowed* for query ``i`` unless
  ``causal`` and ``j > i`` (PyTorch's top-left aligned ``is_causal``), or the optional
  bool ``key_keep (*B, S)`` is False there (a padding mask, True = attend).
- ``out[i] = sum_j p[i, j] v[j]`` over the allowed keys, with ``p`` the softmax of
  ``s[i, :]`` over the allowed keys. Keys that are not allowed take no part at all:
  a NaN in a masked-out value does not reach the output.
- A query with no allowed key gives NaN (a softmax over an all-masked row does); with
  no keys at all (``S == 0``) the output is zeros, as ``softmax(s) @ v`` gives.

The gradient (flash-attention's backward, recomputing ``p`` instead of storing it):
``lse[i] = log(sum_j exp(s[i, j]))`` over the allowed keys (``attention_lse``, -inf for
a query with none), ``delta[i] = dout[i] . out[i]``, ``p = exp(s - lse)``,
``ds = p * (dout . v - delta)``, then ``dq = scale * ds @ k``, ``dk = scale * ds^T @ q``
and ``dv = p^T @ dout`` (``attention_backward`` with ``wrt`` = ``"q"``, ``"k"``, ``"v"``).
A query with no allowed key contributes no gradient.

Operands are floating and of one dtype; batch axes ``*B`` are equal (broadcast them
first). The gradient rules of ``attention_lse`` and ``attention_backward`` (second
derivatives) live in :mod:`rustyasg.core.attention_second_order`: they call autograd,
which the op modules do not import. Under mixed precision the op runs in float32 (its kernels accumulate there).

Example:
    >>> import numpy as np
    >>> import rustyasg.core as rg
    >>> q = rg.input((2, 4, 5, 8), name="q")
    >>> rg.attention(q, q, q, scale=0.125, causal=True).shape
    (2, 4, 5, 8)
    >>> x = np.random.default_rng(0).standard_normal((3, 4))
    >>> out = rg.evaluate(rg.attention(rg.constant(x), rg.constant(x), rg.constant(x), scale=0.5))
    >>> s = 0.5 * x @ x.T
    >>> p = np.exp(s - s.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    >>> bool(np.allclose(out, p @ x))
    True
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..builders import builder
from ..registry import Attr, Example, InputSpec, TensorType, as_bool, as_float
from ..shapes import format_shape, same_dim, same_shape
from ._define import defop
from .reduce import sum as reduce_sum

__all__ = ["attention", "attention_lse", "attention_backward"]

_WRT = ("q", "k", "v")


# --- shape rules --------------------------------------------------------------------------------
def _check_operands(q, k, v=None, keep=None):
    """Ranks, equal batch axes, matching feature/length axes, dtypes; raises ValueError/TypeError."""
    named = [("query", q), ("key", k)] + ([("value", v)] if v is not None else [])
    for what, t in named:
        if len(t.shape) < 2:
            raise ValueError(f"{what} needs rank >= 2 (..., length, features), got {format_shape(t.shape)}")
        if not dtypes.is_floating(t.dtype):
            raise TypeError(f"{what} must be floating-point, got {t.dtype}")
        if t.dtype != q.dtype:
            raise TypeError(f"query, key and value must share one dtype, got {q.dtype} and {t.dtype} ({what})")
        if not same_shape(t.shape[:-2], q.shape[:-2]):
            raise ValueError(f"{what} batch axes {format_shape(t.shape[:-2])} differ from the query's "
                             f"{format_shape(q.shape[:-2])} (broadcast them first)")
    if not same_dim(q.shape[-1], k.shape[-1]):
        raise ValueError(f"query and key feature sizes differ ({q.shape[-1]} vs {k.shape[-1]})")
    if v is not None and not same_dim(k.shape[-2], v.shape[-2]):
        raise ValueError(f"key and value lengths differ ({k.shape[-2]} vs {v.shape[-2]})")
    if keep is not None:
        want = tuple(q.shape[:-2]) + (k.shape[-2],)
        if keep.dtype != dtypes.bool_:
            raise TypeError(f"key_keep must be bool (True = attend), got {keep.dtype}")
        if not same_shape(keep.shape, want):
            raise ValueError(f"key_keep shape {format_shape(keep.shape)} must be {format_shape(want)} "
                             "(batch axes, key length)")


def _stat_dtype(dtype):
    """lse and delta are float32, or float64 for float64 operands."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _attention_infer(types, scale, causal):
    if len(types) not in (3, 4):
        raise ValueError(f"takes q, k, v and an optional key_keep, got {len(types)} operands")
    q, k, v = types[:3]
    _check_operands(q, k, v, types[3] if len(types) == 4 else None)
    return TensorType(tuple(q.shape[:-1]) + (v.shape[-1],), q.dtype)


def _lse_infer(types, scale, causal):
    if len(types) not in (2, 3):
        raise ValueError(f"takes q, k and an optional key_keep, got {len(types)} operands")
    q, k = types[:2]
    _check_operands(q, k, None, types[2] if len(types) == 3 else None)
    return TensorType(tuple(q.shape[:-1]), _stat_dtype(q.dtype))


def _backward_infer(types, scale, causal, wrt):
    if len(types) not in (6, 7):
        raise ValueError(f"takes q, k, v, dout, lse, delta and an optional key_keep, got {len(types)} operands")
    q, k, v, dout, lse, delta = types[:6]
    _check_operands(q, k, v, types[6] if len(types) == 7 else None)
    if not same_shape(dout.shape, tuple(q.shape[:-1]) + (v.shape[-1],)) or dout.dtype != q.dtype:
        raise ValueError(f"dout {format_shape(dout.shape)} {dout.dtype} must be shaped and typed like the output")
    for what, t in (("lse", lse), ("delta", delta)):
        if not same_shape(t.shape, q.shape[:-1]) or t.dtype != _stat_dtype(q.dtype):
            raise ValueError(f"{what} {format_shape(t.shape)} {t.dtype} must be {format_shape(q.shape[:-1])} "
                             f"{_stat_dtype(q.dtype)}")
    return {"q": q, "k": k, "v": v}[wrt]


# --- float64 references -------------------------------------------------------------------------
def _allowed(q, k, keep, causal):
    """Bool ``(*B, L, S)``: which keys each query attends."""
    L, S = q.shape[-2], k.shape[-2]
    allowed = np.ones(q.shape[:-2] + (L, S), bool)
    if causal:
        allowed &= np.tril(np.ones((L, S), bool))
    if keep is not None:
        allowed &= np.asarray(keep, bool)[..., None, :]
    return allowed


def _masked_scores(q, k, keep, scale, causal):
    allowed = _allowed(q, k, keep, causal)
    s = scale * np.matmul(q, np.swapaxes(k, -1, -2))
    return np.where(allowed, s, -np.inf), allowed


def _contract(w, allowed, x):
    """``sum_j w[i, j] x[j]`` over the allowed ``j`` only (an excluded term is not multiplied: 0 * NaN stays out)."""
    terms = np.where(allowed[..., None], w[..., None] * x[..., None, :, :], 0.0)
    return terms.sum(axis=-2)


def _lse_of(s):
    m = np.max(s, axis=-1, keepdims=True, initial=-np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        shifted = np.where(np.isneginf(s), -np.inf, s - np.where(np.isneginf(m), 0.0, m))
        return (np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True)) + m)[..., 0]


def _attention_ref(q, k, v, keep=None, *, scale, causal):
    if k.shape[-2] == 0:
        return np.zeros(q.shape[:-1] + (v.shape[-1],), q.dtype)
    s, allowed = _masked_scores(q, k, keep, scale, causal)
    m = np.max(s, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        e = np.exp(s - m)
        p = e / np.sum(e, axis=-1, keepdims=True)
        out = _contract(p, allowed, v)
    out[~allowed.any(axis=-1)] = np.nan  # no key to attend: NaN, as a softmax over an all-masked row
    return out.astype(q.dtype)


def _lse_ref(q, k, keep=None, *, scale, causal):
    s, _ = _masked_scores(q, k, keep, scale, causal)
    return _lse_of(s)


def _backward_ref(q, k, v, dout, lse, delta, keep=None, *, scale, causal, wrt):
    s, allowed = _masked_scores(q, k, keep, scale, causal)
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.where(allowed, np.exp(s - lse[..., None]), 0.0)
        dp = np.matmul(dout, np.swapaxes(v, -1, -2))
        ds = np.where(allowed, p * (dp - delta[..., None]), 0.0)
        if wrt == "q":
            return scale * _contract(ds, allowed, k)
        t = np.swapaxes
        if wrt == "k":
            return scale * _contract(t(ds, -1, -2), t(allowed, -1, -2), q)
        return _contract(t(p, -1, -2), t(allowed, -1, -2), dout)


# --- gradient rules -----------------------------------------------------------------------------
def _attention_grad(g, y, q, k, v, *keep, scale, causal):
    attrs = {"scale": scale, "causal": causal}
    stat = _stat_dtype(q.dtype)
    lse = attention_lse(q, k, *keep, **attrs)
    delta = reduce_sum((g * y).astype(stat), axis=-1)
    grads = tuple(attention_backward(q, k, v, g, lse, delta, *keep, wrt=w, **attrs) for w in _WRT)
    return grads + (None,) * len(keep)


# --- ops ----------------------------------------------------------------------------------------
_ATTRS = {"scale": Attr(as_float, 1.0, "multiplies q . k"),
          "causal": Attr(as_bool, False, "query i attends keys j <= i")}


def _keep_mask(shape):
    return InputSpec(shape, dtype="bool", generator=lambda rng: rng.random(shape) < 0.7, differentiable=False)


_EX = (Example((InputSpec((3, 4)), InputSpec((5, 4)), InputSpec((5, 2))), {"scale": 0.7, "causal": False}),
       Example((InputSpec((2, 5, 3)),) * 3, {"scale": 0.5, "causal": True}),
       Example((InputSpec((2, 4, 3)), InputSpec((2, 6, 3)), InputSpec((2, 6, 3)), _keep_mask((2, 6))),
               {"scale": 1.0, "causal": False}, check_grad=False))

_attention = defop("attention", infer=_attention_infer, reference=_attention_ref, grad=_attention_grad,
                   attrs=_ATTRS, kind="nn", num_inputs=None, examples=_EX, precision="float32",
                   doc="Fused scaled-dot-product attention ``softmax(scale * q k^T, masked) v``. "
                       "Use :func:`attention` or ``nn.scaled_dot_product_attention``.")
attention_lse = defop("attention_lse", infer=_lse_infer, reference=_lse_ref, grad=None,
                      attrs=_ATTRS, kind="nn", num_inputs=None, precision="float32",
                      examples=(Example((InputSpec((3, 4)), InputSpec((5, 4))), {"scale": 0.7, "causal": False}),
                                Example((InputSpec((2, 5, 3)),) * 2, {"scale": 0.5, "causal": True})),
                      doc="Row-wise log-sum-exp of the masked attention scores ``(*B, L)``, saved by "
                          "the fused attention's gradient.")


def _backward_example(causal):
    shapes = ((2, 5, 3),) * 4 if causal else ((3, 4), (5, 4), (5, 2), (3, 2))
    L = shapes[0][:-1]
    return Example(tuple(InputSpec(s) for s in shapes) + (InputSpec(L, low=0.5, high=2.0, at_least="float32"),
                                                         InputSpec(L, at_least="float32")),
                   {"scale": 0.6, "causal": causal, "wrt": "k"}, check_grad=False)


attention_backward = defop(
    "attention_backward", infer=_backward_infer, reference=_backward_ref, grad=None,
    attrs=dict(_ATTRS, wrt=Attr(lambda w: _check_wrt(w), "q", "which gradient: 'q', 'k' or 'v'")), kind="nn",
    num_inputs=None, precision="float32", examples=(_backward_example(False), _backward_example(True)),
    doc="One gradient of the fused attention: ``(q, k, v, dout, lse, delta[, key_keep]) -> d{wrt}``.")


def _check_wrt(w):
    if w not in _WRT:
        raise ValueError(f"wrt must be one of {_WRT}, got {w!r}")
    return str(w)


@builder()
def attention(q, k, v, key_keep=None, scale=None, causal=False, name=None):
    """Fused ``softmax(scale * q @ k^T) @ v`` (see the module doc for masks and edge rows).

    ``scale`` defaults to ``1 / sqrt(E)``; ``key_keep`` is a bool ``(*B, S)`` padding mask
    (True = attend). Usually reached through ``nn.scaled_dot_product_attention``.

    >>> import rustyasg.core as rg
    >>> rg.attention(rg.input((4, 6, 8)), rg.input((4, 7, 8)), rg.input((4, 7, 2))).shape
    (4, 6, 2)
    """
    from ..graph import as_tensor

    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    if scale is None:
        e = q.shape[-1] if q.shape else None
        scale = 1.0 / float(np.sqrt(e)) if isinstance(e, int) and e > 0 else 1.0
    keep = () if key_keep is None else (as_tensor(key_keep),)
    return _attention(q, k, v, *keep, scale=float(scale), causal=bool(causal), name=name)
