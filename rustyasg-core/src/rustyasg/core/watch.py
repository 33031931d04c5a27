"""Watched steps: a compiled function that also returns intermediate values.

:meth:`Function.watch` builds, once per set of watched tensors, a variant of the step
whose outputs are the step's outputs followed by the watched tensors. It shares the
step's inputs, updates and backend, so calling it *is* running the step; its executable
is cached per signature like any function's, so inspecting values costs no recompilation
after the first call.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((3,), "float64", name="x")
    >>> h = rg.exp(x)
    >>> step = rg.function([x], h.sum(), backend="reference")
    >>> w = step.watch([h])
    >>> w is step.watch([h])        # cached: no second compilation
    True
    >>> loss, values = w(np.zeros(3))
    >>> values[h].tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Dict, Sequence

from .graph import Tensor


class WatchedFunction:
    """``step`` plus the values of ``tensors``; calling it returns ``(outputs, {tensor: value})``."""

    def __init__(self, step, tensors: Sequence[Tensor]):
        self.step = step
        self.tensors = list(tensors)
        for t in self.tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"watch() takes symbolic tensors of the step's graph, got {t!r}")
        n = len(step.outputs)
        self._n = n
        # A function of the step's own class (watching needs no import of function.py, which calls this).
        self.function = type(step)(step.inputs, step.outputs + self.tensors, [(v, t) for v, t in step.updates],
                                 step.backend, step.disabled_passes, name=f"{step.name or 'function'}.watch")
        self.function._single = False

    def __call__(self, *args, fetch: bool = True):
        results = self.function(*args, fetch=fetch)
        outs, watched = results[:self._n], results[self._n:]
        values: Dict[Tensor, object] = dict(zip(self.tensors, watched))
        return (outs[0] if self.step._single else outs), values


def watched(step, tensors: Sequence[Tensor]) -> WatchedFunction:
    """The cached :class:`WatchedFunction` of ``step`` for ``tensors``."""
    tensors = list(tensors)
    cache = step.__dict__.setdefault("_watched", {})
    key = tuple(t.id for t in tensors)
    if key not in cache:
        cache[key] = WatchedFunction(step, tensors)
    return cache[key]
