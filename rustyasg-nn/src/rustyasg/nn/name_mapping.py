"""Loading foreign state dicts: name and layout mappings, and ``load_state_dict_from``.

Checkpoints of the same architecture differ in names (torchvision, nanoGPT, timm, Hugging
Face) and sometimes in layout (Hugging Face GPT-2 stores ``(in, out)`` weights; q, k and v
may be separate where a model packs them). A :class:`NameMapping` is the data that turns one
convention into a RustyASG model's: regex renames, keys to drop, weights to transpose, and
parts to concatenate. Models register the mappings they accept; :func:`load_state_dict_from`
picks the one that fits best (or the one named) and reports missing and unexpected keys as
``load_state_dict`` does.

Example:
    >>> import numpy as np
    >>> m = NameMapping("demo", renames=[(r"^blocks\\.(\\d+)\\.attn\\.(q|k|v)\\.(weight)$", r"layers.\\1.qkv.\\3#\\2")],
    ...                 merge_order=("q", "k", "v"))
    >>> state = {f"blocks.0.attn.{p}.weight": np.full((1, 2), i) for i, p in enumerate("qkv")}
    >>> m.apply(state)[0]["layers.0.qkv.weight"].tolist()
    [[0, 0], [1, 1], [2, 2]]
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Type, Union

import numpy as np

from .module import Module, StateDictError

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class NameMapping:
    """One source convention's names and layouts -> a RustyASG model's.

    - ``renames``: ``(regex, replacement)`` pairs, each applied with ``re.sub`` in order.
      A replacement ending in ``#part`` marks a piece to concatenate (see ``merge_order``).
    - ``drop``: regexes of source keys that hold nothing the model needs (causal-mask buffers,
      position-id tables); they are neither loaded nor reported as unexpected.
    - ``transpose``: regexes of source keys stored transposed (``(in, out)`` weights).
    - ``merge_order``: pieces ``name#part`` are concatenated along axis 0 in this order of parts.
    """

    name: str
    renames: Sequence[Tuple[str, str]] = ()
    drop: Sequence[str] = ()
    transpose: Sequence[str] = ()
    merge_order: Sequence[str] = ()
    description: str = ""
    _compiled: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_compiled", (
            [(re.compile(p), r) for p, r in self.renames], [re.compile(p) for p in self.drop],
            [re.compile(p) for p in self.transpose]))

    def apply(self, state: Mapping[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], List[str]]:
        """``(mapped state, dropped source keys)``. Incomplete merges keep their ``#part`` names."""
        renames, drop, transpose = self._compiled
        out: Dict[str, np.ndarray] = OrderedDict()
        pieces: Dict[str, Dict[str, np.ndarray]] = OrderedDict()
        dropped = []
        for key, value in state.items():
            if any(p.search(key) for p in drop):
                dropped.append(key)
                continue
            value = np.asarray(value)
            if value.ndim == 2 and any(p.search(key) for p in transpose):
                value = np.ascontiguousarray(value.T)
            new = key
            for pattern, repl in renames:
                new = pattern.sub(repl, new)
            if "#" in new:
                base, part = new.rsplit("#", 1)
                pieces.setdefault(base, {})[part] = value
            else:
                out[new] = value
        for base, parts in pieces.items():
            if set(parts) == set(self.merge_order):
                out[base] = np.concatenate([parts[p] for p in self.merge_order], axis=0)
            else:
                out.update((f"{base}#{p}", v) for p, v in parts.items())
        return out, dropped


IDENTITY = NameMapping("rustyasg", description="the model's own names")

_REGISTRY: Dict[type, List[NameMapping]] = {}


def register_mapping(model_class: Type[Module], mapping: NameMapping) -> NameMapping:
    """Declare that checkpoints named by ``mapping`` load into ``model_class`` (and its subclasses)."""
    _REGISTRY.setdefault(model_class, []).append(mapping)
    return mapping


