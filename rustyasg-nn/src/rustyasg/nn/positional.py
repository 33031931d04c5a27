"""Positional encodings: sinusoidal, learned, rotary (RoPE) and ALiBi.

Tables that do not train (sinusoidal, RoPE angles, ALiBi biases) are computed
once with numpy and enter the graph as constants for the concrete sequence
length, so nothing is recomputed per step and they stay out of ``state_dict``.
Sequences are ``(N, T, D)`` (batch first); the batch dimension may be symbolic.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import RotaryEmbedding
    >>> q = rg.input((None, 4, 10, 16), name="q")   # (N, heads, T, head_dim)
    >>> RotaryEmbedding(16)(q).shape
    (Dim(q.0), 4, 10, 16)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import shape_error
from .dropout import dropout
from .module import Module


def _static_length(where: str, x: Tensor, axis: int) -> int:
    t = x.shape[axis]
    if not isinstance(t, int):
        raise shape_error(where, f"needs a concrete sequence length along axis {axis}, got {t}", x)
    return t


def _check_range(where: str, offset: int, length: int, max_len: int) -> None:
    if offset < 0 or offset + length > max_len:
        raise ValueError(f"{where}: positions {offset}..{offset + length - 1} exceed max_len {max_len}")


# --- sinusoidal ----------------------------------------------------------------------
@lru_cache(maxsize=32)
def sinusoidal_table(length: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """``(length, dim)`` float64 table of "Attention Is All You Need": sin on even, cos on odd features.

    >>> sinusoidal_table(3, 4)[1].round(4).tolist()
    [0.8415, 0.5403, 0.01, 1.0]
    """
    pos = np.arange(length, dtype=np.float64)[:, None]
    inv = np.exp(np.arange(0, dim, 2, dtype=np.float64) * (-math.log(base) / dim))
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(pos * inv)
    table[:, 1::2] = np.cos(pos * inv[: dim // 2])
    table.setflags(write=False)
    return table


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal table to ``(N, T, d_model)`` inputs (then optional dropout).

    >>> pe = SinusoidalPositionalEncoding(8, max_len=32)
    >>> pe(rg.input((None, 5, 8), name="x")).shape
    (Dim(x.0), 5, 8)
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, base: float = 10000.0):
        super().__init__()
        self.d_model, self.max_len, self.p, self.base = d_model, max_len, float(dropout), base

    def encoding(self, length: int, offset: int = 0, dtype="float32") -> Tensor:
        """The ``(length, d_model)`` table for positions ``offset..offset+length-1`` as a constant."""
        _check_range("SinusoidalPositionalEncoding", offset, length, self.max_len)
        return rg.constant(sinusoidal_table(offset + length, self.d_model, self.base)[offset:], dtype)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if x.shape[-1] != self.d_model:
            raise shape_error("SinusoidalPositionalEncoding", f"expected {self.d_model} features", x)
        y = x + self.encoding(_static_length("SinusoidalPositionalEncoding", x, -2), offset, x.dtype)
        return dropout(y, self.p, self.training, self.rng if self.training and self.p > 0 else None)


# --- learned -----------------------------------------------------------------------------
class LearnedPositionalEmbedding(Module):
    """A trainable ``(max_len, d_model)`` table ``weight`` (``N(0, 1)`` init, as an ``Embedding``).

    ``forward(x)`` adds rows ``offset..offset+T-1`` to ``(N, T, d_model)`` inputs;
    ``embeddings(T)`` returns those rows alone.

    >>> LearnedPositionalEmbedding(16, 8)(rg.input((2, 5, 8), name="x")).shape
    (2, 5, 8)
    """

    def __init__(self, max_len: int, d_model: int, dtype="float32", std: float = 1.0):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.weight = rg.variable(init.normal((max_len, d_model), std=std, dtype=dtype), name="weight")

    def embeddings(self, length: int, offset: int = 0) -> Tensor:
        _check_range("LearnedPositionalEmbedding", offset, length, self.max_len)
        return self.weight[offset:offset + length]

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if x.shape[-1] != self.d_model:
            raise shape_error("LearnedPositionalEmbedding", f"expected {self.d_model} features", x)
        return x + self.embeddings(_static_length("LearnedPositionalEmbedding", x, -2), offset)


# --- rotary ---------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def rotary_angles(length: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """``(length, dim // 2)`` rotation angles ``pos * base ** (-2i / dim)`` (RoFormer / GPT-NeoX).

    >>> rotary_angles(2, 4).round(3).tolist()
    [[0.0, 0.0], [1.0, 0.01]]
    """
    inv = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = np.arange(length, dtype=np.float64)[:, None] * inv[None, :]
    angles.setflags(write=False)
    return angles


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool = False) -> Tensor:
    """Rotate feature pairs of ``x`` (``(..., T, dim)``) by angles with ``cos``/``sin`` of shape ``(T, dim/2)``.

    Pairs are ``(i, i + dim/2)`` (``interleaved=False``, GPT-NeoX / Llama) or
    ``(2i, 2i+1)`` (``interleaved=True``, GPT-J / RoFormer).
    """
    d = x.shape[-1]
    if interleaved:
        pairs = x.reshape(x.shape[:-1] + (d // 2, 2))
        a, b = (rg.squeeze(t, -1) for t in rg.split(pairs, 2, axis=-1))
    else:
        a, b = rg.split(x, 2, axis=-1)
    ra, rb = a * cos - b * sin, a * sin + b * cos
    if interleaved:
        return rg.stack([ra, rb], axis=-1).reshape(x.shape)
    return rg.concat(ra, rb, axis=-1)


class RotaryEmbedding(Module):
    """Rotary position embedding (RoPE) of the first ``dim`` features of ``(..., T, head_dim)`` tensors.

    Apply it to queries and keys after the head split; features past ``dim`` pass
    unchanged (partial rotary). ``offset`` shifts positions (for cached decoding).

    >>> rope = RotaryEmbedding(8, interleaved=True)
    >>> rope(rg.input((2, 3, 6, 8), name="k"), offset=4).shape
    (2, 3, 6, 8)
    """

    def __init__(self, dim: int, base: float = 10000.0, max_len: int = 8192, interleaved: bool = False):
        super().__init__()
        if dim % 2:
            raise ValueError(f"RotaryEmbedding: dim must be even, got {dim}")
        self.dim, self.base, self.max_len, self.interleaved = dim, base, max_len, interleaved

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if x.shape[-1] < self.dim:
            raise shape_error("RotaryEmbedding", f"rotates {self.dim} features but the input has {x.shape[-1]}", x)
        t = _static_length("RotaryEmbedding", x, -2)
        _check_range("RotaryEmbedding", offset, t, self.max_len)
        angles = rotary_angles(offset + t, self.dim, self.base)[offset:]
        cos, sin = rg.constant(np.cos(angles), x.dtype), rg.constant(np.sin(angles), x.dtype)
        if x.shape[-1] == self.dim:
            return apply_rotary(x, cos, sin, self.interleaved)
        rot, rest = rg.split(x, [self.dim, x.shape[-1] - self.dim], axis=-1)
        return rg.concat(apply_rotary(rot, cos, sin, self.interleaved), rest, axis=-1)

    def extra_repr(self):
        return f"dim={self.dim}, base={self.base}, interleaved={self.interleaved}"


# --- ALiBi ---------------------------------------------------------------------------------------
def alibi_slopes(num_heads: int) -> np.ndarray:
    """Per-head slopes of ALiBi (Press et al.): ``2^(-8i/n)``, interleaved for non-powers of two.

    >>> alibi_slopes(4).tolist()
    [0.25, 0.0625, 0.015625, 0.00390625]
    """
    def power_of_two(n):
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]

    if math.log2(num_heads).is_integer():
        return np.array(power_of_two(num_heads))
    closest = 2 ** math.floor(math.log2(num_heads))
    extra = power_of_two(2 * closest)[0::2][: num_heads - closest]
    return np.array(power_of_two(closest) + extra)


def alibi_bias(num_heads: int, q_len: int, k_len: int, offset: int = 0, symmetric: bool = False) -> np.ndarray:
    """``(num_heads, q_len, k_len)`` float64 biases ``-slope * distance`` with query ``i`` at position ``i + offset``.

    ``distance`` is ``i + offset - j`` (keys in the future get a positive bias and
    are meant to be masked causally) or ``|i + offset - j|`` when ``symmetric``.

    >>> alibi_bias(1, 2, 2)[0].tolist()
    [[-0.0, 0.00390625], [-0.00390625, -0.0]]
    """
    dist = (np.arange(q_len)[:, None] + offset) - np.arange(k_len)[None, :]
    if symmetric:
        dist = np.abs(dist)
    return -alibi_slopes(num_heads)[:, None, None] * dist[None, :, :]


class ALiBi(Module):
    """Attention with Linear Biases: ``forward(q_len, k_len)`` gives the additive ``(heads, L, S)`` bias.

    Pass it as ``bias=`` to :func:`scaled_dot_product_attention` together with ``is_causal``.

    >>> ALiBi(4)(6, 6).shape
    (4, 6, 6)
    """

    def __init__(self, num_heads: int, symmetric: bool = False):
        super().__init__()
        self.num_heads, self.symmetric = num_heads, symmetric

    def forward(self, q_len: int, k_len: int = None, offset: int = 0, dtype="float32") -> Tensor:
        k_len = q_len if k_len is None else k_len
        return rg.constant(alibi_bias(self.num_heads, q_len, k_len, offset, self.symmetric), dtype)

    def extra_repr(self):
        return f"num_heads={self.num_heads}"
