"""BERT ``config.json`` -> :class:`rustyasg.nn.zoo.Bert` (``BertModel`` names load as they are)."""

from __future__ import annotations

from typing import Any, Mapping

from ..zoo.bert import Bert, BertConfig


def build(config: Mapping[str, Any], dtype="float32") -> Bert:
    """A :class:`Bert` shaped by a Hugging Face BERT config (pooler included).

    >>> build({"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10,
    ...        "intermediate_size": 64}).config.hidden_size
    32
    """
    return Bert(BertConfig.from_dict(config), dtype)
