"""Turning a list of samples into a batch, and walking nested batch structures.

A *sample* is an array, a scalar, a string, or a tuple/list/dict/namedtuple of those (nested
freely). :func:`default_collate` stacks matching leaves along a new leading batch axis and keeps the
container structure, as ``torch.utils.data.default_collate`` does for tensors.

>>> import numpy as np
>>> batch = default_collate([(np.zeros(3), 1), (np.ones(3), 0)])
>>> batch[0].shape, batch[1].tolist()
((2, 3), [1, 0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["default_collate", "tree_map", "tree_concat"]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _is_string_batch(x: Any) -> bool:
    """A collated batch of strings is a list of str: a leaf, not a container of fields."""
    return isinstance(x, list) and bool(x) and isinstance(x[0], (str, bytes))


def _rebuild(template: Any, items: list) -> Any:
    """A container of the same kind as ``template`` holding ``items``."""
    if _is_namedtuple(template):
        return type(template)(*items)
    if isinstance(template, tuple):
        return tuple(items)
    return list(items)


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into one batch, keeping tuple/list/dict structure.

    Arrays are stacked with :func:`numpy.stack` (shapes must match); Python and numpy scalars
    become a 1-D array; strings become a list; containers are collated field by field.

    >>> import numpy as np
    >>> b = default_collate([{"x": np.ones(2), "y": 3}, {"x": np.zeros(2), "y": 4}])
    >>> b["x"].shape, b["y"]
    ((2, 2), array([3, 4]))
    """
    if len(samples) == 0:
        raise ValueError("default_collate got an empty list of samples")
    first = samples[0]
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        width = len(first)
        if any(len(s) != width for s in samples):
            raise ValueError(
                f"default_collate: samples have different lengths "
                f"{sorted({len(s) for s in samples})}; every sample must have the same structure"
            )
        return _rebuild(first, [default_collate([s[i] for s in samples]) for i in range(width)])
    if isinstance(first, np.ndarray):
        shapes = {s.shape for s in samples}
        if len(shapes) > 1:
            raise ValueError(
                f"default_collate: cannot stack arrays of different shapes {sorted(shapes)}; "
                "pad them, or pass a custom collate_fn"
            )
        return np.stack(samples)
    # Python or numpy scalar (bool, int, float, np.generic).
    return np.asarray(samples)


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` to every array leaf of one or more batches with the same structure.

    >>> import numpy as np
    >>> tree_map(lambda a: a * 2, (np.array([1]), {"k": np.array([2])}))
    (array([2]), {'k': array([4])})
    """
    if isinstance(tree, Mapping):
        return {k: tree_map(fn, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, (tuple, list)) and not _is_string_batch(tree):
        items = [tree_map(fn, t, *(r[i] for r in rest)) for i, t in enumerate(tree)]
        return _rebuild(tree, items)
    return fn(tree, *rest)


def tree_concat(batches: Sequence[Any]) -> Any:
    """Concatenate batches (same structure) along the leading axis.

    >>> import numpy as np
    >>> tree_concat([(np.array([1, 2]),), (np.array([3]),)])
    (array([1, 2, 3]),)
    """
    first = batches[0]
    if isinstance(first, Mapping):
        return {k: tree_concat([b[k] for b in batches]) for k in first}
    if _is_string_batch(first):
        return [s for b in batches for s in b]
    if isinstance(first, (tuple, list)):
        return _rebuild(first, [tree_concat([b[i] for b in batches]) for i in range(len(first))])
    return np.concatenate(batches, axis=0)
