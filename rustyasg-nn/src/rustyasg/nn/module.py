"""``Module``: the container of parameters, buffers and submodules.

A module's ``forward`` builds graph (it runs while a step is traced, never per
batch). Parameters are trainable :class:`rustyasg.core.Variable` objects,
buffers are non-trainable ones (running statistics); both are registered by
plain attribute assignment, as in PyTorch, and named the PyTorch way
(``"layers.1.attn.in_proj_weight"``) so state dicts move between the two.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn import Module
    >>> class Scale(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.weight = rg.variable(np.ones(3, np.float32))
    ...     def forward(self, x):
    ...         return x * self.weight
    >>> m = Scale()
    >>> list(m.state_dict())
    ['weight']
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor, Variable
from rustyasg.core.naming import name_scope

class StateDictError(rg.RustyASGError, KeyError):
    """A state dict does not fit the module: missing or unexpected keys, or a shape mismatch."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


# Default RNG seeds: modules that draw random numbers without an explicit RNG get
# distinct, reproducible streams in creation order.
_default_seeds = itertools.count(0x5EED)


def _restart_default_seeds(seed: int) -> None:
    global _default_seeds
    _default_seeds = itertools.count(0x5EED + (seed << 20))


rg.seeding.on_manual_seed(_restart_default_seeds)  # rg.manual_seed(s) makes dropout streams reproducible

