"""``GPT``: a decoder-only causal transformer language model (GPT-2 layout, nanoGPT names).

Parameters are named as in nanoGPT / Hugging Face GPT-2 (``transformer.wte``,
``transformer.h.0.attn.c_attn``, ``transformer.ln_f``, ``lm_head``) with ``Linear``
weights in PyTorch's ``(out, in)`` layout. Positions are learned (``wpe``) or rotary
(RoPE on queries and keys, no ``wpe``); ``tie_weights`` shares ``lm_head.weight``
with ``wte.weight``.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
    >>> model(rg.input((None, 16), "int64", name="idx")).shape
    (Dim(idx.0), 16, 50)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from .. import init
from .._checks import check_rank, shape_error
from ..activations import get_activation
from ..attention import scaled_dot_product_attention
from ..kv_cache import DecodeState, KVCache, rotate
from ..containers import ModuleDict, ModuleList
from ..dropout import Dropout
from ..embedding import Embedding
from ..linear import Linear
from ..module import Module
from ..normalization import LayerNorm
from ..positional import RotaryEmbedding


#: ``GPTConfig.attention`` -> ``scaled_dot_product_attention``'s ``fused``.
ATTENTION = {"auto": None, "fused": True, "composed": False}


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPT` (GPT-2 small is 50257/1024/12/12/768)."""

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    positions: str = "learned"  # or "rotary"
    tie_weights: bool = True
    rotary_base: float = 10000.0
    layer_norm_eps: float = 1e-5
    activation: str = "gelu_tanh"
    attention: str = "composed"  # "fused" / "auto": see nn.scaled_dot_product_attention's ``fused``

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd {self.n_embd} must be divisible by n_head {self.n_head}")
        if self.positions not in ("learned", "rotary"):
            raise ValueError(f"GPTConfig: positions must be 'learned' or 'rotary', got {self.positions!r}")
        if self.attention not in ATTENTION:
            raise ValueError(f"GPTConfig: attention must be one of {sorted(ATTENTION)}, got {self.attention!r}")


