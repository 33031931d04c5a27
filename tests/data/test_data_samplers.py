import numpy as np
import pytest

from rustyasg.data import BatchSampler, RandomSampler, SequentialSampler, WeightedRandomSampler


def test_sequential():
    assert list(SequentialSampler(4)) == [0, 1, 2, 3]
    assert len(SequentialSampler([0] * 7)) == 7


def test_random_without_replacement_is_a_seeded_permutation_per_epoch():
    s = RandomSampler(50, seed=1)
    e0, e1 = list(s), list(s)
    assert sorted(e0) == sorted(e1) == list(range(50))
    assert e0 != e1  # each epoch reshuffles
    t = RandomSampler(50, seed=1)
    assert list(t) == e0 and list(t) == e1  # same seed, same epochs
    t.set_epoch(1)
    assert list(t) == e1  # resuming at epoch 1 replays it exactly
    longer = list(RandomSampler(5, num_samples=12, seed=0))
    assert len(longer) == 12 and sorted(longer[:5]) == list(range(5)) and sorted(longer[5:10]) == list(range(5))


def test_random_with_replacement_is_uniform():
    draws = RandomSampler(4, replacement=True, num_samples=40_000, seed=2).epoch_indices()
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, 0.25, atol=0.01)


def test_weighted_sampler_follows_the_weights():
    w = np.array([1.0, 2.0, 0.0, 7.0])
    draws = WeightedRandomSampler(w, num_samples=50_000, seed=3).epoch_indices()
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / len(draws), w / w.sum(), atol=0.01)
    assert not np.any(draws == 2)
    unique = WeightedRandomSampler(w, num_samples=3, replacement=False, seed=0).epoch_indices()
    assert sorted(unique.tolist()) == [0, 1, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(w, num_samples=4, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)


def test_batch_sampler():
    batches = list(BatchSampler(SequentialSampler(7), 3))
    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(SequentialSampler(7), 3)) == 3
    assert len(BatchSampler(SequentialSampler(7), 3, drop_last=True)) == 2
    assert [b.tolist() for b in BatchSampler(range(4), 2)] == [[0, 1], [2, 3]]  # any iterable works
    flat = np.concatenate(list(BatchSampler(RandomSampler(10, seed=0), 4)))
    assert sorted(flat.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0)
