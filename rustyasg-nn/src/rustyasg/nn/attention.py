"""Attention: ``scaled_dot_product_attention`` and ``MultiheadAttention``.

``scaled_dot_product_attention`` composes matmul, softmax and where by default, the
gradient coming from the ops' rules. ``fused=True`` builds the fused ``attention`` op
instead (flash attention on the backends: no ``(L, S)`` matrix in memory) or an error
naming what prevents it; ``fused=None`` builds it where the arguments allow and composes
otherwise. The op serves no mask, a causal mask, a key padding mask, or a bool
``attn_mask`` that masks keys only; no dropout, bias or float mask, and no returned
weights. Which form is faster depends on the backend, so the choice is the caller's: on
the cpu the fused kernels make GPT-mini's training step faster (``benchmarks/attention_cpu.py
--gpt``: 22.2 vs 24.0 ms, one thread), on an H100 through wgpu the composed chain's tuned
GEMMs win (W5: 36.0 ms composed, 42.0 ms fused; ``benchmarks/gpu/NOTES.md``). The two
forms differ only where a masked-out value is NaN or infinite: the fused op leaves it
out, the composed chain multiplies it by a zero weight (NaN). Masks are built at graph-build time
(constants), so the batch dimension may stay symbolic; sequence lengths must
be concrete when a causal mask is requested.

Mask conventions follow PyTorch exactly, which differ between the two APIs:

- ``scaled_dot_product_attention``: a bool ``attn_mask`` is True where attention
  is *allowed*; a float one is added to the scores.
- ``MultiheadAttention``: a bool ``attn_mask`` / ``key_padding_mask`` is True where
  attention is *not allowed* (padding); float masks are added.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import scaled_dot_product_attention
    >>> q = rg.input((None, 4, 6, 8), name="q")
    >>> scaled_dot_product_attention(q, q, q, is_causal=True).shape
    (Dim(q.0), 4, 6, 8)
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import check_rank, shape_error
from .dropout import dropout
from .linear import Linear, linear
from .module import Module


def causal_mask(q_len: int, k_len: int) -> Tensor:
    """Bool ``(q_len, k_len)`` constant, True where key ``j <= i`` (PyTorch's top-left aligned ``tril``).

    >>> causal_mask(2, 3).attrs["value"].tolist()
    [[True, False, False], [True, True, False]]
    """
    if not (isinstance(q_len, int) and isinstance(k_len, int)):
        raise shape_error("causal attention", f"needs concrete sequence lengths, got {q_len} and {k_len}")
    return rg.constant(np.tril(np.ones((q_len, k_len), dtype=bool)))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 key_padding_mask: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                                 rng: Optional[rg.RNG] = None, return_weights: bool = False,
                                 enable_gqa: bool = False, fused: Optional[bool] = False):
    """``softmax(q @ k^T * scale + bias + mask) @ v`` over the last two axes (``(..., L, E)``).

    - ``attn_mask``: bool (True = may attend) or float (added), broadcast to ``(..., L, S)``.
    - ``is_causal``: query ``i`` attends keys ``j <= i``.
    - ``key_padding_mask``: bool ``(N, S)``, True = padding (ignored key), PyTorch MHA's convention.
    - ``bias``: additive float bias such as ALiBi, broadcast to ``(..., L, S)``.
    - ``dropout_p`` with ``rng``: dropout on the attention weights.
    - ``return_weights``: also return the attention weights.
    - ``enable_gqa``: grouped-query attention: ``(..., Hq, L, E)`` queries over ``(..., Hkv, S, E)``
      keys/values, each key/value head serving ``Hq / Hkv`` query heads (``repeat_interleave``).
    - ``fused``: ``False`` (default) composes; ``True`` requires the fused ``attention`` op
      (an error says what prevents it); ``None`` builds it where these arguments allow it,
      else composes (see the module doc).

    >>> q, k = rg.input((2, 5, 8), name="q"), rg.input((2, 7, 8), name="k")
    >>> scaled_dot_product_attention(q, k, k).shape
    (2, 5, 8)
    """
    where = "scaled_dot_product_attention"
    for t in (query, key, value):
        if t.ndim < 2:
            raise shape_error(where, "query, key and value need rank >= 2 (..., length, features)",
                              query, key, value)
    if query.shape[-1] != key.shape[-1]:
        raise shape_error(where, f"query and key feature sizes differ ({query.shape[-1]} vs {key.shape[-1]})",
                          query, key)
    if key.shape[-2] != value.shape[-2]:
        raise shape_error(where, f"key and value lengths differ ({key.shape[-2]} vs {value.shape[-2]})", key, value)
    if enable_gqa:
        key, value = _repeat_kv_heads(query, key, where), _repeat_kv_heads(query, value, where)
    if is_causal and attn_mask is not None:
        raise ValueError(f"{where}: pass either attn_mask or is_causal, not both (as PyTorch)")
    d = query.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    if fused is None or fused:
        blocker = _fused_blocker(dropout_p, bias, return_weights, attn_mask, key_padding_mask)
        keep, mask_blocker = (None, None) if blocker else _fused_key_keep(query, key, attn_mask, key_padding_mask)
        blocker = blocker or mask_blocker
        if blocker is None:
            key, value = _to_query_batch(query, key), _to_query_batch(query, value)
            return rg.attention(query, key, value, keep, scale=scale, causal=is_causal)
        if fused:
            raise shape_error(where, f"fused=True, but {blocker}", query, key, value)
    scores = rg.matmul(query * scale, key.mT)  # scaling q first keeps the (L, S) tensor one op shorter
    if bias is not None:
        scores = scores + bias
    allowed = None
    if is_causal:
        allowed = causal_mask(query.shape[-2], key.shape[-2])
    elif attn_mask is not None:
        if attn_mask.dtype == rg.bool_:
            allowed = attn_mask
        else:
            scores = scores + attn_mask
    if key_padding_mask is not None:
        check_rank(where, key_padding_mask, 2, "key_padding_mask (N, S)")
        if key_padding_mask.dtype != rg.bool_:
            scores = scores + _batch_key_mask(key_padding_mask, scores)
        else:
            keep = rg.logical_not(_batch_key_mask(key_padding_mask, scores))
            allowed = keep if allowed is None else rg.logical_and(allowed, keep)
    if allowed is not None:
        scores = rg.where(allowed, scores, -math.inf)
    weights = rg.softmax(scores, axis=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True, rng)
    out = rg.matmul(weights, value)
    return (out, weights) if return_weights else out


def _repeat_kv_heads(query: Tensor, kv: Tensor, where: str) -> Tensor:
    """Key/value heads (axis -3) repeated to the query's head count (PyTorch's ``enable_gqa``)."""
    if query.ndim < 3 or kv.ndim < 3:
        raise shape_error(where, "enable_gqa needs a heads axis: (..., heads, length, features)", query, kv)
    hq, hkv = query.shape[-3], kv.shape[-3]
    if hq == hkv:
        return kv
    if not (isinstance(hq, int) and isinstance(hkv, int)) or hkv == 0 or hq % hkv:
        raise shape_error(where, f"query heads ({hq}) must be a multiple of key/value heads ({hkv})", query, kv)
    return rg.repeat_interleave(kv, hq // hkv, dim=kv.ndim - 3)


def _fused_blocker(dropout_p, bias, return_weights, attn_mask, key_padding_mask) -> Optional[str]:
    """Why the fused ``attention`` op cannot serve these arguments (None: it can)."""
    if dropout_p > 0.0:
        return "dropout on the attention weights needs the composed form"
    if bias is not None:
        return "an additive bias needs the composed form"
    if return_weights:
        return "returning the attention weights needs the composed form"
    for what, m in (("attn_mask", attn_mask), ("key_padding_mask", key_padding_mask)):
        if m is not None and m.dtype != rg.bool_:
            return f"a float {what} needs the composed form"
    return None


def _fused_key_keep(query: Tensor, key: Tensor, attn_mask, key_padding_mask):
    """The fused op's ``key_keep`` ``(*B, S)`` from the masks, and why not (None: it can)."""
    batch, s = tuple(query.shape[:-2]), key.shape[-2]
    keeps = []
    if attn_mask is not None and attn_mask.dtype == rg.bool_:
        if attn_mask.ndim < 2 or attn_mask.shape[-2] != 1:
            return None, "a bool attn_mask over queries and keys needs the composed form (a mask over keys alone, shaped (..., 1, S), fuses)"
        keeps.append(attn_mask.reshape(tuple(attn_mask.shape[:-2]) + (attn_mask.shape[-1],)))
    if key_padding_mask is not None and key_padding_mask.dtype == rg.bool_:
        check_rank("scaled_dot_product_attention", key_padding_mask, 2, "key_padding_mask (N, S)")
        if query.ndim < 3:
            return None, "key_padding_mask needs a batch axis on the query"
        n = key_padding_mask.shape[0]
        keeps.append(rg.logical_not(key_padding_mask).reshape((n,) + (1,) * (query.ndim - 3) + (s,)))
    if not keeps:
        return None, None
    keep = keeps[0] if len(keeps) == 1 else rg.logical_and(keeps[0], keeps[1])
    target = batch + (s,)
    return (keep if tuple(keep.shape) == target else rg.broadcast_to(keep, shape=target)), None


