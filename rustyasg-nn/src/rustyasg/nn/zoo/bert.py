"""``Bert``: the BERT encoder (Devlin et al.) with Hugging Face's ``BertModel`` names.

Parameters are named as in ``transformers`` (``embeddings.word_embeddings``,
``encoder.layer.0.attention.self.query``, ``encoder.layer.0.output.LayerNorm``, ``pooler.dense``),
so a BERT ``model.safetensors`` (MiniLM, sentence-transformers models) loads as it is. Config
fields carry ``transformers.BertConfig``'s names. Post-norm blocks, exact GELU by default.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import Bert, BertConfig
    >>> bert = Bert(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                        intermediate_size=64))
    >>> ids = rg.input((None, 7), "int64", name="ids")
    >>> bert(ids).shape
    (Dim(ids.0), 7, 32)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional

import rustyasg.core as rg
from rustyasg.core import Tensor

from .. import init
from .._checks import check_rank, shape_error
from ..activations import get_activation
from ..attention import scaled_dot_product_attention
from ..containers import ModuleList
from ..dropout import Dropout
from ..embedding import Embedding
from ..linear import Linear
from ..module import Module
from ..normalization import LayerNorm


@dataclass
class BertConfig:
    """Hyper-parameters with ``transformers.BertConfig``'s names (defaults: BERT-base)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    add_pooling_layer: bool = True

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "BertConfig":
        """From a Hugging Face ``config.json`` dict (unknown keys ignored).

        >>> BertConfig.from_dict({"hidden_size": 384, "num_attention_heads": 12, "use_cache": True}).hidden_size
        384
        """
        kind = config.get("position_embedding_type", "absolute")
        if kind != "absolute":
            raise ValueError(f"Bert: position_embedding_type {kind!r} is not supported (only 'absolute')")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in known and v is not None})


