"""``from_pretrained``: Hugging Face models (BERT, GPT-2, Llama-style, ViT) as RustyASG zoo models, offline.

``from_pretrained(path_or_repo)`` reads ``config.json`` and the weights of a local model folder
or of ``org/name`` in the local Hugging Face cache (see :mod:`rustyasg.nn.hub`), builds the zoo
model its ``model_type`` names, and loads the weights through the model's ``"huggingface"``
name mapping, reporting any missing or unexpected tensor. The model comes back in eval mode.

Example:
    >>> import rustyasg.nn as nn
    >>> sorted(nn.pretrained.ARCHITECTURES)
    ['bert', 'gpt2', 'llama', 'vit']
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Mapping, Optional, Union

from .. import init
from ..module import Module
from ..name_mapping import load_state_dict_from
from ..serialization import CheckpointError
from . import bert, gpt2, llama, vit

#: ``model_type`` of ``config.json`` -> ``build(config, dtype) -> Module``.
ARCHITECTURES: Dict[str, Callable[[Mapping[str, Any], str], Module]] = {
    "bert": bert.build, "gpt2": gpt2.build, "llama": llama.build, "vit": vit.build,
}


def from_pretrained(path_or_repo: Union[str, os.PathLike], dtype="float32", revision: Optional[str] = None,
                    cache_dir=None, strict: bool = True) -> Module:
    """The zoo model of a Hugging Face model folder (or cached ``org/name``), with its weights, in eval mode.

    ``strict`` raises :class:`~rustyasg.nn.StateDictError` on missing or unexpected tensors;
    otherwise they are listed in ``model.load_result``. ``model.hf_config`` is the ``config.json`` dict.
    """
    from ..hub import read_config, read_weights, resolve_model_dir

    folder = resolve_model_dir(path_or_repo, revision, cache_dir)
    config = read_config(folder)
    kind = config.get("model_type")
    if kind not in ARCHITECTURES:
        raise CheckpointError(f"{folder}/config.json: model_type {kind!r} is not supported; "
                              f"known: {', '.join(sorted(ARCHITECTURES))}")
    with init.skip_init():  # every weight comes from the file
        model = ARCHITECTURES[kind](config, dtype)
    result = load_state_dict_from(model, read_weights(folder), mapping="huggingface", strict=strict)
    object.__setattr__(model, "hf_config", config)
    object.__setattr__(model, "load_result", result)
    return model.eval()


__all__ = ["ARCHITECTURES", "from_pretrained"]
