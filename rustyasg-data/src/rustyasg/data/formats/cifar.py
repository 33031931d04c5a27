"""CIFAR-10 and CIFAR-100 in their "python version" layout (pickled dict batches).

CIFAR-10: ``cifar-10-batches-py/`` with ``data_batch_1..5``, ``test_batch`` and ``batches.meta``.
CIFAR-100: ``cifar-100-python/`` with ``train``, ``test`` and ``meta``. Each batch is a dict with
``data`` (N×3072 uint8, channel-major rows: 1024 red, 1024 green, 1024 blue) and the labels.
The files are Python 2 pickles (``bytes`` keys); they are read with a loader that admits only
numpy arrays and plain containers, never arbitrary code.

>>> import pathlib, pickle, tempfile, numpy as np
>>> root = pathlib.Path(tempfile.mkdtemp(), "cifar-10-batches-py"); root.mkdir()
>>> batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [3], b"data": np.zeros((1, 3072), np.uint8)}
>>> _ = (root / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
>>> meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat"]}
>>> _ = (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
>>> test = cifar10(root.parent, "test")
>>> test.inputs.shape, test.classes[test.labels[0]]
((1, 3, 32, 32), 'cat')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import ClassificationDataset
from ..errors import MalformedDataError
from ._io import load_pickle, require_file

__all__ = ["read_cifar_batch", "load_cifar", "cifar10", "cifar100"]


@dataclass(frozen=True)
class _Layout:
    folder: str
    splits: dict[str, tuple[str, ...]]
    meta: str
    label_keys: dict[str, tuple[str, str]]  # label_mode -> (labels key in batches, names key in meta)


_LAYOUTS = {
    "cifar10": _Layout(
        folder="cifar-10-batches-py",
        splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        meta="batches.meta",
        label_keys={"fine": ("labels", "label_names")},
    ),
    "cifar100": _Layout(
        folder="cifar-100-python",
        splits={"train": ("train",), "test": ("test",)},
        meta="meta",
        label_keys={"fine": ("fine_labels", "fine_label_names"), "coarse": ("coarse_labels", "coarse_label_names")},
    ),
}

_PIXELS = 3 * 32 * 32


def _str_keys(obj: Any, path: Path, expected: str) -> dict[str, Any]:
    """The pickled dict with keys decoded: batches pickled by Python 2 have ``bytes`` keys."""
    if not isinstance(obj, dict):
        raise MalformedDataError(path, f"holds a {type(obj).__name__}", expected)
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def read_cifar_batch(path: str | os.PathLike, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 N×3×32×32) and labels (int64) of one CIFAR python batch file.

    ``label_key`` is ``labels`` for CIFAR-10, ``fine_labels``/``coarse_labels`` for CIFAR-100.

    >>> import os, pickle, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "test_batch")
    >>> rgb = np.repeat(np.array([[10, 20, 30], [40, 50, 60]], np.uint8), 1024, axis=1)  # 2 flat images
    >>> with open(path, "wb") as f: pickle.dump({b"data": rgb, b"labels": [3, 8]}, f, protocol=2)
    >>> x, y = read_cifar_batch(path)
    >>> x.shape, x.dtype, x[1, :, 5, 7].tolist(), y
    ((2, 3, 32, 32), dtype('uint8'), [40, 50, 60], array([3, 8]))
    """
    path = require_file(path, "a CIFAR python batch file")
    expected = f"a pickled dict with 'data' (N×{_PIXELS} uint8) and '{label_key}' (N ints)"
    batch = _str_keys(load_pickle(path, expected, encoding="bytes"), path, expected)
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise MalformedDataError(path, f"has keys {sorted(batch)}, missing {missing}", expected)
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise MalformedDataError(
            path, f"'data' is {data.dtype} of shape {data.shape}", f"uint8 of shape (N, {_PIXELS})"
        )
    labels = np.asarray(batch[label_key])
    if labels.shape != (len(data),) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise MalformedDataError(path, f"'{label_key}' has dtype {labels.dtype} shape {labels.shape}",
                                 f"{len(data)} integer labels")  # fmt: skip
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_names(path: Path, key: str) -> list[str]:
    expected = f"a pickled dict with '{key}' (a list of class names)"
    meta = _str_keys(load_pickle(require_file(path, "the CIFAR meta file"), expected, encoding="bytes"), path, expected)
    if key not in meta:
        raise MalformedDataError(path, f"has keys {sorted(meta)}", expected)
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta[key]]


