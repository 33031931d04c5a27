"""Training checkpoints: weights, optimizer state, scheduler state, step, RNG state and metadata
in one crash-safe SafeTensors file, and a manager that keeps the last K and the best.

Layout of a checkpoint file (plain SafeTensors; the model part is an ordinary state dict):

- tensors ``model/<name>`` (PyTorch names), ``optimizer/<param index>/<state key>``, ``rng/<name>``;
- header metadata: ``format``, ``step``, ``optimizer`` (class and param groups, JSON),
  ``scheduler`` (JSON), ``metrics`` and ``user`` (JSON), ``finite`` (``"true"`` when every
  float tensor of the model and optimizer is finite), plus per-tensor CRC-32s.

Loading restores everything into fresh objects so training continues exactly as if it had
not stopped; any file, key or shape problem raises :class:`CheckpointError` naming the file.

Example:
    >>> import os, tempfile, numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.optim import Adam
    >>> w = rg.variable(np.ones(3, np.float32), name="w")
    >>> opt = Adam([w], lr=0.1)
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> _ = save_checkpoint(path, model={"w": w}, optimizer=opt, step=7, metadata={"run": "demo"})
    >>> ckpt = load_checkpoint(path, model={"w": w}, optimizer=opt)
    >>> ckpt.step, ckpt.metadata
    (7, {'run': 'demo'})
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

import rustyasg.core as rg

from .serialization import (CheckpointError, CorruptFileError, MismatchError, PathLike, _as_arrays, assign_state,
                            check_fits, is_temporary, load_safetensors, safetensors_header, safetensors_metadata,
                            save_safetensors, state_shapes)

FORMAT = "rustyasg.checkpoint/1"
FINITE_KEY = "finite"  # header entry: "true" when the weights and optimizer state are all finite


def all_finite(arrays) -> bool:
    """True when every float array of ``arrays`` is free of NaN and +-inf.

    >>> all_finite([np.ones(2), np.arange(3)]), all_finite([np.array([1.0, np.nan])])
    (True, False)
    """
    return all(bool(np.isfinite(a).all()) for a in map(np.asarray, arrays) if a.dtype.kind in "fc")


@dataclass
class Checkpoint:
    """What a checkpoint file holds, as plain values."""

    path: Path
    step: int
    metadata: Dict[str, Any] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)
    model: Dict[str, np.ndarray] = field(default_factory=dict)
    optimizer: Optional[Dict[str, Any]] = None
    scheduler: Optional[Dict[str, Any]] = None
    rng: Dict[str, np.ndarray] = field(default_factory=dict)


# -- RNG states ------------------------------------------------------------------------------------
def _rng_variables(model, rng, saved=()) -> Dict[str, rg.Variable]:
    """RNG state variables by name: the model's (``rng_states()``) plus ``rng`` (an RNG or a dict).

    Modules create their RNG on first use; a ``saved`` name such as ``"drop.rng"`` whose module
    has none yet gets it created here, so a checkpoint can be loaded before the step is traced.
    """
    out: Dict[str, rg.Variable] = {}
    if model is not None and hasattr(model, "rng_states"):
        modules = dict(model.named_modules())
        for name in saved:
            path = name[:-len("rng")].rstrip(".") if name.endswith("rng") else None
            if path in modules and getattr(modules[path], "_rng", None) is None:
                _ = modules[path].rng  # materialise the lazily created RNG
        out.update(model.rng_states())
    if rng is None:
        return out
    extra = {"rng": rng} if not isinstance(rng, Mapping) else dict(rng)
    for name, r in extra.items():
        var = r.state if isinstance(r, rg.RNG) else r
        if not isinstance(var, rg.Variable):
            raise TypeError(f"rng {name!r}: expected an RNG or its state variable, got {type(r).__name__}")
        if name in out and out[name] is not var:
            raise ValueError(f"two different RNGs are called {name!r}; pass rng as a dict with distinct names")
        out[name] = var
    return out


# -- saving ---------------------------------------------------------------------------------------------
def save_checkpoint(path: PathLike, *, model=None, optimizer=None, scheduler=None, rng=None, step: int = 0,
                    metadata: Optional[Mapping[str, Any]] = None,
                    metrics: Optional[Mapping[str, float]] = None) -> Path:
    """Write a checkpoint atomically (see the module docstring); returns its path.

    ``model`` is a Module or ``{name: Variable}``; ``rng`` an :class:`rustyasg.core.RNG` or a dict
    of them (the model's own RNGs are included automatically); ``metadata`` any JSON-able dict.
    """
    tensors: Dict[str, Any] = {}
    meta = {"format": FORMAT, "step": str(int(step)), "user": _json(metadata or {}, "metadata"),
            "metrics": _json({k: float(v) for k, v in (metrics or {}).items()}, "metrics")}
    if model is not None:
        tensors.update({f"model/{k}": v for k, v in _as_arrays(model).items()})
    if optimizer is not None:
        sd = optimizer.state_dict()
        for index, entries in sd["state"].items():
            tensors.update({f"optimizer/{index}/{k}": v for k, v in entries.items()})
        meta["optimizer"] = _json({"class": type(optimizer).__name__, "param_groups": sd["param_groups"]},
                                  "optimizer settings")
    meta[FINITE_KEY] = "true" if all_finite(tensors.values()) else "false"
    if scheduler is not None:
        meta["scheduler"] = _json({"class": type(scheduler).__name__, "state": scheduler.state_dict()},
                                  "scheduler state")
    tensors.update({f"rng/{k}": v for k, v in _rng_variables(model, rng).items()})
    save_safetensors(tensors, path, meta)
    return Path(path)


def _json(value, what: str) -> str:
    try:
        return json.dumps(value)
    except TypeError as exc:
        raise TypeError(f"checkpoint {what} must be JSON-serialisable: {exc}") from None


# -- reading ---------------------------------------------------------------------------------------------
def read_checkpoint(path: PathLike) -> Checkpoint:
    """Read and verify a checkpoint file without restoring anything."""
    return _read(path, safetensors_metadata(path), keys=None)


def _read(path: PathLike, meta: Mapping[str, str], keys) -> Checkpoint:
    """The checkpoint's contents; only the tensors named in ``keys`` are read (all when None)."""
    if meta.get("format") != FORMAT:
        raise MismatchError(f"{path}: not a RustyASG checkpoint (format {meta.get('format')!r}, "
                            f"expected {FORMAT!r}); use load_safetensors for plain state dicts")
    arrays = load_safetensors(path, keys=keys)
    try:
        ckpt = Checkpoint(Path(path), int(meta["step"]), json.loads(meta.get("user", "{}")),
                          json.loads(meta.get("metrics", "{}")))
        opt_meta = json.loads(meta["optimizer"]) if "optimizer" in meta else None
        ckpt.scheduler = json.loads(meta["scheduler"]) if "scheduler" in meta else None
    except (KeyError, ValueError) as exc:
        raise CorruptFileError(f"{path}: corrupted checkpoint header: {exc}") from None
    ckpt.model, ckpt.rng, state = _split(path, arrays)
    if opt_meta is not None:
        groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in opt_meta["param_groups"]]
        ckpt.optimizer = {"class": opt_meta["class"], "state": state, "param_groups": groups}
    return ckpt