def _to_query_batch(query: Tensor, kv: Tensor) -> Tensor:
    """Key or value broadcast to the query's batch axes (the fused op wants them equal)."""
    target = tuple(query.shape[:-2]) + tuple(kv.shape[-2:])
    return kv if tuple(kv.shape) == target else rg.broadcast_to(kv, shape=target)


def _batch_key_mask(mask: Tensor, scores: Tensor) -> Tensor:
    """Reshape an ``(N, S)`` key mask to broadcast against ``(N, ..., L, S)`` scores."""
    extra = scores.ndim - 2
    n, s = mask.shape
    return mask.reshape((n,) + (1,) * extra + (s,))


def _allowed_mask(attn_mask: Optional[Tensor], dtype) -> Optional[Tensor]:
    """An MHA ``attn_mask`` (bool True = blocked, or additive float) in SDPA's convention."""
    if attn_mask is None:
        return None
    if attn_mask.dtype == rg.bool_:
        return rg.logical_not(attn_mask)  # SDPA's bool masks mean "allowed"
    return attn_mask.astype(dtype)


class MultiheadAttention(Module):
    """Multi-head attention with PyTorch's parameters and names.

    ``in_proj_weight`` ``(3E, E)`` and ``in_proj_bias`` when query, key and value all
    have ``embed_dim`` features, else ``q_proj_weight`` / ``k_proj_weight`` /
    ``v_proj_weight``; ``out_proj`` is a :class:`Linear`. ``batch_first=True`` is the
    default here (inputs ``(N, L, E)``). ``forward`` returns ``(output, weights)``;
    weights are averaged over heads unless ``average_attn_weights=False``, and are
    ``None`` when ``need_weights=False``.

    >>> mha = MultiheadAttention(8, 2)
    >>> x = rg.input((None, 5, 8), name="x")
    >>> out, w = mha(x, x, x)
    >>> out.shape, w.shape
    ((Dim(x.0), 5, 8), (Dim(x.0), 5, 5))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: Optional[int] = None, vdim: Optional[int] = None, batch_first: bool = True,
                 dtype="float32"):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.head_dim = embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.batch_first = batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = rg.variable(init.xavier_uniform((3 * embed_dim, embed_dim), dtype=dtype),
                                              name="in_proj_weight")
        else:
            for name, fan in (("q_proj_weight", embed_dim), ("k_proj_weight", self.kdim),
                              ("v_proj_weight", self.vdim)):
                setattr(self, name, rg.variable(init.xavier_uniform((embed_dim, fan), dtype=dtype), name=name))
        self.register_parameter("in_proj_bias", init.zeros((3 * embed_dim,), dtype=dtype) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:
            self.out_proj.bias.assign(init.zeros((embed_dim,), dtype=dtype))

    def _projections(self):
        """(weight, bias) of the q, k and v projections, sliced from the packed tensors if packed."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            ws = [self.in_proj_weight[i * e:(i + 1) * e] for i in range(3)]
        else:
            ws = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        bs = [None] * 3 if self.in_proj_bias is None else [self.in_proj_bias[i * e:(i + 1) * e] for i in range(3)]
        return list(zip(ws, bs))

    def _split_heads(self, x: Tensor) -> Tensor:
        n, length = x.shape[0], x.shape[1]
        return x.reshape((n, length, self.num_heads, self.head_dim)).transpose((0, 2, 1, 3))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        where = "MultiheadAttention"
        for t, feat, what in ((query, self.embed_dim, "query"), (key, self.kdim, "key"), (value, self.vdim, "value")):
            check_rank(where, t, 3, what)
            if t.shape[-1] != feat:
                raise shape_error(where, f"{what} has {t.shape[-1]} features, expected {feat}", t)
        if not self.batch_first:
            query, key, value = (t.transpose((1, 0, 2)) for t in (query, key, value))
        if key.shape[:2] != value.shape[:2]:
            raise shape_error(where, "key and value must have the same batch and length", key, value)
        (wq, bq), (wk, bk), (wv, bv) = self._projections()
        if query is key and key is value and self._qkv_same_embed_dim:
            # Self-attention: one packed projection instead of three.
            q, k, v = rg.split(linear(query, self.in_proj_weight, self.in_proj_bias), 3, axis=-1)
        else:
            q, k, v = linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        if attn_mask is not None and attn_mask.ndim == 3:
            # PyTorch's (N * num_heads, L, S) masks
            attn_mask = attn_mask.reshape((-1, self.num_heads) + attn_mask.shape[1:])
        mask = _allowed_mask(attn_mask, q.dtype)
        # PyTorch treats is_causal as a hint only when an attn_mask is also given
        out, weights = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal and mask is None, key_padding_mask=key_padding_mask,
            dropout_p=self.dropout if self.training else 0.0,
            rng=self.rng if self.training and self.dropout > 0 else None, return_weights=True)
        n, length = out.shape[0], out.shape[2]
        out = self.out_proj(out.transpose((0, 2, 1, 3)).reshape((n, length, self.embed_dim)))
        if not self.batch_first:
            out = out.transpose((1, 0, 2))
        if not need_weights:
            return out, None
        return out, weights.mean(axis=1) if average_attn_weights else weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
