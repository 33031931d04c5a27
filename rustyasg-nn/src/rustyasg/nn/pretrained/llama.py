"""Llama ``config.json`` -> :class:`rustyasg.nn.zoo.Llama` (``LlamaForCausalLM`` names load as they are)."""

from __future__ import annotations

from typing import Any, Mapping

from ..zoo.llama import Llama, LlamaConfig


def build(config: Mapping[str, Any], dtype="float32") -> Llama:
    """A :class:`Llama` shaped by a Hugging Face Llama config.

    >>> build({"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1,
    ...        "vocab_size": 10, "intermediate_size": 64}).config.head_dim
    8
    """
    if config.get("pretraining_tp", 1) not in (1, None):
        raise ValueError("Llama: pretraining_tp > 1 (sliced projections) is not supported")
    return Llama(LlamaConfig.from_dict(config), dtype)
