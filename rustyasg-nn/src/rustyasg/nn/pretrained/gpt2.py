"""GPT-2 ``config.json`` -> :class:`rustyasg.nn.zoo.GPT` (the ``huggingface`` mapping transposes Conv1D weights)."""

from __future__ import annotations

from typing import Any, Mapping

from ..zoo.gpt import GPT, GPTConfig


def build(config: Mapping[str, Any], dtype="float32") -> GPT:
    """A :class:`GPT` shaped by a Hugging Face GPT-2 config.

    >>> build({"vocab_size": 10, "n_positions": 8, "n_embd": 16, "n_layer": 1, "n_head": 2}).config.block_size
    8
    """
    n_embd = config.get("n_embd", 768)
    inner = config.get("n_inner")
    unsupported = {
        "n_inner": inner not in (None, 4 * n_embd),
        "scale_attn_weights": not config.get("scale_attn_weights", True),
        "scale_attn_by_inverse_layer_idx": config.get("scale_attn_by_inverse_layer_idx", False),
        "add_cross_attention": config.get("add_cross_attention", False),
    }
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise ValueError(f"GPT-2 config: {', '.join(f'{k}={config.get(k)!r}' for k in bad)} not supported "
                         f"(the zoo GPT has a 4x MLP and 1/sqrt(head_dim) attention scaling)")
    cfg = GPTConfig(vocab_size=config.get("vocab_size", 50257), block_size=config.get("n_positions", 1024),
                    n_layer=config.get("n_layer", 12), n_head=config.get("n_head", 12), n_embd=n_embd,
                    dropout=config.get("resid_pdrop", 0.0), bias=True, positions="learned",
                    tie_weights=config.get("tie_word_embeddings", True),
                    layer_norm_eps=config.get("layer_norm_epsilon", 1e-5),
                    activation=config.get("activation_function", "gelu_new"))
    return GPT(cfg, dtype)
