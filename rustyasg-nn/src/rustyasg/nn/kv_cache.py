"""Key/value caches for decoder models, as graph state: one compiled prefill and one compiled decode step.

A :class:`KVCache` holds, per layer, a key and a value variable of shape
``(N, kv_heads, max_len, head_dim)`` that live on the backend. A cached forward pass reads
them and records their new values; the compiled step applies those as state updates, so the
cache is an input and an output of the same compiled program and never travels to the host.
Every step has one signature (a fixed ``max_len`` window), so decoding N tokens compiles
nothing after the first token:

- *prefill* (``pos`` is None): tokens ``(N, T)`` at positions ``0..T-1`` with a causal mask;
  their keys and values fill slots ``0..T-1``.
- *decode* (``pos`` an int64 vector ``(N,)``): one token per row, row ``i`` at position
  ``pos[i]`` (prompts of different lengths decode side by side); its key and value are written
  into slot ``pos[i]`` and it attends to slots ``0..pos[i]``.

Example:
    >>> import rustyasg.core as rg
    >>> cache = KVCache(layers=1, batch=2, kv_heads=2, max_len=8, head_dim=4)
    >>> state = cache.decode_state(rg.input((2,), "int64", name="pos"))
    >>> q = rg.input((2, 4, 1, 4), name="q"); k = rg.input((2, 2, 1, 4), name="k")
    >>> state.attend(0, q, k, k).shape
    (2, 4, 1, 4)
    >>> len(state.updates())
    2
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor, Variable

from .attention import scaled_dot_product_attention
from .positional import apply_rotary, rotary_angles


def grouped_attention(q: Tensor, k: Tensor, v: Tensor, is_causal: bool = False, attn_mask: Optional[Tensor] = None,
                      key_padding_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """Attention of ``q`` ``(N, H, T, D)`` over ``k``/``v`` ``(N, G, S, D)`` where ``G`` divides ``H``.

    Grouped-query attention (Llama 2 70B, Mistral): query head ``h`` uses key/value head
    ``h // (H / G)``, as ``transformers``' ``repeat_kv``. The keys are broadcast, not copied.
    ``attn_mask`` / ``key_padding_mask`` follow :func:`scaled_dot_product_attention` and must
    be the same for every head.

    >>> q, k = rg.input((1, 4, 3, 8), name="q"), rg.input((1, 2, 3, 8), name="k")
    >>> grouped_attention(q, k, k, is_causal=True).shape
    (1, 4, 3, 8)
    """
    n, h, t, d = q.shape
    g = k.shape[1]
    if h == g:
        return scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                            key_padding_mask=key_padding_mask, scale=scale)
    if h % g:
        raise ValueError(f"grouped attention: {h} query heads are not a multiple of {g} key/value heads")
    qg = q.reshape((n, g, h // g, t, d))
    kg, vg = (x.reshape((n, g, 1) + tuple(x.shape[2:])) for x in (k, v))
    if attn_mask is not None and attn_mask.ndim >= 3:
        if attn_mask.shape[-3] != 1:
            raise ValueError("grouped attention: masks must not vary per head (shape (N, 1, T, S) or (T, S))")
        if attn_mask.ndim == 4:  # (N, 1, T, S) -> (N, 1, 1, T, S) against the grouped (N, G, H/G, T, S) scores
            attn_mask = attn_mask.reshape((attn_mask.shape[0], 1) + tuple(attn_mask.shape[1:]))
    out = scaled_dot_product_attention(qg, kg, vg, attn_mask=attn_mask, is_causal=is_causal,
                                       key_padding_mask=key_padding_mask, scale=scale)
    return out.reshape((n, h, t, d))


class KVCache:
    """Backend-resident key and value buffers of every layer, ``(batch, kv_heads, max_len, head_dim)``."""

    def __init__(self, layers: int, batch: int, kv_heads: int, max_len: int, head_dim: int, dtype="float32"):
        self.batch, self.max_len, self.kv_heads, self.head_dim = batch, max_len, kv_heads, head_dim
        shape = (batch, kv_heads, max_len, head_dim)
        self.keys: List[Variable] = [rg.variable(np.zeros(shape, dtype), name=f"cache.{i}.key", trainable=False)
                                     for i in range(layers)]
        self.values: List[Variable] = [rg.variable(np.zeros(shape, dtype), name=f"cache.{i}.value", trainable=False)
                                       for i in range(layers)]

    def prefill_state(self) -> "DecodeState":
        """A state for tracing the prefill step (positions from 0)."""
        return DecodeState(self, None)

    def decode_state(self, pos: Tensor) -> "DecodeState":
        """A state for tracing one decode step at the int positions ``pos`` ``(batch,)``, one per row."""
        if tuple(pos.shape) != (self.batch,) or pos.dtype not in (rg.int32, rg.int64):
            raise TypeError(f"decode positions must be an int tensor of shape ({self.batch},), "
                            f"got {pos.dtype}{tuple(pos.shape)}")
        return DecodeState(self, pos.astype("int64"))

    def nbytes(self) -> int:
        """Bytes held by the cache."""
        return sum(int(np.prod(v.shape)) * v.dtype.itemsize for v in self.keys + self.values)


class DecodeState:
    """What a cached forward pass needs to know while it is traced: the cache and the position."""

    def __init__(self, cache: KVCache, pos: Optional[Tensor]):
        self.cache, self.pos = cache, pos
        self._updates: Dict[Variable, Tensor] = {}

    @property
    def decoding(self) -> bool:
        return self.pos is not None

    def rows(self, table: Tensor, length: int) -> Tensor:
        """Rows of a per-position ``(P, D)`` table (learned positions, rotary angles) for the current tokens.

        ``(length, D)`` in a prefill (positions ``0..length-1`` for every row); ``(N, 1, D)`` in a
        decode step (row ``i`` at ``pos[i]``). Both broadcast against ``(N, length, D)``.
        """
        if self.pos is None:
            if length > self.cache.max_len:
                raise ValueError(f"prefill of {length} tokens exceeds the cache length {self.cache.max_len}")
            return table[:length]
        if length != 1:
            raise ValueError(f"a decode step takes one token per row, got {length}")
        return rg.take(table, self.pos, axis=0).reshape((self.cache.batch, 1, table.shape[-1]))

    def attend(self, layer: int, q: Tensor, k: Tensor, v: Tensor, scale: Optional[float] = None) -> Tensor:
        """Write ``k``/``v`` ``(N, G, T, D)`` into layer ``layer``'s cache and attend causally with ``q``."""
        keys, values = self.cache.keys[layer], self.cache.values[layer]
        t, length = k.shape[2], self.cache.max_len
        if self.pos is None:
            ck, cv = k.astype(keys.dtype), v.astype(values.dtype)
            if t < length:  # slots past the prompt keep what they held; decode overwrites them before use
                new_k = rg.concat(ck, keys[:, :, t:], axis=2)
                new_v = rg.concat(cv, values[:, :, t:], axis=2)
            else:
                new_k, new_v = ck, cv
            self._record(keys, new_k), self._record(values, new_v)
            return grouped_attention(q, k, v, is_causal=True, scale=scale)
        n = self.cache.batch
        slots, pos = rg.arange(length).reshape((1, length)), self.pos.reshape((n, 1))
        slot = (slots == pos).reshape((n, 1, length, 1))
        new_k, new_v = rg.where(slot, k.astype(keys.dtype), keys), rg.where(slot, v.astype(values.dtype), values)
        self._record(keys, new_k), self._record(values, new_v)
        visible = (slots <= pos).reshape((n, 1, 1, length))
        return grouped_attention(q, new_k.astype(q.dtype), new_v.astype(q.dtype), attn_mask=visible, scale=scale)

    def _record(self, var: Variable, value: Tensor) -> None:
        self._updates[var] = value

    def updates(self) -> Dict[Variable, Tensor]:
        """The cache's new values, for the compiled step's ``updates``."""
        return dict(self._updates)


