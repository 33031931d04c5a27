"""Datasets: the protocol, in-memory arrays, lazy maps, concatenation, subsets and splitting.

A dataset is anything with ``len(ds)`` and ``ds[i]`` returning one sample (numpy arrays, usually a
tuple ``(x, y)``), exactly like a map-style ``torch.utils.data.Dataset``. Datasets may also offer
``get_batch(indices)`` returning an already-collated batch; :class:`~rustyasg.data.DataLoader`
uses it so that an in-memory dataset is batched with one numpy fancy-index per array per batch
instead of a Python loop over samples.

>>> import numpy as np
>>> ds = InMemoryDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
>>> x1, y1 = ds[1]
>>> len(ds), x1, int(y1)
(5, array([2., 3.]), 1)
>>> train, test = train_test_split(ds, test_size=2, seed=0)
>>> len(train), len(test)
(3, 2)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from .collate import _is_string_batch, default_collate, tree_concat, tree_map

__all__ = [
    "Dataset",
    "DatasetBase",
    "InMemoryDataset",
    "ClassificationDataset",
    "MapDataset",
    "ConcatDataset",
    "SubsetDataset",
    "train_test_split",
    "fetch_batch",
]

T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class Dataset(Protocol[T_co]):
    """Structural type of a map-style dataset: ``len(ds)`` and ``ds[i]``.

    Any object with these two methods is a dataset; inheriting is not required.

    >>> isinstance([1, 2, 3], Dataset)
    True
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> T_co: ...


def normalize_index(index: Any, length: int) -> int:
    """A non-negative int index into a sequence of ``length``, or ``IndexError``.

    >>> normalize_index(-1, 5)
    4
    """
    try:
        i = int(np.asarray(index).item()) if isinstance(index, np.ndarray) else int(index.__index__())
    except (AttributeError, TypeError, ValueError):
        raise TypeError(f"dataset index must be an integer, got {type(index).__name__}") from None
    if i < 0:
        i += length
    if not 0 <= i < length:
        # IndexError (not ValueError) so that `for sample in ds` stops at the end like a sequence.
        raise IndexError(f"index {index} is out of range for a dataset of length {length}")
    return i


def normalize_indices(indices: Any, length: int) -> np.ndarray:
    """A 1-D ``intp`` array of non-negative indices, bounds-checked in one vectorised pass.

    >>> normalize_indices([0, -1], 3)
    array([0, 2])
    """
    idx = np.asarray(indices)
    if idx.ndim != 1:
        idx = idx.reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"batch indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.intp, copy=False)
    if idx.size and (idx.min() < -length or idx.max() >= length):
        bad = idx[(idx < -length) | (idx >= length)][0]
        raise IndexError(f"index {bad} is out of range for a dataset of length {length}")
    return np.where(idx < 0, idx + length, idx)