def _split(path: PathLike, arrays: Mapping[str, np.ndarray]):
    """File tensors -> ``(model, rng, optimizer state {param index: {key: array}})``."""
    model: Dict[str, np.ndarray] = {}
    rng: Dict[str, np.ndarray] = {}
    state: Dict[int, Dict[str, np.ndarray]] = {}
    for key, arr in arrays.items():
        kind, _, rest = key.partition("/")
        if kind == "model":
            model[rest] = arr
        elif kind == "rng":
            rng[rest] = arr
        elif kind == "optimizer":
            index, _, name = rest.partition("/")
            state.setdefault(int(index), {})[name] = arr
        else:
            raise CorruptFileError(f"{path}: unexpected tensor {key!r} in a checkpoint")
    return model, rng, state


def load_checkpoint(path: PathLike, *, model=None, optimizer=None, scheduler=None, rng=None,
                    strict: bool = True) -> Checkpoint:
    """Restore a checkpoint into the given objects and return its contents.

    Everything is checked before anything is assigned, and against the file's header before
    any tensor data is read: missing, unexpected or mis-shaped model tensors, RNG states and
    optimizer state (a moment the optimizer keeps but the file lacks included) raise
    :class:`CheckpointError` naming the file, the keys and the shapes. Only the tensors that
    are restored are read. ``strict=False`` tolerates missing/unexpected model keys.
    """
    meta = safetensors_metadata(path)
    if meta.get("format") != FORMAT:
        return _read(path, meta, keys=())  # raises the not-a-checkpoint error
    header = safetensors_header(path)
    saved_model, saved_rng, saved_state = _split(path, header)
    targets = _rng_variables(model, rng, saved_rng)
    wanted = set()
    if model is not None:
        expected = state_shapes(model)
        check_fits(path, saved_model, expected, f"model {type(model).__name__}", strict)
        wanted |= {f"model/{k}" for k in saved_model if k in expected}
    if targets or saved_rng and (model is not None or rng is not None):
        check_fits(path, saved_rng, {k: v.shape for k, v in targets.items()}, "RNG states", strict)
    wanted |= {f"rng/{k}" for k in saved_rng if k in targets}
    for obj, what in ((optimizer, "optimizer"), (scheduler, "scheduler")):
        if obj is None:
            continue
        if what not in meta:
            raise MismatchError(f"{path}: holds no {what} state")
        try:
            saved_class = json.loads(meta[what])["class"]
        except (KeyError, ValueError) as exc:
            raise CorruptFileError(f"{path}: corrupted checkpoint header: {exc}") from None
        if saved_class != type(obj).__name__:
            raise MismatchError(f"{path}: {what} state is for {saved_class}, not {type(obj).__name__}")
    if optimizer is not None:
        _check_optimizer_state(path, optimizer, json.loads(meta["optimizer"]), saved_state)
        wanted |= {k for k in header if k.startswith("optimizer/")}
    ckpt = _read(path, meta, keys=wanted)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(ckpt.optimizer)
        except (ValueError, KeyError) as exc:
            raise MismatchError(f"{path}: optimizer state does not fit: {exc}") from None
    if model is not None:
        assign_state(model, ckpt.model, path, strict)
    for name, var in targets.items():
        if name in ckpt.rng:
            var.assign(ckpt.rng[name])
    if scheduler is not None:
        scheduler.load_state_dict(ckpt.scheduler["state"])
    return ckpt


