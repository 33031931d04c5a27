"""Values on demand: a tensor built from constants and variables only can be read like an array.

Such a tensor needs no feed, so asking for its value -- ``np.asarray(t)``, ``t.numpy()``,
``t.item()``, ``float(t)``, ``int(t)``, ``bool(t)``, ``f"{t:.3f}"``, ``print(t)`` -- compiles it
once on the default backend (``$RUSTYASG_BACKEND``, else ``cpu``), caches the compiled function on
the tensor and runs it with the variables' current values (so ``model(x)`` on a numpy batch reads
like PyTorch). A tensor that depends on an ``rg.input`` has no value outside a compiled function:
asking for one raises :class:`~rustyasg.core.errors.UnfedInputError` naming the inputs, and
``repr`` stays symbolic.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.array([1.0, 2.0], np.float32), name="w")
    >>> y = (w * 3.0).sum()
    >>> float(y), y.item()
    (9.0, 9.0)
    >>> w.assign(np.array([0.5, 0.5], np.float32)); print(y)   # the current value, same compiled step
    Tensor(3., dtype=float32)
    >>> x = rg.input((2,), name="x")
    >>> float(w @ x)
    Traceback (most recent call last):
    rustyasg.core.errors.UnfedInputError: ...
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .errors import UnfedInputError
from .graph import Tensor, Variable, toposort

_compiled: Dict[Tuple[int, str], Any] = {}  # (tensor id, backend name) -> Function
_state = threading.local()  # .busy: a realization is running (its own error messages stay symbolic)


def unfed_inputs(t: Tensor) -> List[Tensor]:
    """The ``rg.input`` tensors ``t`` depends on (empty when it can be realized)."""
    return [n for n in toposort([t]) if n.op == "input"]


def realize(t: Tensor, backend: Optional[str] = None) -> np.ndarray:
    """The value of a tensor whose leaves are constants and variables (see the module docstring)."""
    if isinstance(t, Variable):
        return t.value()
    if t.op == "constant":
        return np.array(t.attrs["value"], dtype=t.dtype, copy=True)
    missing = unfed_inputs(t)
    if missing:
        raise UnfedInputError(_unfed_message(t, missing))
    from .backends import get_backend
    from .function import Function

    be = get_backend(backend)
    key = (t.id, be.name)
    fn = _compiled.get(key)
    _state.busy = True
    try:
        if fn is None:
            fn = _compiled[key] = Function([], t, backend=be, name="realize")
            weakref.finalize(t, _compiled.pop, key, None)
        return np.asarray(fn())
    finally:
        _state.busy = False


def _unfed_message(t: Tensor, missing: List[Tensor]) -> str:
    names = ", ".join(f"{n.name or '?'!s} {n.describe()}" + (f" (created at {n.source})" if n.source else "")
                      for n in missing)
    where = f", created at {t.source}" if t.source else ""
    first = missing[0].name or "x"
    return (f"this tensor ({t.op} {t.describe()}{where}) has no value: it depends on input(s) {names}, which "
            f"get values only when a compiled function runs. Compile it with rg.function([{first}, ...], tensor) "
            f"or rg.jit, or evaluate it once with rg.evaluate(tensor, {{{first}: value}})")


# -- the Tensor methods -----------------------------------------------------------------------------------
def _numpy(self: Tensor) -> np.ndarray:
    """The value as a numpy array (realized on the default backend; see :mod:`rustyasg.core.realize`)."""
    return realize(self)


def _array(self: Tensor, dtype=None, copy=None) -> np.ndarray:
    value = realize(self)
    return value if dtype is None else value.astype(dtype, copy=False)


def _scalar(self: Tensor, what: str) -> Any:
    value = realize(self)
    if value.size != 1:
        raise TypeError(f"{what} needs a tensor with one element, got {self.describe()}")
    return value.reshape(()).item()


def _item(self: Tensor) -> Any:
    """The single element as a Python number (like ``torch.Tensor.item``)."""
    return _scalar(self, "item()")


def _bool(self: Tensor) -> bool:
    if unfed_inputs(self):
        raise TypeError("a symbolic Tensor has no truth value while the graph is built; use "
                        "rustyasg.core.where(...) for data-dependent choices. " + _unfed_message(self, unfed_inputs(self)))
    return bool(_scalar(self, "the truth value"))


def _format(self: Tensor, spec: str) -> str:
    if spec and not unfed_inputs(self):
        return format(_scalar(self, f"format spec {spec!r}"), spec)
    return format(repr(self), spec)


def _repr(self: Tensor) -> str:
    if not getattr(_state, "busy", False) and not unfed_inputs(self):
        try:
            value = realize(self)
        except Exception:  # noqa: BLE001 - a repr must not raise; the symbolic form still says what it is
            pass
        else:
            body = np.array2string(value, separator=", ", prefix="Tensor(")
            return f"Tensor({body}, dtype={self.dtype})"
    label = f" {self.name!r}" if self.name else ""
    return f"<Tensor{label} {self.op} {self.describe()}>"


def _numel(self: Tensor) -> int:
    """Number of elements (the product of the shape); a symbolic dimension has no count yet.

    >>> import numpy as np, rustyasg.core as rg
    >>> rg.variable(np.zeros((3, 4)), name="w").numel()
    12
    """
    if not all(isinstance(d, (int, np.integer)) for d in self.shape):
        raise TypeError(f"numel() of {self.describe()}: the shape has symbolic dimensions, known only when a "
                        f"compiled function runs")
    return int(np.prod(self.shape, dtype=np.int64))


METHODS = {
    "numpy": _numpy, "__array__": _array, "item": _item, "tolist": lambda self: realize(self).tolist(),
    "__float__": lambda self: float(_scalar(self, "float()")), "__int__": lambda self: int(_scalar(self, "int()")),
    "__bool__": _bool, "__format__": _format, "__repr__": _repr, "numel": _numel,
}

__all__ = ["realize", "unfed_inputs", "METHODS"]
