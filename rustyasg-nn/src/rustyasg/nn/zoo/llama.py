"""``Llama``: a Llama-style decoder-only language model (RMSNorm, rotary positions, SwiGLU, grouped-query attention).

Parameter names are Hugging Face's ``LlamaForCausalLM`` (``model.embed_tokens``,
``model.layers.0.self_attn.q_proj``, ``mlp.gate_proj``, ``input_layernorm``, ``model.norm``,
``lm_head``), so its ``model.safetensors`` loads as it is. Config fields carry the same names
as ``transformers``' ``LlamaConfig``. ``forward(idx, state=None)`` runs the whole sequence, or
one cached prefill/decode step when given a :class:`~rustyasg.nn.kv_cache.DecodeState`.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import Llama, LlamaConfig
    >>> cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    ...                   num_attention_heads=4, num_key_value_heads=2)
    >>> Llama(cfg)(rg.input((None, 6), "int64", name="idx")).shape
    (Dim(idx.0), 6, 50)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional

from rustyasg.core import Tensor

from .. import init
from .._checks import check_rank
from ..activations import get_activation
from ..containers import ModuleList
from ..embedding import Embedding
from ..kv_cache import DecodeState, KVCache, grouped_attention, rotate
from ..linear import Linear
from ..module import Module
from ..normalization import RMSNorm


@dataclass
class LlamaConfig:
    """Hyper-parameters with ``transformers.LlamaConfig``'s names (defaults: Llama 2 7B)."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: Optional[int] = None
    head_dim: Optional[int] = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    attention_bias: bool = False
    mlp_bias: bool = False
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(f"LlamaConfig: hidden_size {self.hidden_size} is not a multiple of "
                                 f"num_attention_heads {self.num_attention_heads}")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"LlamaConfig: num_attention_heads {self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads {self.num_key_value_heads}")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "LlamaConfig":
        """From a Hugging Face ``config.json`` dict (unknown keys ignored; RoPE scaling refused).

        >>> LlamaConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4, "torch_dtype": "float32"}).head_dim
        16
        """
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in config.items() if k in known and v is not None}
        rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
        kind = rope.get("rope_type", rope.get("type", "default"))
        if kind not in ("default", None):
            raise ValueError(f"Llama: RoPE scaling {kind!r} is not supported (only the default rotary embedding)")
        if "rope_theta" in rope:
            values["rope_theta"] = rope["rope_theta"]
        return cls(**values)


class LlamaAttention(Module):
    """``q_proj``/``k_proj``/``v_proj`` (grouped key/value heads), rotary on q and k, causal attention, ``o_proj``."""

    def __init__(self, cfg: LlamaConfig, layer: int, dtype="float32"):
        super().__init__()
        self.layer, self.heads, self.kv_heads, self.head_dim = layer, cfg.num_attention_heads, \
            cfg.num_key_value_heads, cfg.head_dim
        self.rope_theta = cfg.rope_theta
        e, b = cfg.hidden_size, cfg.attention_bias
        self.q_proj = Linear(e, self.heads * self.head_dim, bias=b, dtype=dtype)
        self.k_proj = Linear(e, self.kv_heads * self.head_dim, bias=b, dtype=dtype)
        self.v_proj = Linear(e, self.kv_heads * self.head_dim, bias=b, dtype=dtype)
        self.o_proj = Linear(self.heads * self.head_dim, e, bias=b, dtype=dtype)

    def forward(self, x: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        n, t, _ = x.shape
        q = self.q_proj(x).reshape((n, t, self.heads, self.head_dim)).transpose((0, 2, 1, 3))
        k = self.k_proj(x).reshape((n, t, self.kv_heads, self.head_dim)).transpose((0, 2, 1, 3))
        v = self.v_proj(x).reshape((n, t, self.kv_heads, self.head_dim)).transpose((0, 2, 1, 3))
        q, k = rotate([q, k], self.head_dim, self.rope_theta, t, state)
        if state is None:
            y = grouped_attention(q, k, v, is_causal=True)
        else:
            y = state.attend(self.layer, q, k, v)
        return self.o_proj(y.transpose((0, 2, 1, 3)).reshape((n, t, self.heads * self.head_dim)))


class LlamaMLP(Module):
    """SwiGLU: ``down_proj(act(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, cfg: LlamaConfig, dtype="float32"):
        super().__init__()
        e, f, b = cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias
        self.gate_proj = Linear(e, f, bias=b, dtype=dtype)
        self.up_proj = Linear(e, f, bias=b, dtype=dtype)
        self.down_proj = Linear(f, e, bias=b, dtype=dtype)
        self.act = get_activation(cfg.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(Module):
    """Pre-norm block: ``x + self_attn(input_layernorm(x))``, then ``x + mlp(post_attention_layernorm(x))``."""

    def __init__(self, cfg: LlamaConfig, layer: int, dtype="float32"):
        super().__init__()
        self.self_attn = LlamaAttention(cfg, layer, dtype)
        self.mlp = LlamaMLP(cfg, dtype)
        self.input_layernorm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, dtype=dtype)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, dtype=dtype)

    def forward(self, x: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), state)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(Module):
    """Token embeddings, the decoder layers and the final RMSNorm (hidden states, no head)."""

    def __init__(self, cfg: LlamaConfig, dtype="float32"):
        super().__init__()
        self.embed_tokens = Embedding(cfg.vocab_size, cfg.hidden_size, dtype=dtype)
        self.layers = ModuleList([LlamaDecoderLayer(cfg, i, dtype) for i in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, dtype=dtype)

    def forward(self, idx: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        x = self.embed_tokens(idx)
        for layer in self.layers:
            x = layer(x, state)
        return self.norm(x)


class Llama(Module):
    """``LlamaForCausalLM``: :class:`LlamaModel` then ``lm_head`` (tied to the embeddings if configured)."""

    def __init__(self, cfg: LlamaConfig, dtype="float32"):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg, dtype)
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False, dtype=dtype)
        for name, p in self.named_parameters().items():  # transformers' init: N(0, initializer_range)
            if p.ndim == 2:
                init.normal_(p, 0.0, cfg.initializer_range)
            elif name.endswith(".bias"):
                init.zeros_(p)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def hidden_states(self, idx: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        """The final normalised hidden states ``(N, T, hidden_size)``."""
        check_rank("Llama", idx, 2, "token ids (N, T)")
        return self.model(idx, state)

    def forward(self, idx: Tensor, state: Optional[DecodeState] = None) -> Tensor:
        """Logits ``(N, T, vocab_size)`` of int token ids ``(N, T)``."""
        return self.lm_head(self.hidden_states(idx, state))

    def make_cache(self, batch: int, max_len: int, dtype="float32") -> KVCache:
        """A key/value cache for ``batch`` sequences of up to ``max_len`` tokens."""
        c = self.config
        return KVCache(c.num_hidden_layers, batch, c.num_key_value_heads, max_len, c.head_dim, dtype)
