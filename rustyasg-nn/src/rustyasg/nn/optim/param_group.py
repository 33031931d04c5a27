"""A parameter group: PyTorch's dict of params and settings, backed by scalar variables.

The compiled step never bakes a hyperparameter in as a constant. Each group owns
small non-trainable variables holding the scalars its update reads (``lr``,
``1 - beta1``, ``log(beta2)`` ...), derived from the Python-level settings *in
double precision on the host*, as PyTorch computes them. Setting
``group["lr"] = 0.01`` (what schedulers do) re-derives the scalars and assigns
the variables that changed; the next call uploads them, without recompiling.

Settings that change the *structure* of the update (``nesterov``, ``amsgrad``,
a zero vs non-zero ``momentum`` or ``weight_decay``) are read when the step's
graph is built; changing them afterwards raises, since the compiled step would
silently ignore the change.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.optim import SGD
    >>> w = rg.variable(np.zeros(3, np.float32), name="w")
    >>> opt = SGD([w], lr=0.1)
    >>> opt.param_groups[0]["lr"] = 0.05
    >>> float(opt.param_groups[0].scalar_variables()["lr"].value())
    0.05000000074505806
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Variable


def group_dtype(params) -> np.dtype:
    """The widest floating dtype among ``params`` (float32 at least): the dtype of the group's scalars."""
    dt = np.dtype(np.float32)
    for p in params:
        if p.dtype.kind == "f" and p.dtype.itemsize > dt.itemsize:
            dt = p.dtype
    return dt


class ParamGroup(dict):
    """One group of an optimizer's ``param_groups``: ``{"params": [...], "lr": ..., ...}``."""

    def __init__(self, optimizer, index: int, settings: Dict[str, Any]):
        super().__init__(settings)
        self._optimizer = optimizer
        self._index = index
        self._scalars: Dict[str, Variable] = {}
        self._assigned: Dict[str, float] = {}
        self._structure: Optional[Dict[str, Any]] = None  # structure the built step assumed
        self._refresh()

    # -- dict protocol: every write goes through __setitem__ ----------------------------------------
    def __setitem__(self, key: str, value) -> None:
        old = self.get(key, _MISSING)
        super().__setitem__(key, value)
        try:
            self._optimizer.validate(self)
            self._check_structure(key)
            self._refresh()
        except Exception:
            if old is _MISSING:
                super().__delitem__(key)
            else:
                super().__setitem__(key, old)
            raise

    def update(self, *args, **kw) -> None:  # noqa: D401 - dict API
        for key, value in dict(*args, **kw).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    # -- scalar variables -------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return group_dtype(self["params"])

    def scalar_variables(self) -> Dict[str, Variable]:
        """The scalar variables the compiled update reads, by name."""
        return dict(self._scalars)

    def scalars(self, dtype) -> Dict[str, rg.Tensor]:
        """The scalar variables as tensors of ``dtype`` (cast when a group mixes dtypes)."""
        return {k: v.astype(dtype) for k, v in self._scalars.items()}

    def _refresh(self) -> None:
        values = self._optimizer.derive_scalars(self)
        dtype = self.dtype
        for name, value in values.items():
            value = float(value)
            var = self._scalars.get(name)
            if var is None:
                prefix = f"{type(self._optimizer).__name__}.group{self._index}"
                self._scalars[name] = rg.variable(np.asarray(value, dtype), name=f"{prefix}.{name}",
                                                  trainable=False)
            elif self._assigned.get(name) != value:
                var.assign(np.asarray(value, dtype))
            self._assigned[name] = value

    # -- structure -------------------------------------------------------------------------------
    def freeze_structure(self) -> Dict[str, Any]:
        """Record (and return) the structural settings a step is being built with."""
        self._structure = self._optimizer.structure(self)
        return self._structure

    def _check_structure(self, key: str) -> None:
        if self._structure is None:
            return
        now = self._optimizer.structure(self)
        if now != self._structure:
            changed = sorted(k for k in now if now[k] != self._structure.get(k))
            raise ValueError(f"{type(self._optimizer).__name__} param group {self._index}: setting {key!r} changes "
                             f"the structure of the update ({', '.join(changed)}), which the compiled step was built "
                             f"without; call optimizer.updates(loss) again and compile a new step")


_MISSING = object()