class CausalSelfAttention(Module):
    """Packed ``c_attn`` (q, k, v) projection, causal attention, ``c_proj`` output projection."""

    def __init__(self, cfg: GPTConfig, dtype="float32", layer: int = 0):
        super().__init__()
        self.n_head, self.n_embd, self.dropout, self.layer = cfg.n_head, cfg.n_embd, cfg.dropout, layer
        self.fused = ATTENTION[cfg.attention]
        self.c_attn = Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.c_proj = Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.resid_dropout = Dropout(cfg.dropout)
        self.rotary = (RotaryEmbedding(cfg.n_embd // cfg.n_head, base=cfg.rotary_base, max_len=cfg.block_size)
                       if cfg.positions == "rotary" else None)

    def forward(self, x: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        """Causal self-attention of ``(N, T, C)``; with ``state``, one cached prefill or decode step."""
        n, t, c = x.shape
        heads = [h.reshape((n, t, self.n_head, c // self.n_head)).transpose((0, 2, 1, 3))
                 for h in rg.split(self.c_attn(x), 3, axis=-1)]
        q, k, v = heads
        if self.rotary is not None and state is None:
            q, k = self.rotary(q), self.rotary(k)
        elif self.rotary is not None:
            r = self.rotary
            q, k = rotate([q, k], r.dim, r.base, t, state, r.interleaved)
        p = self.dropout if self.training else 0.0
        if state is None:
            y = scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, rng=self.rng if p > 0 else None,
                                             fused=self.fused)
        else:
            y = state.attend(self.layer, q, k, v)
        y = y.transpose((0, 2, 1, 3)).reshape((n, t, c))
        return self.resid_dropout(self.c_proj(y))


class GPTMLP(Module):
    """``c_fc`` (4x wider) -> GELU (tanh form, as GPT-2) -> ``c_proj`` -> dropout."""

    def __init__(self, cfg: GPTConfig, dtype="float32"):
        super().__init__()
        self.c_fc = Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.c_proj = Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.dropout = Dropout(cfg.dropout)
        self.act = get_activation(cfg.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPTBlock(Module):
    """Pre-norm residual block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, cfg: GPTConfig, dtype="float32", layer: int = 0):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias, dtype=dtype)
        self.attn = CausalSelfAttention(cfg, dtype, layer)
        self.ln_2 = LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias, dtype=dtype)
        self.mlp = GPTMLP(cfg, dtype)

    def forward(self, x: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), state)
        return x + self.mlp(self.ln_2(x))


class GPT(Module):
    """Token embedding (+ learned positions), ``n_layer`` blocks, final LayerNorm, ``lm_head`` logits.

    ``forward(idx)`` maps int token ids ``(N, T)`` (``T <= block_size``, concrete) to logits
    ``(N, T, vocab)``. Initialisation follows GPT-2: ``N(0, 0.02)``, residual projections
    scaled by ``1/sqrt(2 * n_layer)``, zero biases. ``seed`` seeds the dropout stream.
    """

    def __init__(self, cfg: GPTConfig, dtype="float32", seed: int = 0):
        super().__init__()
        self.config = cfg
        parts = {"wte": Embedding(cfg.vocab_size, cfg.n_embd, dtype=dtype)}
        if cfg.positions == "learned":
            parts["wpe"] = Embedding(cfg.block_size, cfg.n_embd, dtype=dtype)
        parts["drop"] = Dropout(cfg.dropout)
        parts["h"] = ModuleList([GPTBlock(cfg, dtype, i) for i in range(cfg.n_layer)])
        parts["ln_f"] = LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias, dtype=dtype)
        self.transformer = ModuleDict(parts)
        self.lm_head = Linear(cfg.n_embd, cfg.vocab_size, bias=False, dtype=dtype)
        self._init_weights()
        if cfg.tie_weights:
            self.lm_head.weight = self.transformer["wte"].weight
        self.set_rng(seed)

    def _init_weights(self) -> None:
        proj_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters().items():
            if name.endswith("c_proj.weight"):
                init.normal_(p, 0.0, proj_std)
            elif name.endswith(".weight") and p.ndim == 2:
                init.normal_(p, 0.0, 0.02)
            elif name.endswith(".bias"):
                init.zeros_(p)

    def hidden_states(self, idx: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        """The final normalised hidden states ``(N, T, n_embd)`` (``state``: a cached step)."""
        check_rank("GPT", idx, 2, "token ids (N, T)")
        t = idx.shape[1]
        if not isinstance(t, int) or t > self.config.block_size:
            raise shape_error("GPT", f"sequence length must be a concrete int <= block_size "
                              f"{self.config.block_size}, got {t}", idx)
        x = self.transformer["wte"](idx)
        if "wpe" in self.transformer:
            wpe = self.transformer["wpe"].weight
            x = x + (wpe[:t] if state is None else state.rows(wpe, t))
        x = self.transformer["drop"](x)
        for block in self.transformer["h"]:
            x = block(x, state)
        return self.transformer["ln_f"](x)

    def forward(self, idx: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        return self.lm_head(self.hidden_states(idx, state))

    def make_cache(self, batch: int, max_len: int, dtype="float32") -> KVCache:
        """A key/value cache for ``batch`` sequences of up to ``max_len <= block_size`` tokens."""
        c = self.config
        if max_len > c.block_size:
            raise ValueError(f"GPT: a cache of {max_len} tokens exceeds block_size {c.block_size}")
        return KVCache(c.n_layer, batch, c.n_head, max_len, c.n_embd // c.n_head, dtype)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position table (as nanoGPT reports)."""
        n = super().num_parameters()
        if non_embedding and "wpe" in self.transformer:
            n -= int(np.prod(self.transformer["wpe"].weight.shape))
        return n

    @staticmethod
    def loss(logits: Tensor, targets: Tensor) -> Tensor:
        """Mean next-token cross entropy of ``(N, T, V)`` logits against ``(N, T)`` int targets."""
        logp = rg.log_softmax(logits, axis=-1)
        picked = rg.gather(logp, targets.reshape(tuple(targets.shape) + (1,)), axis=-1)
        return -picked.mean()

    def generate(self, idx: np.ndarray, max_new_tokens: int, temperature: float = 1.0,
                 top_k: Optional[int] = None, seed: int = 0, backend=None) -> np.ndarray:
        """Sample ``max_new_tokens`` continuations of the int array ``idx`` ``(N, T0)`` (eval mode).

        When the whole sequence fits in ``block_size`` this is :func:`rustyasg.nn.generate` (a
        KV cache, two compiled steps). Longer ones slide a ``block_size`` window: one function
        is compiled for the window, the context is right-padded into it (causal attention makes
        the padding invisible to earlier positions) and re-run for every token.
        """
        from ..generation import choose_tokens, generate

        idx = np.asarray(idx, np.int64)
        window = self.config.block_size
        if idx.shape[1] + max_new_tokens <= window:
            return generate(self, idx, max_new_tokens, backend=backend, do_sample=True, temperature=temperature,
                            top_k=top_k, seed=seed)
        was_training = self.training
        self.eval()
        try:
            tokens = rg.input((None, window), "int64", name="tokens")
            step = rg.function([tokens], self(tokens), backend=backend)
        finally:
            self.train(was_training)
        gen = np.random.default_rng(seed)
        for _ in range(max_new_tokens):
            ctx = idx[:, -window:]
            padded = np.zeros((idx.shape[0], window), np.int64)
            padded[:, :ctx.shape[1]] = ctx
            logits = step(padded)[:, ctx.shape[1] - 1]
            nxt = choose_tokens(logits, True, gen, max(temperature, 1e-8), top_k)
            idx = np.concatenate([idx, nxt[:, None]], axis=1)
        return idx