def fetch_batch(dataset: Dataset, indices: Any) -> Any:
    """The collated batch ``dataset[indices]``: ``dataset.get_batch`` if it has one, else a loop.

    >>> import numpy as np
    >>> fetch_batch([np.zeros(2), np.ones(2)], [1, 0]).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is not None:
        return get_batch(indices)
    return default_collate([dataset[int(i)] for i in np.asarray(indices).reshape(-1)])


class DatasetBase:
    """Optional base class: iteration, ``ds1 + ds2``, ``.map``, ``.subset`` and a ``get_batch``.

    Subclasses implement ``__len__`` and ``__getitem__``; they may override ``get_batch`` with a
    vectorised version.

    >>> class Squares(DatasetBase):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return normalize_index(i, 4) ** 2
    >>> list(Squares()), Squares().get_batch([1, 3]).tolist()
    ([0, 1, 4, 9], [1, 9])
    """

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def get_batch(self, indices: Any) -> Any:
        """Collated batch of the samples at ``indices`` (generic per-sample fallback)."""
        idx = normalize_indices(indices, len(self))
        return default_collate([self[int(i)] for i in idx])

    def __add__(self, other: Dataset) -> "ConcatDataset":
        return ConcatDataset([self, other])

    def map(self, fn: Callable | None = None, **kwargs: Any) -> "MapDataset":
        """Shorthand for :class:`MapDataset` ``(self, fn, ...)``."""
        return MapDataset(self, fn, **kwargs)

    def subset(self, indices: Any) -> "SubsetDataset":
        """Shorthand for :class:`SubsetDataset` ``(self, indices)``."""
        return SubsetDataset(self, indices)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(len={len(self)})"


class InMemoryDataset(DatasetBase):
    """Samples are rows of numpy arrays of equal length (like ``torch.utils.data.TensorDataset``).

    ``ds[i]`` is ``tuple(a[i] for a in arrays)``; ``ds.get_batch(idx)`` gathers a whole batch with
    one fancy-index per array. Arrays are kept as given (no copy).

    >>> import numpy as np
    >>> x, y = np.random.rand(6, 3).astype(np.float32), np.arange(6)
    >>> xb, yb = InMemoryDataset(x, y).get_batch([5, 0])
    >>> xb.shape, yb.tolist()
    ((2, 3), [5, 0])
    """

    def __init__(self, *arrays: Any):
        if not arrays:
            raise ValueError("InMemoryDataset needs at least one array")
        # asanyarray: keep ndarray subclasses and avoid copies of data the caller already owns.
        self.arrays: tuple[np.ndarray, ...] = tuple(np.asanyarray(a) for a in arrays)
        lengths = [a.shape[0] if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = [a.shape for a in self.arrays]
            raise ValueError(f"InMemoryDataset arrays must share their first dimension, got shapes {shapes}")
        self._length = lengths[0]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple:
        i = normalize_index(index, self._length)
        return tuple(a[i] for a in self.arrays)

    def get_batch(self, indices: Any) -> tuple:
        """One fancy-index per array: the fast path used by the DataLoader."""
        idx = normalize_indices(indices, self._length)
        return tuple(a[idx] for a in self.arrays)


class ClassificationDataset(InMemoryDataset):
    """An :class:`InMemoryDataset` of ``(input, label)`` pairs that also knows its class names.

    >>> import numpy as np
    >>> ds = ClassificationDataset(np.zeros((2, 1, 4, 4), np.float32), [1, 0], classes=["cat", "dog"])
    >>> ds.classes[int(ds[0][1])], ds.inputs.shape, ds.labels.dtype
    ('dog', (2, 1, 4, 4), dtype('int64'))
    """

    def __init__(self, inputs: Any, labels: Any, classes: Sequence[str] | None = None):
        labels = np.asarray(labels)
        if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(f"labels must be a 1-D integer array, got dtype {labels.dtype} shape {labels.shape}")
        super().__init__(inputs, labels.astype(np.int64, copy=False))
        n_classes = int(labels.max()) + 1 if labels.size else 0
        self.classes = [str(c) for c in classes] if classes is not None else [str(i) for i in range(n_classes)]
        if n_classes > len(self.classes):
            raise ValueError(f"label {n_classes - 1} has no name among {len(self.classes)} classes")

    @property
    def inputs(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(len={len(self)}, inputs={self.inputs.shape}, classes={len(self.classes)})"


def _has_batch_method(transform: Any) -> bool:
    return transform is None or callable(getattr(transform, "batch", None))


class MapDataset(DatasetBase):
    """Apply functions to the samples of another dataset lazily, when a sample is read.

    ``fn`` receives the whole sample; alternatively ``transform`` is applied to the input (first
    element of a tuple sample, or the sample itself) and ``target_transform`` to the second
    element, as torchvision datasets do. When the transforms are :mod:`rustyasg.data.transforms`
    objects, ``get_batch`` applies them to a whole batch at once (vectorised).

    >>> import numpy as np
    >>> from rustyasg.data.transforms import Normalize
    >>> base = InMemoryDataset(np.array([[2.0], [4.0]]), np.array([0, 1]))
    >>> MapDataset(base, transform=Normalize(mean=2.0, std=2.0))[1][0]
    array([1.])
    >>> MapDataset(base, lambda s: (s[0] * 10, s[1]))[0][0]
    array([20.])
    """

    def __init__(
        self,
        dataset: Dataset,
        fn: Callable[[Any], Any] | None = None,
        *,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ):
        if fn is not None and (transform is not None or target_transform is not None):
            raise ValueError("MapDataset: pass either fn (whole sample) or transform/target_transform, not both")
        self.dataset = dataset
        self.fn = fn
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.dataset)

    def _apply(self, sample: Any, batched: bool) -> Any:
        def call(t, value):
            if t is None:
                return value
            return t.batch(value) if batched else t(value)

        if isinstance(sample, tuple):
            head = call(self.transform, sample[0]) if len(sample) > 0 else None
            items = list(sample)
            if len(items) > 0:
                items[0] = head
            if len(items) > 1:
                items[1] = call(self.target_transform, items[1])
            return type(sample)(*items) if hasattr(sample, "_fields") else tuple(items)
        return call(self.transform, sample)

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        if self.fn is not None:
            return self.fn(sample)
        return self._apply(sample, batched=False)

    def get_batch(self, indices: Any) -> Any:
        """Vectorised when the transforms have a ``.batch`` method; per-sample otherwise."""
        if self.fn is None and _has_batch_method(self.transform) and _has_batch_method(self.target_transform):
            return self._apply(fetch_batch(self.dataset, indices), batched=True)
        return super().get_batch(indices)


def _take(batch: Any, order: np.ndarray) -> Any:
    """Reorder every leaf of a collated batch along its leading axis."""
    if _is_string_batch(batch):
        return [batch[i] for i in order]
    return tree_map(lambda a: a[order] if isinstance(a, np.ndarray) else [a[i] for i in order], batch)


class ConcatDataset(DatasetBase):
    """Several datasets one after another (also what ``ds1 + ds2`` builds).

    >>> import numpy as np
    >>> a, b = InMemoryDataset(np.arange(3)), InMemoryDataset(np.arange(10, 12))
    >>> c = a + b
    >>> len(c), int(c[3][0]), c.get_batch([4, 0])[0].tolist()
    (5, 10, [11, 0])
    """

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def _locate(self, i: int) -> tuple[int, int]:
        d = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[d - 1] if d else 0
        return d, i - start

    def __getitem__(self, index: int) -> Any:
        d, local = self._locate(normalize_index(index, len(self)))
        return self.datasets[d][local]

    def get_batch(self, indices: Any) -> Any:
        """Gather from each part with one ``get_batch`` call, then restore the requested order."""
        idx = normalize_indices(indices, len(self))
        which = np.searchsorted(self.cumulative_sizes, idx, side="right")
        starts = np.concatenate([[0], self.cumulative_sizes[:-1]])
        parts, positions = [], []
        for d in np.unique(which):
            mask = which == d
            parts.append(fetch_batch(self.datasets[d], idx[mask] - starts[d]))
            positions.append(np.flatnonzero(mask))
        if len(parts) == 1:
            return parts[0]
        order = np.argsort(np.concatenate(positions), kind="stable")
        return _take(tree_concat(parts), order)

    @property
    def cummulative_sizes(self) -> list[int]:  # spelling kept for code ported from PyTorch
        return self.cumulative_sizes


class SubsetDataset(DatasetBase):
    """The samples of ``dataset`` at ``indices``, in that order (like ``torch.utils.data.Subset``).

    >>> import numpy as np
    >>> s = SubsetDataset(InMemoryDataset(np.arange(10) * 10), [7, 2])
    >>> len(s), int(s[0][0]), s.get_batch([1, 0])[0].tolist()
    (2, 70, [20, 70])
    """

    def __init__(self, dataset: Dataset, indices: Any):
        self.dataset = dataset
        self.indices = normalize_indices(indices, len(dataset))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[normalize_index(index, len(self.indices))])]

    def get_batch(self, indices: Any) -> Any:
        return fetch_batch(self.dataset, self.indices[normalize_indices(indices, len(self.indices))])


def _count(size: float | int | None, n: int, name: str) -> int | None:
    if size is None:
        return None
    if isinstance(size, (float, np.floating)):
        if not 0.0 < size < 1.0:
            raise ValueError(f"{name} as a fraction must be in (0, 1), got {size}")
        # Round the test side up, as scikit-learn does, so a tiny fraction still gets a sample.
        return math.ceil(size * n) if name == "test_size" else math.floor(size * n)
    size = int(size)
    if not 0 <= size <= n:
        raise ValueError(f"{name}={size} is outside [0, {n}] for a dataset of {n} samples")
    return size


def _stratified_test_mask(labels: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing ``n_test`` samples so that each class keeps its proportion."""
    n = len(labels)
    _, cls, counts = np.unique(labels, return_inverse=True, return_counts=True)
    cls = cls.reshape(-1)
    # Largest-remainder rounding: per-class shares sum exactly to n_test.
    exact = counts * (n_test / n)
    alloc = np.floor(exact).astype(np.int64)
    remainder = n_test - int(alloc.sum())
    if remainder:
        # Random tie-break among equal fractional parts keeps the split unbiased across classes.
        frac = exact - alloc + rng.random(len(counts)) * 1e-9
        alloc[np.argsort(-frac, kind="stable")[:remainder]] += 1
    perm = rng.permutation(n)
    by_class = perm[np.argsort(cls[perm], kind="stable")]  # classes grouped, random order inside
    class_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = np.arange(n) - class_start[cls[by_class]]
    return rank < alloc[cls]


