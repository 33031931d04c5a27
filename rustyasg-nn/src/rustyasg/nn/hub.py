"""Hugging Face model folders, offline: find one, read its ``config.json`` and its weights.

A model is a local folder, or ``org/name`` resolved in the local Hugging Face cache
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``) through its layout
``models--org--name/snapshots/<revision>/`` (the revision ``refs/main`` points to, or the one
asked for). Nothing is downloaded: a model missing from the cache is an error naming where it
was looked for and the command that fetches it.

Weights are read from ``model.safetensors``, a sharded ``model.safetensors.index.json``, or
(without torch) ``pytorch_model.bin`` and its sharded index.

Example:
    >>> import json, os, tempfile
    >>> cache = tempfile.mkdtemp()
    >>> snap = os.path.join(cache, "models--org--tiny", "snapshots", "abc123")
    >>> os.makedirs(snap); os.makedirs(os.path.join(cache, "models--org--tiny", "refs"))
    >>> _ = open(os.path.join(cache, "models--org--tiny", "refs", "main"), "w").write("abc123")
    >>> _ = open(os.path.join(snap, "config.json"), "w").write(json.dumps({"model_type": "bert"}))
    >>> resolve_model_dir("org/tiny", cache_dir=cache).name
    'abc123'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import safetensors

from .bfloat16 import widen_bfloat16
from .serialization import CheckpointError, load_safetensors

PathLike = Union[str, os.PathLike]

#: Weight files in the order they are looked for.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, from the same variables ``huggingface_hub`` reads."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def resolve_model_dir(path_or_repo: PathLike, revision: Optional[str] = None,
                      cache_dir: Optional[PathLike] = None) -> Path:
    """The local folder holding ``config.json``: ``path_or_repo`` itself, or its snapshot in the hub cache.

    ``revision`` is a branch/tag name (looked up in ``refs/``) or a commit hash; by default ``main``.
    """
    local = Path(path_or_repo).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise CheckpointError(f"{local}: no config.json in this folder; a Hugging Face model folder holds "
                                  f"config.json and its weights ({', '.join(WEIGHT_FILES)})")
        return local
    repo = os.fspath(path_or_repo)
    if repo.count("/") != 1 or repo.startswith((".", "/", "~")):
        raise CheckpointError(f"{repo}: no such folder, and not a Hugging Face repo id of the form 'org/name'")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    root = cache / ("models--" + repo.replace("/", "--"))
    rev = revision or "main"
    ref = root / "refs" / rev
    commit = ref.read_text().strip() if ref.is_file() else rev
    snapshot = root / "snapshots" / commit
    if not (snapshot / "config.json").is_file():
        raise CheckpointError(
            f"{repo}: not in the local Hugging Face cache (looked for {snapshot}/config.json; models are never "
            f"downloaded here). Fetch it once with `huggingface-cli download {repo}` (or pass a local folder); "
            f"set HF_HUB_CACHE or HF_HOME if your cache lives elsewhere")
    return snapshot


def read_config(model_dir: PathLike) -> Dict[str, Any]:
    """``config.json`` of a model folder as a dict."""
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def read_weights(model_dir: PathLike) -> Dict[str, np.ndarray]:
    """Every tensor of a model folder by its Hugging Face name (shards merged)."""
    folder = Path(model_dir)
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            return _read_sharded(path)
        return _read_one(path)
    raise CheckpointError(f"{folder}: no weights found (looked for {', '.join(WEIGHT_FILES)})")


def _read_one(path: Path) -> Dict[str, np.ndarray]:
    if path.name.endswith(".safetensors"):
        return _read_safetensors(path)
    from .torch_checkpoint import load_torch_checkpoint

    return load_torch_checkpoint(path)


def _read_safetensors(path: Path) -> Dict[str, np.ndarray]:
    """A SafeTensors file's tensors; bfloat16 ones (most Llama releases) widened to float32, exactly."""
    try:
        with safetensors.safe_open(os.fspath(path), framework="numpy") as f:
            dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    except Exception as exc:  # the library raises its own error types for every malformation
        raise CheckpointError(f"{path}: not a readable SafeTensors file: {exc}") from None
    if "BF16" not in dtypes.values():
        return load_safetensors(path)
    unknown = sorted({d for d in dtypes.values() if d not in _NUMPY_DTYPES and d != "BF16"})
    if unknown:
        raise CheckpointError(f"{path}: tensors of dtype {', '.join(unknown)} have no numpy equivalent")
    out: Dict[str, np.ndarray] = {}
    for name, entry in safetensors.deserialize(path.read_bytes()):
        if entry["dtype"] == "BF16":
            out[name] = widen_bfloat16(np.frombuffer(entry["data"], "<u2")).reshape(entry["shape"])
        else:
            out[name] = np.frombuffer(entry["data"], _NUMPY_DTYPES[entry["dtype"]]).reshape(entry["shape"]).copy()
    return {k: out[k] for k in dtypes}  # the file's order


#: SafeTensors dtype names numpy can hold (little-endian, as the format stores them).
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
                 "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def _read_sharded(index_path: Path) -> Dict[str, np.ndarray]:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index_path}: not a shard index (needs a 'weight_map'): {exc}") from None
    out: Dict[str, np.ndarray] = {}
    for shard in dict.fromkeys(weight_map.values()):  # each shard once, in index order
        path = index_path.parent / shard
        if not path.is_file():
            raise CheckpointError(f"{index_path}: shard {shard!r} is missing")
        arrays = _read_one(path)
        wanted = [k for k, s in weight_map.items() if s == shard]
        absent = [k for k in wanted if k not in arrays]
        if absent:
            raise CheckpointError(f"{path}: the index lists {absent[:5]} in this shard but it lacks them")
        out.update((k, arrays[k]) for k in wanted)
    return out


__all__ = ["WEIGHT_FILES", "hub_cache_dir", "resolve_model_dir", "read_config", "read_weights"]
