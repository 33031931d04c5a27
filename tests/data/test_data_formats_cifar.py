import pickle

import numpy as np
import pytest

from rustyasg.data import (
    MalformedDataError,
    MissingDataFileError,
    TruncatedDataError,
    cifar10,
    cifar100,
    get_dataset,
    read_cifar_batch,
)


def test_cifar10_train_and_test(cifar_dir):
    root, written, classes = cifar_dir("cifar10")
    train = cifar10(root.parent, "train")  # the parent of cifar-10-batches-py works
    assert len(train) == 15 and train.classes == classes
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_allclose(train.inputs, expected / 255, rtol=1e-6)
    assert train.inputs.dtype == np.float32 and train.inputs.shape[1:] == (3, 32, 32)
    labels = sum((written[f"data_batch_{i}"][1][b"labels"] for i in range(1, 6)), [])
    assert train.labels.tolist() == labels
    test = cifar10(root, "test")  # the folder itself works too
    assert test.labels.tolist() == written["test_batch"][1][b"labels"]


def test_cifar_rows_are_channel_major(tmp_path):
    # A row is 1024 red values, then 1024 green, then 1024 blue, each in row-major pixel order.
    row = np.zeros(3072, np.uint8)
    row[0], row[1024 + 33], row[2048 + 1023] = 10, 20, 30
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": row[None], b"labels": [4]}, protocol=2))
    images, labels = read_cifar_batch(path)
    assert images[0, 0, 0, 0] == 10 and images[0, 1, 1, 1] == 20 and images[0, 2, 31, 31] == 30
    assert labels.tolist() == [4] and labels.dtype == np.int64


def test_cifar100_fine_and_coarse(cifar_dir):
    root, written, classes = cifar_dir("cifar100", per_batch=6)
    fine = cifar100(root, "train")
    coarse = get_dataset("cifar100", root=root, split="test", label_mode="coarse")
    assert fine.labels.tolist() == written["train"][1][b"fine_labels"] and len(fine.classes) == 100
    assert coarse.labels.tolist() == written["test"][1][b"coarse_labels"]
    assert coarse.classes[:2] == ["coarse_0", "coarse_1"]
    np.testing.assert_allclose(coarse.inputs * 255, written["test"][0], atol=1e-3)
    with pytest.raises(ValueError, match="label_mode"):
        cifar100(root, "train", label_mode="medium")


def test_cifar_errors_name_the_file(cifar_dir, tmp_path):
    root, _, _ = cifar_dir("cifar10")
    (root / "data_batch_3").unlink()
    with pytest.raises(MissingDataFileError, match="data_batch_3"):
        cifar10(root, "train")
    blob = (root / "data_batch_1").read_bytes()
    (root / "data_batch_2").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(TruncatedDataError, match="data_batch_2"):
        read_cifar_batch(root / "data_batch_2")
    (root / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(MalformedDataError, match=r"'data' is uint8 of shape \(2, 100\)"):
        read_cifar_batch(root / "test_batch")
    (root / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(MalformedDataError, match="missing \\['labels'\\]"):
        read_cifar_batch(root / "test_batch")
    (root / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(MalformedDataError, match="holds a list"):
        read_cifar_batch(root / "test_batch")