class BertEmbeddings(Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.word_embeddings = Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id, dtype=dtype)
        self.position_embeddings = Embedding(cfg.max_position_embeddings, cfg.hidden_size, dtype=dtype)
        self.token_type_embeddings = Embedding(cfg.type_vocab_size, cfg.hidden_size, dtype=dtype)
        self.LayerNorm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, dtype=dtype)
        self.dropout = Dropout(cfg.hidden_dropout_prob)
        self.max_len = cfg.max_position_embeddings

    def forward(self, input_ids: Tensor, token_type_ids: Optional[Tensor] = None) -> Tensor:
        t = input_ids.shape[1]
        if not isinstance(t, int) or t > self.max_len:
            raise shape_error("Bert", f"sequence length must be a concrete int <= max_position_embeddings "
                              f"{self.max_len}, got {t}", input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings.weight[:t]
        if token_type_ids is None:  # every token of segment 0
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(Module):
    """``query``/``key``/``value`` projections and scaled dot-product attention over padding-masked keys."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        e = cfg.hidden_size
        self.heads, self.head_dim = cfg.num_attention_heads, e // cfg.num_attention_heads
        self.query = Linear(e, e, dtype=dtype)
        self.key = Linear(e, e, dtype=dtype)
        self.value = Linear(e, e, dtype=dtype)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        n, t, e = x.shape
        q, k, v = (p(x).reshape((n, t, self.heads, self.head_dim)).transpose((0, 2, 1, 3))
                   for p in (self.query, self.key, self.value))
        p = self.dropout_p if self.training else 0.0
        y = scaled_dot_product_attention(q, k, v, key_padding_mask=key_padding_mask, dropout_p=p,
                                         rng=self.rng if p > 0 else None)
        return y.transpose((0, 2, 1, 3)).reshape((n, t, e))


class BertResidualOutput(Module):
    """``LayerNorm(dropout(dense(h)) + residual)``: BERT's ``attention.output`` and ``output`` blocks."""

    def __init__(self, cin: int, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.dense = Linear(cin, cfg.hidden_size, dtype=dtype)
        self.LayerNorm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, dtype=dtype)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(Module):
    """``self`` (the attention) and ``output`` (projection, residual, LayerNorm)."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.self = BertSelfAttention(cfg, dtype)
        self.output = BertResidualOutput(cfg.hidden_size, cfg, dtype)

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        return self.output(self.self(x, key_padding_mask), x)


class BertIntermediate(Module):
    """``act(dense(x))``, widening to ``intermediate_size``."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.intermediate_size, dtype=dtype)
        self.act = get_activation(cfg.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(Module):
    """Attention block, then the feed-forward block (``intermediate``, ``output``)."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.attention = BertAttention(cfg, dtype)
        self.intermediate = BertIntermediate(cfg, dtype)
        self.output = BertResidualOutput(cfg.intermediate_size, cfg, dtype)

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        x = self.attention(x, key_padding_mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(Module):
    """``layer.0`` ... ``layer.{n-1}``."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.layer = ModuleList([BertLayer(cfg, dtype) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        for layer in self.layer:
            x = layer(x, key_padding_mask)
        return x


class BertPooler(Module):
    """``tanh(dense(h[:, 0]))``: the first ([CLS]) token's pooled vector."""

    def __init__(self, cfg: BertConfig, dtype="float32"):
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size, dtype=dtype)

    def forward(self, hidden: Tensor) -> Tensor:
        return rg.tanh(self.dense(hidden[:, 0]))


def mean_pool(hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
    """Mean of the token vectors ``(N, T, E)`` over the unmasked tokens: a sentence embedding ``(N, E)``.

    The pooling of sentence-transformers models (``pooling_mode_mean_tokens``).

    >>> mean_pool(rg.input((2, 5, 8), name="h"), rg.input((2, 5), "int64", name="m")).shape
    (2, 8)
    """
    if attention_mask is None:
        return hidden.mean(axis=1)
    m = attention_mask.astype(hidden.dtype).reshape(tuple(attention_mask.shape) + (1,))
    return (hidden * m).sum(axis=1) / rg.maximum(m.sum(axis=1), 1e-9)


class Bert(Module):
    """``BertModel``: embeddings, encoder and (optionally) the pooler.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` returns the last hidden
    state ``(N, T, hidden_size)``; ``attention_mask`` ``(N, T)`` is 1 for real tokens and 0 for
    padding (as in ``transformers``). ``pooled(hidden)`` is the pooler output and
    :func:`mean_pool` the sentence embedding.
    """

    def __init__(self, cfg: BertConfig, dtype="float32", seed: int = 0):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg, dtype)
        self.encoder = BertEncoder(cfg, dtype)
        self.pooler = BertPooler(cfg, dtype) if cfg.add_pooling_layer else None
        for name, p in self.named_parameters().items():  # transformers' init
            if name.endswith("LayerNorm.weight"):
                continue
            if p.ndim == 2:
                init.normal_(p, 0.0, cfg.initializer_range)
            elif name.endswith(".bias"):
                init.zeros_(p)
        pad = cfg.pad_token_id
        if pad is not None and 0 <= pad < cfg.vocab_size:
            w = self.embeddings.word_embeddings.weight.value()
            w[pad] = 0
            self.embeddings.word_embeddings.weight.assign(w)
        self.set_rng(seed)

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                token_type_ids: Optional[Tensor] = None) -> Tensor:
        check_rank("Bert", input_ids, 2, "token ids (N, T)")
        padding = None
        if attention_mask is not None:
            check_rank("Bert", attention_mask, 2, "attention_mask (N, T)")
            padding = attention_mask == 0
        return self.encoder(self.embeddings(input_ids, token_type_ids), padding)

    def pooled(self, hidden: Tensor) -> Tensor:
        """The pooler output ``(N, hidden_size)`` of a last hidden state."""
        if self.pooler is None:
            raise ValueError("Bert: this model has no pooler (add_pooling_layer=False)")
        return self.pooler(hidden)
