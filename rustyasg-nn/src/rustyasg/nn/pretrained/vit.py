"""ViT ``config.json`` -> :class:`rustyasg.nn.zoo.ViT` (the ``huggingface`` mapping packs q, k and v)."""

from __future__ import annotations

from typing import Any, Mapping

from ..zoo.vit import ViT


def build(config: Mapping[str, Any], dtype="float32") -> ViT:
    """A :class:`ViT` shaped by a Hugging Face ViT config; a classifier head when it is an image classifier.

    >>> build({"image_size": 8, "patch_size": 4, "hidden_size": 16, "num_hidden_layers": 1,
    ...        "num_attention_heads": 2, "intermediate_size": 32}).head.__class__.__name__
    'Identity'
    """
    if config.get("hidden_act", "gelu") != "gelu" or not config.get("qkv_bias", True):
        raise ValueError(f"ViT config: hidden_act={config.get('hidden_act')!r}, qkv_bias={config.get('qkv_bias')!r} "
                         f"not supported (the zoo ViT uses exact GELU and biased q/k/v)")
    classifier = any(a.endswith("ForImageClassification") for a in config.get("architectures") or [])
    classes = len(config.get("id2label") or {}) if classifier else 0
    return ViT(image_size=config.get("image_size", 224), patch_size=config.get("patch_size", 16),
               num_classes=classes, dim=config.get("hidden_size", 768), depth=config.get("num_hidden_layers", 12),
               heads=config.get("num_attention_heads", 12), mlp_dim=config.get("intermediate_size", 3072),
               in_channels=config.get("num_channels", 3), dropout=config.get("hidden_dropout_prob", 0.0),
               layer_norm_eps=config.get("layer_norm_eps", 1e-12), dtype=dtype)
