"""The streaming-metric protocol shared by every metric: ``update`` / ``compute`` / ``reset``.

>>> from rustyasg.data.metrics import Accuracy
>>> m = Accuracy()
>>> m.update([1, 0], [1, 1]); m.update([1], [1])
>>> m.compute()
0.6666666666666666
>>> m([0], [0])   # calling a metric updates it and returns the value of that batch alone
1.0
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["Metric"]


class Metric:
    """Base class: accumulate over batches with ``update``, read with ``compute``, clear with ``reset``.

    Subclasses keep their state in attributes that ``reset`` *rebinds* (never mutates in place),
    so a shallow copy followed by ``reset`` is an independent fresh metric (used by ``__call__``).

    >>> class Count(Metric):
    ...     def reset(self): self.n = 0
    ...     def update(self, xs): self.n += len(xs)
    ...     def compute(self): return self.n
    >>> c = Count(); c.update([1, 2]); c([3])
    1
    >>> c.compute()
    3
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def compute(self) -> Any:
        raise NotImplementedError

    def fresh(self) -> "Metric":
        """A new metric with the same settings and empty state."""
        twin = copy.copy(self)
        twin.reset()
        return twin

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Update with this batch and return the metric of this batch alone (torchmetrics' forward)."""
        batch = self.fresh()
        batch.update(*args, **kwargs)
        self.update(*args, **kwargs)
        return batch.compute()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"