# Modules whose forward is running (innermost last): a child's scope name is its path in its caller.
_calling: List["Module"] = []
# Called as observer(module, output) after every forward while tracing (summary() records shapes).
_call_observers: List[Callable[["Module", object], None]] = []


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers
    and submodules as attributes, and implement ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_pending_updates", {})
        object.__setattr__(self, "_rng", None)
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        if name == "rng":
            self.set_rng(value)
            return
        target = None
        if isinstance(value, Variable):
            target = self._parameters if value.trainable else self._buffers
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            target = self._modules
        for table in (self._parameters, self._buffers, self._modules):
            if table is not target:
                table.pop(name, None)
        if target is not None:
            target[name] = value  # replacing keeps the registration order (and so state_dict order)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, value, dtype=None) -> Optional[Variable]:
        """Add a trainable variable (``None`` records an absent optional parameter such as a bias).

        >>> m = Module(); _ = m.register_parameter("w", np.zeros(2, np.float32))
        >>> list(m.named_parameters())
        ['w']
        """
        if value is None:
            object.__setattr__(self, name, None)
            return None
        var = value if isinstance(value, Variable) else rg.variable(value, name=name, dtype=dtype)
        setattr(self, name, var)
        return var

    def register_buffer(self, name: str, value, dtype=None) -> Variable:
        """Add a non-trainable variable (running statistics), part of ``state_dict``.

        >>> m = Module(); _ = m.register_buffer("count", np.zeros((), np.int64))
        >>> list(m.named_buffers())
        ['count']
        """
        var = value if isinstance(value, Variable) else rg.variable(value, name=name, dtype=dtype, trainable=False)
        if var.trainable:
            raise ValueError(f"buffer {name!r} must be a non-trainable variable")
        setattr(self, name, var)
        return var

    def add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` as a child called ``name``."""
        if not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        setattr(self, name, module)

    # -- calling ----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args, **kwargs):
        # Nodes built by forward record the module path (rustyasg.core.naming), e.g.
        # "transformer.h.0/attn/c_attn": what the viewer and profiler group by.
        caller = _calling[-1] if _calling else None
        _calling.append(self)
        try:
            with name_scope(caller._path_of(self) if caller is not None else ""):
                out = self.forward(*args, **kwargs)
            for observe in _call_observers:
                observe(self, out)
            return out
        finally:
            _calling.pop()

    def _path_of(self, child: "Module") -> str:
        """``child``'s dotted name below this module (its class name when it is not registered here)."""
        for name, mod in self.named_modules():
            if mod is child and name:
                return name
        return type(child).__name__

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """``(dotted name, module)`` for this module (name ``""``) and every descendant, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> List["Module"]:
        return [m for _, m in self.named_modules()]

    def children(self) -> List["Module"]:
        return list(self._modules.values())

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._modules.items())

    def _named_vars(self, table: str) -> Dict[str, Variable]:
        out, seen = OrderedDict(), set()
        for prefix, mod in self.named_modules():
            for k, v in getattr(mod, table).items():
                if id(v) in seen:  # shared (tied) variables appear once, under their first name
                    continue
                seen.add(id(v))
                out[f"{prefix}.{k}" if prefix else k] = v
        return out

    def named_parameters(self) -> Dict[str, Variable]:
        """Trainable variables by PyTorch-style dotted name (tied weights appear once).

        >>> from rustyasg.nn import Linear
        >>> list(Linear(3, 2).named_parameters())
        ['weight', 'bias']
        """
        return self._named_vars("_parameters")

    def parameters(self) -> List[Variable]:
        """The trainable variables (what an optimizer updates)."""
        return list(self.named_parameters().values())

    def named_buffers(self) -> Dict[str, Variable]:
        """Non-trainable state variables (running statistics) by dotted name."""
        return self._named_vars("_buffers")

    def buffers(self) -> List[Variable]:
        return list(self.named_buffers().values())

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(int(np.prod(p.shape)) for p in self.parameters()))

    def summary(self, *inputs, depth: int = 8, dtype="float32"):
        """Layers, output shapes and parameter counts, like torchinfo (see :func:`rustyasg.nn.summary`)."""
        from .summary import summary

        return summary(self, *inputs, depth=depth, dtype=dtype)

    # -- state dicts ---------------------------------------------------------------------------
    def _state_vars(self) -> Dict[str, Variable]:
        # PyTorch orders each module's parameters before its buffers, module by module, and
        # keeps every name of a tied weight; so do we.
        out = OrderedDict()
        for prefix, mod in self.named_modules():
            for table in (mod._parameters, mod._buffers):
                for k, v in table.items():
                    out[f"{prefix}.{k}" if prefix else k] = v
        return out

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Parameters and buffers as numpy arrays, PyTorch names and layouts.

        >>> from rustyasg.nn import Linear
        >>> {k: v.shape for k, v in Linear(3, 2).state_dict().items()}
        {'weight': (2, 3), 'bias': (2,)}
        """
        return OrderedDict((k, v.value()) for k, v in self._state_vars().items())

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True):
        """Copy values into the parameters and buffers; returns ``(missing, unexpected)`` keys.

        With ``strict`` any missing or unexpected key is an error; a shape mismatch always is.
        Values may be numpy arrays or anything ``np.asarray`` accepts (torch CPU tensors too).
        """
        own = self._state_vars()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            miss = ", ".join(f"{k} {tuple(own[k].shape)}" for k in missing) or "none"
            extra = ", ".join(f"{k} {tuple(np.shape(state[k]))}" for k in unexpected) or "none"
            raise StateDictError(f"{type(self).__name__}.load_state_dict: missing keys: {miss}; "
                                 f"unexpected keys: {extra}")
        arrays = {}
        for k, var in own.items():
            if k not in state:
                continue
            arr = _to_numpy(state[k])
            if tuple(arr.shape) != tuple(var.shape):
                raise StateDictError(f"{type(self).__name__}.load_state_dict: {k!r} has shape {tuple(arr.shape)} "
                                 f"in the state dict but {tuple(var.shape)} in the model")
            arrays[k] = arr
        for k, arr in arrays.items():  # assign only once every key checked out
            own[k].assign(arr.astype(own[k].dtype))
        return missing, unexpected

    # -- dtype ------------------------------------------------------------------------------
    def to(self, dtype) -> "Module":
        """Convert floating parameters and buffers to ``dtype`` (new variables; tied ones stay tied).

        Trace graphs after converting: graphs built before still read the old variables.

        >>> from rustyasg.nn import Linear
        >>> Linear(2, 2).to("float64").weight.dtype
        dtype('float64')
        """
        dtype = np.dtype(dtype)
        converted: Dict[int, Variable] = {}
        for mod in self.modules():
            for table in (mod._parameters, mod._buffers):
                for k, v in list(table.items()):
                    if v.dtype.kind != "f" or v.dtype == dtype:
                        continue
                    if id(v) not in converted:
                        converted[id(v)] = rg.variable(v.value().astype(dtype), name=v.name, trainable=v.trainable)
                    setattr(mod, k, converted[id(v)])
            mod._pending_updates.clear()
        return self

    def double(self) -> "Module":
        """``to("float64")``."""
        return self.to("float64")

    def float(self) -> "Module":
        """``to("float32")``."""
        return self.to("float32")

    # -- modes ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and its descendants (read while a graph is traced).

        Compile one function for training and another for evaluation: the mode is
        baked into the traced graph.
        """
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (``train(False)``): dropout off, batch norm uses running statistics."""
        return self.train(False)

    # -- state updates (running statistics) ----------------------------------------------------------
    def record_update(self, var: Variable, value: Tensor) -> None:
        """Record a new value for a buffer, to be applied by the compiled step (see ``state_updates``)."""
        self._pending_updates[var] = value

    def clear_updates(self) -> None:
        """Forget the updates recorded by this module's last trace."""
        self._pending_updates.clear()

    def state_updates(self) -> Dict[Variable, Tensor]:
        """Buffer updates recorded by the most recent forward trace of every submodule.

        Merge them into the compiled step's ``updates``:
        ``rg.function([x, y], loss, updates={**opt.updates(loss), **model.state_updates()})``.
        """
        out: Dict[Variable, Tensor] = {}
        for m in self.modules():
            out.update(m._pending_updates)
        return out

    # -- randomness ----------------------------------------------------------------------------
    @property
    def rng(self) -> rg.RNG:
        """This module's random stream (created on first use; assign one to share it model-wide)."""
        if self._rng is None:
            object.__setattr__(self, "_rng", rg.RNG(next(_default_seeds)))
        return self._rng

    def set_rng(self, rng) -> "Module":
        """Use ``rng`` (an :class:`rustyasg.core.RNG` or an int seed) here and in every descendant."""
        if not isinstance(rng, rg.RNG):
            rng = rg.RNG(int(rng))
        for m in self.modules():
            object.__setattr__(m, "_rng", rng)
        return self

    def rng_states(self) -> Dict[str, Variable]:
        """The RNG state variables in use, by dotted name (``"rng"``, ``"drop.rng"``), for checkpoints.

        Kept out of ``state_dict`` because PyTorch modules have no RNG state.
        """
        out, seen = OrderedDict(), set()
        for prefix, mod in self.named_modules():
            r = mod._rng
            if r is not None and id(r) not in seen:
                seen.add(id(r))
                out[f"{prefix}.rng" if prefix else "rng"] = r.state
        return out

    # -- display ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({k}): " + repr(m).replace("\n", "\n  ") for k, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def clone(module: Module) -> Module:
    """A deep copy of ``module`` with fresh variables holding the same values (PyTorch's ``deepcopy`` of a layer).

    Variables tied inside ``module`` stay tied in the copy; RNGs are shared, not copied
    (a model keeps one stream); recorded state updates are not carried over.

    >>> from rustyasg.nn import Linear
    >>> a = Linear(2, 2); b = clone(a)
    >>> b.weight is a.weight, bool((b.weight.value() == a.weight.value()).all())
    (False, True)
    """
    import copy

    memo = {}
    for m in module.modules():
        for v in list(m._parameters.values()) + list(m._buffers.values()):
            if v is not None and id(v) not in memo:
                memo[id(v)] = rg.variable(v.value(), name=v.name, dtype=v.dtype, trainable=v.trainable)
        memo[id(m._pending_updates)] = {}
        if m._rng is not None:
            memo[id(m._rng)] = m._rng
    return copy.deepcopy(module, memo)


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)