def load_cifar(
    root: str | os.PathLike, split: str = "train", variant: str = "cifar10", label_mode: str = "fine"
) -> ClassificationDataset:
    """One split of CIFAR-10/100 as float32 (3, 32, 32) images in [0, 1] with int64 labels.

    ``root`` is the extracted folder (``cifar-10-batches-py``) or its parent. ``label_mode``
    picks CIFAR-100's 100 ``fine`` or 20 ``coarse`` classes.

    >>> import pathlib, pickle, tempfile, numpy as np
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [4, 99], b"coarse_labels": [0, 19]}
    >>> _ = (root / "test").write_bytes(pickle.dumps(batch, protocol=2))
    >>> meta = {b"fine_label_names": [b"fine%d" % i for i in range(100)],
    ...         b"coarse_label_names": [b"coarse%d" % i for i in range(20)]}
    >>> _ = (root / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    >>> test = load_cifar(root, "test", variant="cifar100", label_mode="coarse")
    >>> test.inputs.shape, test.inputs.dtype, test.labels.tolist(), len(test.classes)
    ((2, 3, 32, 32), dtype('float32'), [0, 19], 20)
    """
    if variant not in _LAYOUTS:
        raise ValueError(f"variant must be one of {sorted(_LAYOUTS)}, got {variant!r}")
    layout = _LAYOUTS[variant]
    if split not in layout.splits:
        raise ValueError(f"split must be one of {sorted(layout.splits)}, got {split!r}")
    if label_mode not in layout.label_keys:
        raise ValueError(f"{variant} label_mode must be one of {sorted(layout.label_keys)}, got {label_mode!r}")
    root = Path(root)
    folder = root / layout.folder if (root / layout.folder).is_dir() else root
    label_key, names_key = layout.label_keys[label_mode]
    parts = [read_cifar_batch(folder / name, label_key) for name in layout.splits[split]]
    classes = _read_names(folder / layout.meta, names_key)
    labels = np.concatenate([y for _, y in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise MalformedDataError(folder, f"labels range over [{labels.min()}, {labels.max()}]",
                                 f"labels in [0, {len(classes)}) to match {layout.meta}")  # fmt: skip
    images = np.concatenate([x for x, _ in parts]).astype(np.float32) * np.float32(1 / 255)
    return ClassificationDataset(images, labels, classes)


def cifar10(root: str | os.PathLike, split: str = "train") -> ClassificationDataset:
    """CIFAR-10 (10 classes): ``load_cifar(root, split, "cifar10")``.

    >>> import pathlib, pickle, tempfile, numpy as np
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 0]}))
    >>> _ = (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane", b"automobile"]}))
    >>> test = cifar10(root, "test")
    >>> len(test), [test.classes[i] for i in test.labels]
    (2, ['automobile', 'airplane'])
    """
    return load_cifar(root, split, "cifar10")


def cifar100(root: str | os.PathLike, split: str = "train", label_mode: str = "fine") -> ClassificationDataset:
    """CIFAR-100 (100 fine or 20 coarse classes): ``load_cifar(root, split, "cifar100", label_mode)``.

    >>> import pathlib, pickle, tempfile, numpy as np
    >>> root = pathlib.Path(tempfile.mkdtemp(), "cifar-100-python"); root.mkdir()
    >>> batch = {b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [2], b"coarse_labels": [1]}
    >>> _ = (root / "test").write_bytes(pickle.dumps(batch, protocol=2))
    >>> _ = (root / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"apple", b"bear", b"bee"]}))
    >>> test = cifar100(root.parent, "test")
    >>> test.inputs.shape, test.classes[test.labels[0]]
    ((1, 3, 32, 32), 'bee')
    """
    return load_cifar(root, split, "cifar100", label_mode)
