"""Transformer blocks with PyTorch's names: encoder and decoder layers, their stacks, and ``Transformer``.

Parameter names equal ``torch.nn.TransformerEncoderLayer`` & co. (``self_attn.in_proj_weight``,
``linear1.weight``, ``norm1.bias`` ...), so PyTorch state dicts load as they are. Inputs are
batch first by default. ``norm_first`` selects pre-norm blocks.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import TransformerEncoder, TransformerEncoderLayer
    >>> enc = TransformerEncoder(TransformerEncoderLayer(16, 4, dim_feedforward=32), num_layers=2)
    >>> enc(rg.input((None, 10, 16), name="x"), is_causal=True).shape
    (Dim(x.0), 10, 16)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from .activations import get_activation
from .attention import MultiheadAttention
from .containers import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module, clone
from .normalization import LayerNorm


class _LayerBlocks:
    """The blocks shared by both layer kinds: ``dropout1(self_attn(x, x, x))`` and
    ``linear2(dropout(activation(linear1(x))))``."""

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _init_ff(self, d_model, dim_feedforward, dropout, activation, bias, dtype):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.activation = get_activation(activation)


class TransformerEncoderLayer(_LayerBlocks, Module):
    """Self-attention then a feed-forward block, each with residual, dropout and LayerNorm.

    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``; masks follow
    :class:`MultiheadAttention` (bool True = blocked).

    >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, norm_first=True)
    >>> list(layer.state_dict())[:3]
    ['self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight']
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = True, norm_first: bool = False,
                 bias: bool = True, dtype="float32"):
        super().__init__()
        self.batch_first, self.norm_first = batch_first, norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True, dtype=dtype)
        self._init_ff(d_model, dim_feedforward, dropout, activation, bias, dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        x = src if self.batch_first else src.transpose((1, 0, 2))
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x if self.batch_first else x.transpose((1, 0, 2))


class TransformerDecoderLayer(_LayerBlocks, Module):
    """Self-attention, cross-attention over ``memory``, then a feed-forward block (PyTorch's layout).

    >>> layer = TransformerDecoderLayer(8, 2, dim_feedforward=16)
    >>> layer(rg.input((2, 5, 8), name="t"), rg.input((2, 7, 8), name="m"), tgt_is_causal=True).shape
    (2, 5, 8)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = True, norm_first: bool = False,
                 bias: bool = True, dtype="float32"):
        super().__init__()
        self.batch_first, self.norm_first = batch_first, norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True, dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True,
                                                 dtype=dtype)
        self._init_ff(d_model, dim_feedforward, dropout, activation, bias, dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def _ff_block(self, x: Tensor) -> Tensor:  # the decoder's last dropout is dropout3
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        out, _ = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                     need_weights=False, is_causal=is_causal)
        return self.dropout2(out)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x, mem = tgt, memory
        if not self.batch_first:
            x, mem = x.transpose((1, 0, 2)), mem.transpose((1, 0, 2))
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), mem, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, mem, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x if self.batch_first else x.transpose((1, 0, 2))


class TransformerEncoder(Module):
    """``num_layers`` independent copies of ``encoder_layer`` (``layers.0`` ...), then an optional ``norm``.

    >>> enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 3)
    >>> enc.layers[0].linear1.weight is enc.layers[1].linear1.weight
    False
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Optional[Module] = None):
        super().__init__()
        self.layers = ModuleList([clone(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` attending to ``memory``, then an optional ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Optional[Module] = None):
        super().__init__()
        self.layers = ModuleList([clone(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                      memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """The encoder-decoder model of "Attention Is All You Need" with ``torch.nn.Transformer``'s names.

    Matrices are re-initialised with Xavier uniform, as PyTorch does.

    >>> model = Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    >>> model(rg.input((2, 6, 8), name="src"), rg.input((2, 4, 8), name="tgt"), tgt_is_causal=True).shape
    (2, 4, 8)
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = True, norm_first: bool = False, bias: bool = True, dtype="float32"):
        super().__init__()
        common = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                      layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias,
                      dtype=dtype)
        self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **common), num_encoder_layers,
                                          LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **common), num_decoder_layers,
                                          LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
                src_is_causal: bool = False, tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(size: int, dtype="float32") -> Tensor:
        """Float ``(size, size)`` mask with ``-inf`` above the diagonal (as PyTorch's helper)."""
        return rg.constant(np.triu(np.full((size, size), -np.inf), 1), dtype)
