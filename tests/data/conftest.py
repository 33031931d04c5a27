"""Writers for real on-disk data formats, used by the tests in this folder.

Each writer produces bytes in the exact published layout (IDX, mnist.pkl.gz, CIFAR python
batches, Netpbm), independently of the readers under test.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

_IDX_CODES = {("u", 1): 0x08, ("i", 1): 0x09, ("i", 2): 0x0B, ("i", 4): 0x0C, ("f", 4): 0x0D, ("f", 8): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: 0, 0, type code, ndim, big-endian sizes, big-endian data."""
    array = np.asarray(array)
    code = _IDX_CODES[(array.dtype.kind, array.dtype.itemsize)]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


class Writers:
    """The byte-level writers, handed to tests through the ``writers`` fixture (no test imports
    conftest directly, so the suite works under any pytest import mode)."""

    idx_bytes = staticmethod(idx_bytes)
    write = staticmethod(write)


@pytest.fixture
def writers() -> type[Writers]:
    return Writers


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def mnist_idx_dir(tmp_path, rng):
    """A directory with train (12 images) and test (5 images) MNIST IDX files, gzipped."""

    def make(n_train=12, n_test=5, gz=True, root=None, height=28, width=28):
        root = Path(root or tmp_path / "mnist")
        arrays = {}
        for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
            images = rng.integers(0, 256, size=(n, height, width), dtype=np.uint8)
            labels = rng.integers(0, 10, size=n, dtype=np.uint8)
            write(root / f"{prefix}-images-idx3-ubyte", idx_bytes(images), gz)
            write(root / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), gz)
            arrays[split] = (images, labels)
        return root, arrays

    return make


def mnist_pickle_bytes(splits, protocol=2) -> bytes:
    return gzip.compress(pickle.dumps(tuple(splits), protocol=protocol))


@pytest.fixture
def mnist_pickle(tmp_path, rng):
    """A small ``mnist.pkl.gz``: ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))."""

    def make(sizes=(7, 3, 4), protocol=2, path=None):
        splits = []
        for n in sizes:
            x = (rng.integers(0, 256, size=(n, 784)) / 256).astype(np.float32)
            y = rng.integers(0, 10, size=n).astype(np.int64)
            splits.append((x, y))
        path = Path(path or tmp_path / "mnist.pkl.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(mnist_pickle_bytes(splits, protocol))
        return path, splits

    return make


def cifar_batch(images: np.ndarray, labels: dict[bytes, list[int]]) -> bytes:
    """A CIFAR python batch: dict with bytes keys, ``data`` as N×3072 channel-major rows."""
    batch = {b"batch_label": b"testing batch 1 of 1", b"data": images.reshape(len(images), -1),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}  # fmt: skip
    batch.update(labels)
    return pickle.dumps(batch, protocol=2)


@pytest.fixture
def cifar_dir(tmp_path, rng):
    """Folders ``cifar-10-batches-py`` / ``cifar-100-python`` with small batches."""

    def make(variant="cifar10", per_batch=3):
        if variant == "cifar10":
            root = tmp_path / "cifar-10-batches-py"
            names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
            classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
            meta = {b"label_names": [c.encode() for c in classes], b"num_cases_per_batch": per_batch}
            meta_name = "batches.meta"
        else:
            root = tmp_path / "cifar-100-python"
            names = ["train", "test"]
            classes = [f"fine_{i}" for i in range(100)]
            meta = {b"fine_label_names": [c.encode() for c in classes],
                    b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)]}  # fmt: skip
            meta_name = "meta"
        root.mkdir(parents=True)
        written = {}
        for name in names:
            images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
            if variant == "cifar10":
                labels = {b"labels": rng.integers(0, 10, per_batch).tolist()}
            else:
                labels = {b"fine_labels": rng.integers(0, 100, per_batch).tolist(),
                          b"coarse_labels": rng.integers(0, 20, per_batch).tolist()}  # fmt: skip
            (root / name).write_bytes(cifar_batch(images, labels))
            written[name] = (images, labels)
        (root / meta_name).write_bytes(pickle.dumps(meta, protocol=2))
        return root, written, classes

    return make


def netpbm_bytes(pixels: np.ndarray, binary: bool = True, maxval: int | None = None, comment: bool = True) -> bytes:
    """PGM (H×W) or PPM (H×W×3) in binary (P5/P6) or ASCII (P2/P3) form."""
    colour = pixels.ndim == 3
    maxval = maxval or (255 if pixels.dtype == np.uint8 else 65535)
    magic = {(False, False): b"P2", (True, False): b"P3", (False, True): b"P5", (True, True): b"P6"}[(colour, binary)]
    h, w = pixels.shape[:2]
    header = magic + b"\n" + (b"# written by the tests\n" if comment else b"") + f"{w} {h}\n{maxval}\n".encode()
    if binary:
        body = pixels.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    else:
        body = "\n".join(" ".join(str(v) for v in row) for row in pixels.reshape(h, -1)).encode() + b"\n"
    return header + body


Writers.mnist_pickle_bytes = staticmethod(mnist_pickle_bytes)
Writers.cifar_batch = staticmethod(cifar_batch)
Writers.netpbm_bytes = staticmethod(netpbm_bytes)