def _check_optimizer_state(path: PathLike, optimizer, saved_meta, saved_state) -> None:
    """Shapes and completeness of the optimizer state, from the header alone (no data read yet)."""
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in saved_meta["param_groups"]]
    header_state = {"class": saved_meta["class"], "state": saved_state, "param_groups": groups}
    try:
        missing = optimizer.missing_state(header_state)
        optimizer.check_state_dict(header_state)
    except (ValueError, KeyError) as exc:
        raise MismatchError(f"{path}: optimizer state does not fit: {exc}") from None
    if missing:
        keys = ", ".join(f"optimizer/{pid}/{key} ({name})" for pid, key, name in missing)
        raise MismatchError(f"{path}: optimizer state is incomplete: missing {keys}; {type(optimizer).__name__} "
                            f"keeps these for every parameter it has updated, and loading would leave the "
                            f"current values in place")


# -- the manager -------------------------------------------------------------------------------------------
class CheckpointManager:
    """Save checkpoints into a directory, keeping the last ``max_to_keep`` and the ``keep_best`` best.

    Files are ``<prefix>-<step>.safetensors``; the best are ranked by ``metrics[metric]`` passed
    to :meth:`save` (``mode='min'`` or ``'max'``). Files outside both sets are deleted after each
    save, except the newest checkpoint whose weights and optimizer state are all finite: a run
    whose weights turned NaN never rotates its last good state out (:attr:`last_finite_step`,
    :meth:`restore_last_finite`). Temporary files left by a save that was killed are removed on start.

    >>> import tempfile, numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.zeros(2, np.float32), name="w")
    >>> mgr = CheckpointManager(tempfile.mkdtemp(), max_to_keep=2, keep_best=1, metric="loss")
    >>> for step, loss in [(1, 0.5), (2, 0.9), (3, 0.7), (4, 0.8)]:
    ...     _ = mgr.save(step, model={"w": w}, metrics={"loss": loss})
    >>> mgr.steps, mgr.best_step
    ([1, 3, 4], 1)
    """

    def __init__(self, directory: PathLike, max_to_keep: Optional[int] = 3, keep_best: int = 0,
                 metric: Optional[str] = None, mode: str = "min", prefix: str = "ckpt"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if keep_best and metric is None:
            raise ValueError("keep_best needs the name of a metric to rank by")
        if max_to_keep is not None and max_to_keep < 1 and not keep_best:
            raise ValueError("keep at least one checkpoint: max_to_keep >= 1 or keep_best >= 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_to_keep, self.keep_best, self.metric, self.mode, self.prefix = max_to_keep, keep_best, metric, mode, prefix
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.safetensors$")
        self._records: Dict[int, Tuple[Path, Dict[str, float]]] = {}
        self._finite: Dict[int, bool] = {}
        self._scan()

    def _scan(self) -> None:
        for entry in os.scandir(self.directory):
            if is_temporary(entry.name) and entry.name.startswith(f".{self.prefix}-"):
                os.unlink(entry.path)  # debris of a save that was killed
                continue
            m = self._pattern.match(entry.name)
            if not m:
                continue
            try:
                meta = safetensors_metadata(entry.path)
                metrics = json.loads(meta.get("metrics", "{}"))
            except (CorruptFileError, ValueError) as exc:
                warnings.warn(f"skipping unreadable checkpoint {entry.path}: {exc}", stacklevel=2)
                continue
            self._records[int(m.group(1))] = (Path(entry.path), metrics)
            self._finite[int(m.group(1))] = meta.get(FINITE_KEY, "true") == "true"  # older files: no flag

    def path_for(self, step: int) -> Path:
        return self.directory / f"{self.prefix}-{int(step):08d}.safetensors"

    def save(self, step: int, *, metrics: Optional[Mapping[str, float]] = None, **objects) -> Path:
        """Write the checkpoint of ``step`` (same keywords as :func:`save_checkpoint`), then rotate."""
        if self.keep_best and (metrics is None or self.metric not in metrics):
            raise ValueError(f"CheckpointManager ranks by {self.metric!r}: pass metrics={{{self.metric!r}: value}}")
        path = save_checkpoint(self.path_for(step), step=step, metrics=metrics, **objects)
        self._records[int(step)] = (path, {k: float(v) for k, v in (metrics or {}).items()})
        self._finite[int(step)] = safetensors_metadata(path)[FINITE_KEY] == "true"
        if not self._finite[int(step)]:
            kept = self.last_finite_step
            warnings.warn(f"checkpoint {path} holds NaN/inf weights or optimizer state; "
                          + (f"the last finite one (step {kept}) is kept until a finite one follows"
                             if kept is not None else "there is no finite checkpoint to fall back to"),
                          RuntimeWarning, stacklevel=2)
        self._rotate()
        return path

    def _ranked(self) -> List[int]:
        # A NaN metric (a run that diverged) ranks nowhere: it compares false with everything.
        scored = [(m[self.metric], s) for s, (_, m) in self._records.items()
                  if self.metric in m and not math.isnan(m[self.metric])]
        scored.sort(reverse=self.mode == "max")
        return [s for _, s in scored]

    def _rotate(self) -> None:
        steps = sorted(self._records)
        keep = set(steps[-self.max_to_keep:]) if self.max_to_keep else set()
        if self.keep_best:
            keep |= set(self._ranked()[: self.keep_best])
        if self.last_finite_step is not None:
            keep.add(self.last_finite_step)
        for step in steps:
            if step not in keep:
                path, _ = self._records.pop(step)
                self._finite.pop(step, None)
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    @property
    def steps(self) -> List[int]:
        """Steps of the checkpoints on disk, oldest first."""
        return sorted(self._records)

    @property
    def latest_step(self) -> Optional[int]:
        return max(self._records) if self._records else None

    @property
    def last_finite_step(self) -> Optional[int]:
        """Step of the newest checkpoint whose weights and optimizer state are all finite, or None."""
        finite = [s for s in self._records if self._finite.get(s, True)]
        return max(finite) if finite else None

    @property
    def best_step(self) -> Optional[int]:
        ranked = self._ranked() if self.metric else []
        return ranked[0] if ranked else None

    def latest(self) -> Optional[Path]:
        """Path of the newest checkpoint, or None."""
        return self._records[self.latest_step][0] if self._records else None

    def best(self) -> Optional[Path]:
        """Path of the best checkpoint by the metric, or None."""
        step = self.best_step
        return None if step is None else self._records[step][0]

    def restore_latest(self, **objects) -> Optional[Checkpoint]:
        """Load the newest readable checkpoint into ``objects`` (see :func:`load_checkpoint`).

        A file that fails to read (damaged after it was written) is reported and the next
        older one is tried; returns None when there is none.
        """
        for step in sorted(self._records, reverse=True):
            path = self._records[step][0]
            try:
                return load_checkpoint(path, **objects)
            except CorruptFileError as exc:  # a mismatch is not the file's fault: it propagates
                warnings.warn(f"checkpoint {path} is unreadable, trying an older one: {exc}", stacklevel=2)
        return None

    def restore_last_finite(self, **objects) -> Optional[Checkpoint]:
        """Load the newest checkpoint with finite weights into ``objects``; None when there is none."""
        step = self.last_finite_step
        return None if step is None else load_checkpoint(self._records[step][0], **objects)

    def restore_best(self, **objects) -> Optional[Checkpoint]:
        """Load the best checkpoint by the metric into ``objects``; None when there is none."""
        path = self.best()
        return None if path is None else load_checkpoint(path, **objects)


__all__ = ["Checkpoint", "CheckpointError", "CorruptFileError", "MismatchError", "CheckpointManager", "save_checkpoint", "load_checkpoint",
           "read_checkpoint"]
