import numpy as np
import pytest

from rustyasg.data import (
    ConcatDataset,
    Dataset,
    InMemoryDataset,
    MapDataset,
    SubsetDataset,
    fetch_batch,
    train_test_split,
)
from rustyasg.data import transforms as T


def _all(ds):
    return fetch_batch(ds, np.arange(len(ds)))


def test_protocol_is_structural():
    class Plain:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.full(3, i)

    assert isinstance(Plain(), Dataset)
    assert isinstance(InMemoryDataset(np.zeros(3)), Dataset)
    assert not isinstance(object(), Dataset)
    # A plain dataset without get_batch is still batched (per-sample collate).
    assert fetch_batch(Plain(), [1, 0]).tolist() == [[1, 1, 1], [0, 0, 0]]


def test_in_memory_indexing_and_batches(rng):
    x, y = rng.normal(size=(10, 3)).astype(np.float32), rng.integers(0, 4, 10)
    ds = InMemoryDataset(x, y)
    assert len(ds) == 10
    xs, ys = ds[3]
    np.testing.assert_array_equal(xs, x[3])
    assert ys == y[3]
    np.testing.assert_array_equal(ds[-1][0], x[9])
    xb, yb = ds.get_batch([9, 0, 0, -2])
    np.testing.assert_array_equal(xb, x[[9, 0, 0, 8]])
    np.testing.assert_array_equal(yb, y[[9, 0, 0, 8]])
    assert [s[1] for s in ds] == list(y)  # iteration stops at the end
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    with pytest.raises(IndexError):
        ds.get_batch([0, 10])
    with pytest.raises(ValueError, match="first dimension"):
        InMemoryDataset(np.zeros(3), np.zeros(4))


def test_map_dataset_is_lazy_and_batched_transforms_match(rng):
    x, y = rng.normal(size=(8, 2, 4, 4)), rng.integers(0, 3, 8)
    calls = []

    def fn(sample):
        calls.append(1)
        return sample[0] * 2, sample[1]

    lazy = MapDataset(InMemoryDataset(x, y), fn)
    assert calls == []  # nothing computed at construction
    np.testing.assert_allclose(lazy[5][0], x[5] * 2)
    assert len(calls) == 1

    norm = T.Normalize(mean=[0.5, -0.5], std=[2.0, 4.0])
    mapped = InMemoryDataset(x, y).map(transform=norm, target_transform=T.OneHot(3))
    xb, yb = mapped.get_batch(np.arange(8))
    per_sample = [mapped[i] for i in range(8)]
    np.testing.assert_allclose(xb, np.stack([s[0] for s in per_sample]))
    np.testing.assert_allclose(xb[:, 1], (x[:, 1] + 0.5) / 4.0)
    np.testing.assert_array_equal(yb, np.eye(3)[y])
    with pytest.raises(ValueError, match="either fn"):
        MapDataset(mapped, fn, transform=norm)


def test_concat_dataset_random_access_and_batches(rng):
    parts = [InMemoryDataset(rng.normal(size=(n, 2)), np.full(n, k)) for k, n in enumerate((3, 1, 5))]
    cat = ConcatDataset(parts)
    assert len(cat) == 9 and len(parts[0] + parts[1]) == 4
    full_x = np.concatenate([p.arrays[0] for p in parts])
    idx = rng.permutation(9)[:7]
    xb, yb = cat.get_batch(idx)
    np.testing.assert_array_equal(xb, full_x[idx])
    np.testing.assert_array_equal(yb, np.array([0, 0, 0, 1, 2, 2, 2, 2, 2])[idx])
    for i in range(-9, 9):
        np.testing.assert_array_equal(cat[i][0], full_x[i])


def test_concat_of_plain_datasets_keeps_order():
    cat = ConcatDataset([[np.array(1), np.array(2)], [np.array(3)]])
    assert cat.get_batch([2, 0, 1]).tolist() == [3, 1, 2]


def test_subset_dataset(rng):
    x = rng.normal(size=(10, 2))
    sub = SubsetDataset(InMemoryDataset(x), [4, 1, 7])
    assert len(sub) == 3
    np.testing.assert_array_equal(sub[1][0], x[1])
    np.testing.assert_array_equal(sub.get_batch([2, 0])[0], x[[7, 4]])
    with pytest.raises(IndexError):
        SubsetDataset(InMemoryDataset(x), [10])


def test_train_test_split_sizes_disjoint_and_seeded():
    ds = InMemoryDataset(np.arange(103))
    train, test = train_test_split(ds, test_size=0.2, seed=7)
    assert (len(train), len(test)) == (82, 21)  # the test share is rounded up, as scikit-learn
    tr, te = _all(train)[0], _all(test)[0]
    assert set(tr).isdisjoint(te) and sorted(np.concatenate([tr, te])) == list(range(103))
    again = train_test_split(ds, test_size=0.2, seed=7)
    np.testing.assert_array_equal(_all(again[1])[0], te)
    other = train_test_split(ds, test_size=0.2, seed=8)
    assert not np.array_equal(_all(other[1])[0], te)
    tr2, te2 = train_test_split(ds, test_size=10, train_size=50, seed=0)
    assert (len(tr2), len(te2)) == (50, 10)
    unshuffled = train_test_split(ds, test_size=3, shuffle=False)
    assert _all(unshuffled[1])[0].tolist() == [100, 101, 102]


def test_stratified_split_preserves_class_proportions(rng):
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    rng.shuffle(labels)
    ds = InMemoryDataset(np.arange(1000), labels)
    train, test = train_test_split(ds, test_size=0.25, seed=3, stratify=labels)
    test_counts = np.bincount(_all(test)[1], minlength=3)
    train_counts = np.bincount(_all(train)[1], minlength=3)
    assert len(test) == 250 and test_counts.tolist() == [125, 75, 50]
    assert train_counts.tolist() == [375, 225, 150]
    # Uneven shares: per-class counts stay within one of the exact proportion and sum exactly.
    tr, te = train_test_split(ds, test_size=0.33, seed=4, stratify=labels)
    counts = np.bincount(_all(te)[1], minlength=3)
    assert counts.sum() == 330
    assert np.all(np.abs(counts - np.array([500, 300, 200]) * 0.33) <= 1)
    with pytest.raises(ValueError, match="stratify has"):
        train_test_split(ds, stratify=labels[:10])


def test_split_rejects_bad_sizes():
    ds = InMemoryDataset(np.arange(10))
    with pytest.raises(ValueError):
        train_test_split(ds, test_size=1.5)
    with pytest.raises(ValueError):
        train_test_split(ds, test_size=11)
    with pytest.raises(ValueError, match="exceeds"):
        train_test_split(ds, test_size=6, train_size=6)