def rotate(xs, dim: int, base: float, length: int, state: Optional[DecodeState] = None, interleaved: bool = False):
    """RoPE on the first ``dim`` features of each ``(..., T, head_dim)`` tensor in ``xs`` at the current positions.

    Positions are ``0..T-1`` without ``state``, else the cached step's (a decode step reads
    the angle rows at its runtime position, so the step is compiled once).

    >>> q = rg.input((1, 2, 3, 8), name="q")
    >>> rotate([q], 8, 10000.0, 3)[0].shape
    (1, 2, 3, 8)
    """
    xs = list(xs)
    dtype = xs[0].dtype
    table = rotary_angles(max(length, state.cache.max_len if state is not None else length), dim, base)
    cos, sin = rg.constant(np.cos(table), dtype), rg.constant(np.sin(table), dtype)
    if state is None:
        cos, sin = cos[:length], sin[:length]
    else:
        cos, sin = state.rows(cos, length), state.rows(sin, length)
        if cos.ndim == 3:  # per-row angles (N, 1, D/2) against (N, heads, 1, D/2)
            cos, sin = (t.reshape((t.shape[0], 1) + tuple(t.shape[1:])) for t in (cos, sin))
    out = []
    for x in xs:
        if x.shape[-1] == dim:
            out.append(apply_rotary(x, cos, sin, interleaved))
        else:  # partial rotary: the features past ``dim`` pass unchanged
            rot, rest = rg.split(x, [dim, x.shape[-1] - dim], axis=-1)
            out.append(rg.concat(apply_rotary(rot, cos, sin, interleaved), rest, axis=-1))
    return out


__all__ = ["KVCache", "DecodeState", "grouped_attention", "rotate"]
