"""``Optimizer``: the update rule as graph, its state as backend variables.

``opt.updates(loss)`` differentiates ``loss`` with :func:`rustyasg.core.grad`,
optionally clips the gradients, and returns ``{variable: new value}`` for every
parameter and every piece of optimizer state (moments, step counts). Merge it
into a compiled step's ``updates``; the whole step then runs on the backend and
parameters and state never leave it.

Subclasses declare PyTorch's defaults and implement three small hooks:
``derive_scalars(group)`` (host-side scalars the update reads), ``structure(group)``
(settings that change the graph) and ``update_param(...)`` (the rule for one tensor).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.optim import SGD
    >>> w = rg.variable(np.array([1.0, -2.0]), name="w")
    >>> opt = SGD([w], lr=0.5)
    >>> step = rg.function([], rg.sum(w * w), updates=opt.updates(rg.sum(w * w)), backend="reference")
    >>> _ = step(); w.value()
    array([0., 0.])
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor, Variable

from .. import clip as _clip
from .param_group import ParamGroup


class Optimizer:
    """Base class; see the module docstring. ``params`` is a list of variables, a dict of named
    variables, or a list of dicts (parameter groups) whose other keys override the defaults."""

    defaults: Dict[str, Any] = {}

    def __init__(self, params, **settings):
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected setting(s) {sorted(unknown)}; "
                            f"it takes {sorted(self.defaults)}")
        self.defaults = {**type(self).defaults, **settings}
        self.param_groups: List[ParamGroup] = []
        self.state: Dict[int, Dict[str, Variable]] = {}
        self.grad_norm: Optional[Tensor] = None
        for raw in _as_groups(params):
            self.add_param_group(raw)

    # -- groups ---------------------------------------------------------------------------------
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group (``{"params": [...], **settings}``); missing settings take the defaults."""
        params = _as_params(group.get("params"), type(self).__name__)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one group or twice")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"{type(self).__name__} param group has unexpected setting(s) {sorted(unknown)}")
        settings = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}, "params": params}
        self.validate(settings)
        self.param_groups.append(ParamGroup(self, len(self.param_groups), settings))

    def params(self) -> List[Variable]:
        """Every parameter, in PyTorch's state-dict index order (group by group)."""
        return [p for g in self.param_groups for p in g["params"]]

    # -- the hooks subclasses implement ------------------------------------------------------------
    def validate(self, group: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` on an invalid setting (PyTorch's messages)."""
        if group.get("lr", 0.0) < 0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")

    def derive_scalars(self, group: Mapping[str, Any]) -> Dict[str, float]:
        """Scalars the update reads, computed on the host in double precision."""
        return {"lr": group["lr"]}

    def structure(self, group: Mapping[str, Any]) -> Dict[str, Any]:
        """Settings that change the update's graph (checked against later changes)."""
        return {}

    def update_param(self, p: Variable, g: Tensor, state: "StateView", s: Dict[str, Tensor],
                     structure: Dict[str, Any]) -> Dict[Variable, Tensor]:
        """New values of ``p`` and of its state given gradient ``g`` and the group's scalars ``s``."""
        raise NotImplementedError

    # -- building the step ----------------------------------------------------------------------------
    def updates(self, loss: Optional[Tensor] = None, grads=None, clip_grad_norm=None, clip_grad_value=None,
                norm_type: float = 2.0) -> Dict[Variable, Tensor]:
        """``{variable: new value}`` for one optimization step of ``loss`` (or of given ``grads``).

        - ``grads``: instead of ``loss``, a list aligned with :meth:`params` or a dict
          ``{param: gradient}``; ``None`` entries (and parameters the loss does not depend on)
          are left untouched, as PyTorch skips parameters whose ``.grad`` is None.
        - ``clip_grad_value``: clamp each gradient into ``[-v, v]`` first.
        - ``clip_grad_norm``: then rescale all gradients together so their global
          ``norm_type``-norm is at most this (PyTorch's ``clip_grad_norm_``, with its 1e-6);
          the norm before clipping is left in ``self.grad_norm`` to fetch as an output.
          Either limit may be a float or a scalar tensor (a variable: change it without recompiling).
        """
        params = self.params()
        grad_list = self._gradients(loss, grads, params)
        if clip_grad_value is not None:
            grad_list = _clip.clip_grad_value(grad_list, clip_grad_value)
        self.grad_norm = None
        if clip_grad_norm is not None:
            grad_list, self.grad_norm = _clip.clip_grad_norm(grad_list, clip_grad_norm, norm_type)
        grad_of = {id(p): g for p, g in zip(params, grad_list)}
        out: Dict[Variable, Tensor] = {}
        index = 0
        for group in self.param_groups:
            structure = group.freeze_structure()
            for p in group["params"]:
                g = grad_of[id(p)]
                if g is not None:
                    s = group.scalars(p.dtype)
                    out.update(self.update_param(p, g.astype(p.dtype), StateView(self, index, p), s, structure))
                index += 1
        return out

    def _gradients(self, loss, grads, params) -> List[Optional[Tensor]]:
        if (loss is None) == (grads is None):
            raise TypeError(f"{type(self).__name__}.updates: give either loss or grads")
        if loss is not None:
            if not isinstance(loss, Tensor) or loss.shape != ():
                where = f" (created at {loss.source})" if isinstance(loss, Tensor) and loss.source else ""
                raise ValueError(f"{type(self).__name__}.updates: loss must be a scalar tensor, got {loss!r}{where}")
            return rg.grad(loss, params, unconnected="none")
        if isinstance(grads, Mapping):
            by_id = {id(k): v for k, v in grads.items()}
            return [by_id.get(id(p)) for p in params]
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(f"{type(self).__name__}.updates: {len(grads)} gradients for {len(params)} parameters")
        return grads

    # -- state dicts ------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """PyTorch's layout with numpy values: ``{"state": {index: {name: array}}, "param_groups": [...]}``.

        Parameter indices count through the groups in order; each group lists its indices in ``"params"``.
        """
        state = {i: {k: v.value() for k, v in s.items()} for i, s in sorted(self.state.items())}
        groups, index = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": list(range(index, index + n))})
            index += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore settings and state saved by :meth:`state_dict` (PyTorch's own, converted to numpy, too).

        Errors name the group or parameter index, the state key and both shapes; a parameter
        whose saved state lacks a key this optimizer keeps (a moment, the step count) is an error
        too, since loading would silently keep the current value.

        >>> import numpy as np, rustyasg.core as rg
        >>> from rustyasg.nn.optim import Adam
        >>> w = rg.variable(np.ones(2), name="w")
        >>> saved = {"state": {0: {"step": np.array(3.0), "exp_avg_sq": np.ones(2)}},
        ...          "param_groups": [{"params": [0], "lr": 0.1}]}
        >>> Adam([w]).load_state_dict(saved)
        Traceback (most recent call last):
        ValueError: Adam.load_state_dict: state[0]['exp_avg'] is missing (parameter 'w')
        """
        name = type(self).__name__
        missing = self.missing_state(state_dict)
        if missing:
            listed = ", ".join(f"state[{pid}][{key!r}]" for pid, key, _ in missing)
            raise ValueError(f"{name}.load_state_dict: {listed} is missing (parameter "
                             f"{', '.join(repr(n) for n in dict.fromkeys(n for _, _, n in missing))})")
        staged = self.check_state_dict(state_dict)
        params = self.params()
        for saved, group in zip(state_dict["param_groups"], self.param_groups):
            # settings this optimizer knows, and the schedulers' initial_lr; PyTorch-only flags are dropped
            group.update({k: v for k, v in saved.items() if k in self.defaults or k == "initial_lr"})
        for (i, key), arr in staged.items():
            StateView(self, i, params[i]).load(key, np.asarray(arr))

    def check_state_dict(self, state_dict: Mapping[str, Any]) -> Dict[Tuple[int, str], Any]:
        """Check groups, parameter indices and state shapes; returns ``{(our index, key): value}``.

        Only shapes are looked at, so a file's header stand-ins (see
        :func:`rustyasg.nn.serialization.safetensors_header`) are checked before any data is read.
        """
        name = type(self).__name__
        groups = list(state_dict["param_groups"])
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: {len(groups)} param groups saved, {len(self.param_groups)} here")
        params = self.params()
        for gi, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {gi} has {len(saved['params'])} parameters saved, "
                                 f"{len(group['params'])} here")
        index_of = self._saved_index(groups)
        staged = {}
        for pid, entries in state_dict["state"].items():
            i = index_of.get(int(pid))
            if i is None:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter index {pid}")
            for key, value in self.normalize_state(entries, params[i]).items():
                arr = _to_numpy(value)
                expected = () if key == "step" else params[i].shape
                if tuple(arr.shape) != tuple(expected):
                    raise ValueError(f"{name}.load_state_dict: state[{i}][{key!r}] has shape {tuple(arr.shape)} "
                                     f"but parameter {params[i].name!r} needs {tuple(expected)}")
                staged[(i, key)] = arr
        return staged

    def missing_state(self, state_dict: Mapping[str, Any]) -> List[Tuple[Any, str, str]]:
        """``(saved index, key, parameter name)`` of the state this optimizer keeps but ``state_dict`` lacks.

        A parameter with saved state must have all of it (:meth:`state_keys`); one without any
        is only incomplete when this optimizer already holds state for it (PyTorch leaves a
        parameter that never had a gradient without state).
        """
        params = self.params()
        index_of = self._saved_index(list(state_dict["param_groups"]))
        saved_by_index = {index_of.get(int(pid)): (pid, entries) for pid, entries in state_dict["state"].items()}
        missing = []
        for i, p in enumerate(params):
            pid, entries = saved_by_index.get(i, (i, None))
            if entries is None and not self.state.get(i):
                continue
            have = set(self.normalize_state(entries or {}, p))
            missing += [(pid, key, p.name or f"#{i}") for key in sorted(self.state_keys(i) - have)]
        return missing

    def state_keys(self, index: int) -> frozenset:
        """Names of the state kept for parameter ``index`` (``exp_avg``, ``step`` ...) by its group's rule.

        Traced from :meth:`update_param` on a recording view: nothing is created or changed.

        >>> import numpy as np, rustyasg.core as rg
        >>> from rustyasg.nn.optim import Adam
        >>> sorted(Adam([rg.variable(np.ones(2), name="w")], amsgrad=True).state_keys(0))
        ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']
        """
        at = 0
        for group in self.param_groups:
            if index < at + len(group["params"]):
                p = group["params"][index - at]
                probe = _StateProbe(p)
                self.update_param(p, rg.zeros_like(p), probe, group.scalars(p.dtype), self.structure(group))
                return frozenset(probe.keys) | frozenset(self.state.get(index, {}))
            at += len(group["params"])
        raise IndexError(f"{type(self).__name__}: no parameter index {index}")

    @staticmethod
    def _saved_index(groups) -> Dict[int, int]:
        """Saved parameter id -> our index (PyTorch's ids are already 0..n-1 in order)."""
        index_of: Dict[int, int] = {}
        for saved in groups:
            for pid in saved["params"]:
                index_of[int(pid)] = len(index_of)
        return index_of

    def normalize_state(self, entries: Mapping[str, Any], param: Variable) -> Dict[str, Any]:
        """Adapt one parameter's saved state (e.g. PyTorch's ``None`` buffers) before loading."""
        return {k: v for k, v in entries.items() if v is not None}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in g.items() if k != "params"]
        return "\n".join(lines + [")"])


class StateView:
    """The state variables of one parameter (``exp_avg``, ``step`` ...), created on first use."""

    def __init__(self, optimizer: Optimizer, index: int, param: Variable):
        self._slots = optimizer.state.setdefault(index, {})
        self._param = param

    def get(self, key: str, init: float = 0.0, scalar: bool = False) -> Variable:
        """The variable ``key`` (zeros, or ``init``, shaped like the parameter or a scalar)."""
        var = self._slots.get(key)
        if var is None:
            shape = () if scalar else self._param.shape
            var = rg.variable(np.full(shape, init, self._param.dtype), name=f"{self._param.name}.{key}",
                              trainable=False)
            self._slots[key] = var
        return var

    def load(self, key: str, value: np.ndarray) -> None:
        self.get(key, scalar=value.ndim == 0 and key == "step").assign(value)


class _StateProbe:
    """Stands in for a :class:`StateView` and records which keys an update rule asks for."""

    def __init__(self, param: Variable):
        self._param = param
        self.keys: List[str] = []

    def get(self, key: str, init: float = 0.0, scalar: bool = False) -> Variable:
        self.keys.append(key)
        shape = () if scalar else self._param.shape
        return rg.variable(np.full(shape, init, self._param.dtype), name=f"probe.{key}", trainable=False)


def _as_groups(params) -> List[Dict[str, Any]]:
    if isinstance(params, Variable):
        raise TypeError("optimizer params must be a list of variables or of group dicts, not one variable")
    if isinstance(params, Mapping):  # model.named_parameters()
        params = list(params.values())
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    if all(isinstance(p, Mapping) for p in params):
        return [dict(g) for g in params]
    return [{"params": params}]


def _as_params(params, owner: str) -> List[Variable]:
    if params is None:
        raise ValueError(f"{owner}: a param group needs 'params'")
    if isinstance(params, Variable):
        params = [params]
    elif isinstance(params, Mapping):
        params = list(params.values())
    params = list(params)
    for p in params:
        if not isinstance(p, Variable):
            raise TypeError(f"{owner} can only optimize rustyasg variables, got {p!r}")
        if p.dtype.kind != "f":
            raise TypeError(f"{owner}: parameter {p.name!r} is {p.dtype}; only floating variables can be optimized")
    return params


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def log_or_ninf(x: float) -> float:
    """``log(x)``, with ``-inf`` for 0 (a beta of 0 gives bias corrections of exactly 1)."""
    return math.log(x) if x > 0 else -math.inf