def train_test_split(
    dataset: Dataset,
    test_size: float | int | None = None,
    *,
    train_size: float | int | None = None,
    seed: int | None = None,
    shuffle: bool = True,
    stratify: Any = None,
) -> tuple[SubsetDataset, SubsetDataset]:
    """Split a dataset into train and test :class:`SubsetDataset` s (seeded, optionally stratified).

    ``test_size``/``train_size`` are fractions in (0, 1) or sample counts; the default test share
    is 0.25, as in scikit-learn. ``stratify`` is an array of class labels (one per sample): each
    class then appears in the test set in the same proportion as in the whole dataset.

    >>> import numpy as np
    >>> y = np.array([0] * 8 + [1] * 4)
    >>> tr, te = train_test_split(InMemoryDataset(y), test_size=0.25, seed=1, stratify=y)
    >>> np.bincount(te.get_batch(np.arange(len(te)))[0]).tolist()
    [2, 1]
    """
    n = len(dataset)
    n_test = _count(test_size, n, "test_size")
    n_train = _count(train_size, n, "train_size")
    if n_test is None and n_train is None:
        n_test = math.ceil(0.25 * n)
    if n_test is None:
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n:
        raise ValueError(f"train_size + test_size = {n_train + n_test} exceeds the {n} samples")
    rng = np.random.default_rng(seed)
    if stratify is not None:
        if not shuffle:
            raise ValueError("stratified splitting needs shuffle=True")
        labels = np.asarray(stratify)
        if len(labels) != n:
            raise ValueError(f"stratify has {len(labels)} labels for a dataset of {n} samples")
        test_mask = _stratified_test_mask(labels, n_test, rng)
        test_idx = rng.permutation(np.flatnonzero(test_mask))
        train_idx = rng.permutation(np.flatnonzero(~test_mask))[:n_train]
        return SubsetDataset(dataset, train_idx), SubsetDataset(dataset, test_idx)
    order = rng.permutation(n) if shuffle else np.arange(n)
    # Same convention as scikit-learn: the train part comes first, the test part right after it.
    return SubsetDataset(dataset, order[:n_train]), SubsetDataset(dataset, order[n_train : n_train + n_test])