def mappings_for(model: Module) -> List[NameMapping]:
    """The mappings registered for ``model``'s class and its bases, the identity first."""
    found = [IDENTITY]
    for cls in type(model).__mro__:
        found += [m for m in _REGISTRY.get(cls, []) if m not in found]
    return found


class LoadResult(NamedTuple):
    """What :func:`load_state_dict_from` did: PyTorch's ``missing_keys`` / ``unexpected_keys``, and the mapping."""

    missing_keys: List[str]
    unexpected_keys: List[str]
    mapping: str


def _match(own: Mapping[str, tuple], mapped: Mapping[str, np.ndarray]) -> Tuple[int, int]:
    """Score of a mapped state against the model: (keys matched with equal shapes, -keys left over)."""
    hits = sum(1 for k, v in mapped.items() if k in own and tuple(np.shape(v)) == own[k])
    return hits, -(len(mapped) - hits)


def load_state_dict_from(model: Module, source: Union[PathLike, Mapping[str, np.ndarray]], mapping: str = "auto",
                         strict: bool = True, key: Optional[str] = None) -> LoadResult:
    """Load a foreign state dict (a ``{name: array}`` mapping or a file) into ``model``.

    ``source`` may be a ``.safetensors`` file, a ``torch.save`` file (read without torch, see
    :func:`rustyasg.nn.load_torch_checkpoint`; ``key`` picks a nested entry) or a mapping.
    ``mapping`` names a registered :class:`NameMapping` (``"torchvision"``, ``"nanogpt"``,
    ``"timm"``, ``"huggingface"``, ...); ``"auto"`` tries every mapping registered for the model
    and takes the one that matches most keys. Names tied to one variable (``lm_head.weight`` and
    ``transformer.wte.weight``) need only one of them in the file.

    With ``strict`` a missing or unexpected key raises :class:`~rustyasg.nn.StateDictError`
    listing them; a shape mismatch always does. Nothing is assigned unless every check passes.
    """
    state = _read_source(source, key)
    own_vars = model._state_vars()
    own = {k: tuple(v.shape) for k, v in own_vars.items()}
    candidates = mappings_for(model)
    if mapping != "auto":
        chosen = [m for m in candidates if m.name == mapping]
        if not chosen:
            raise ValueError(f"load_state_dict_from: no mapping {mapping!r} for {type(model).__name__}; "
                             f"known: {', '.join(m.name for m in candidates)}")
        candidates = chosen
    results = [(m,) + m.apply(state) for m in candidates]
    best, mapped, _dropped = max(results, key=lambda r: _match(own, r[1]))
    loaded_ids = {id(own_vars[k]) for k in mapped if k in own_vars}
    missing = [k for k in own if k not in mapped and id(own_vars[k]) not in loaded_ids]
    unexpected = [k for k in mapped if k not in own]
    what = f"{type(model).__name__} (names: {best.name})"
    mismatched = [f"{k} is {tuple(np.shape(v))} in the checkpoint but {own[k]} in the model"
                  for k, v in mapped.items() if k in own and tuple(np.shape(v)) != own[k]]
    if mismatched:
        raise StateDictError(f"loading into {what}: shape mismatches: " + "; ".join(mismatched))
    if strict and (missing or unexpected):
        raise StateDictError(f"loading into {what}: missing keys: {', '.join(missing) or 'none'}; "
                             f"unexpected keys: {', '.join(unexpected) or 'none'} "
                             f"(pass strict=False to load the rest)")
    for k, value in mapped.items():
        if k in own_vars:
            own_vars[k].assign(np.asarray(value).astype(own_vars[k].dtype, copy=False))
    return LoadResult(missing, unexpected, best.name)


def _read_source(source, key) -> Mapping[str, np.ndarray]:
    if isinstance(source, Mapping):
        return source
    path = os.fspath(source)
    if path.endswith(".safetensors"):
        from .serialization import load_safetensors

        return load_safetensors(path)
    from .torch_checkpoint import load_torch_checkpoint

    return load_torch_checkpoint(path, key)


__all__ = ["NameMapping", "IDENTITY", "register_mapping", "mappings_for", "LoadResult", "load_state_dict_from"]
