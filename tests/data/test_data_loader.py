import threading
import time

import numpy as np
import pytest

from rustyasg.data import DataLoader, InMemoryDataset, RandomSampler, WeightedRandomSampler, default_collate


class CountingArray(np.ndarray):
    """An ndarray that counts how often it is indexed (to prove one fancy-index per batch)."""

    gets = 0

    def __getitem__(self, key):
        type(self).gets += 1
        return np.asarray(self).__getitem__(key)


def _labels(loader):
    return [b[1].tolist() for b in loader]


def test_batches_cover_the_data_in_order_with_and_without_drop_last(rng):
    x, y = rng.normal(size=(10, 3)).astype(np.float32), np.arange(10)
    ds = InMemoryDataset(x, y)
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    assert batches[0][0].dtype == np.float32
    assert _labels(DataLoader(ds, batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2


def test_seeded_shuffle_is_reproducible_and_differs_per_epoch():
    ds = InMemoryDataset(np.arange(20))
    a = DataLoader(ds, batch_size=5, shuffle=True, seed=11)
    b = DataLoader(ds, batch_size=5, shuffle=True, seed=11)
    a0, a1 = [x[0].tolist() for x in a], [x[0].tolist() for x in a]
    assert a0 == [x[0].tolist() for x in b] and a1 == [x[0].tolist() for x in b]
    assert a0 != a1 and sorted(sum(a0, [])) == list(range(20))
    c = DataLoader(ds, batch_size=5, shuffle=True, seed=11)
    c.set_epoch(1)
    assert [x[0].tolist() for x in c] == a1
    assert [x[0].tolist() for x in DataLoader(ds, batch_size=5, shuffle=True, seed=12)] != a0


def test_fast_path_is_one_fancy_index_per_batch(rng):
    x = rng.normal(size=(100, 4)).view(CountingArray)
    y = np.arange(100).view(CountingArray)
    CountingArray.gets = 0
    loader = DataLoader(InMemoryDataset(x, y), batch_size=10, shuffle=True, seed=0)
    seen = np.concatenate([yb for _, yb in loader])
    assert sorted(seen.tolist()) == list(range(100))
    assert CountingArray.gets == 2 * 10  # 10 batches x 2 arrays, not 100 samples


def test_custom_collate_and_structured_samples():
    samples = [{"x": np.full(2, i), "name": f"s{i}"} for i in range(5)]
    batch = next(iter(DataLoader(samples, batch_size=3)))  # a list is a dataset too
    assert batch["x"].tolist() == [[0, 0], [1, 1], [2, 2]] and batch["name"] == ["s0", "s1", "s2"]

    def pad_collate(items):
        longest = max(len(s) for s in items)
        return np.stack([np.pad(s, (0, longest - len(s))) for s in items])

    ragged = [np.ones(n) for n in (1, 3, 2)]
    out = list(DataLoader(ragged, batch_size=3, collate_fn=pad_collate))
    assert out[0].tolist() == [[1, 0, 0], [1, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError, match="different shapes"):
        default_collate(ragged)


def test_explicit_samplers():
    ds = InMemoryDataset(np.arange(6))
    weighted = DataLoader(ds, batch_size=4, sampler=WeightedRandomSampler([0, 0, 1, 0, 0, 0], 8, seed=0))
    assert [b[0].tolist() for b in weighted] == [[2, 2, 2, 2], [2, 2, 2, 2]]
    by_batch = DataLoader(ds, batch_sampler=[[5, 0], [3]])
    assert [b[0].tolist() for b in by_batch] == [[5, 0], [3]]
    with pytest.raises(ValueError, match="batch_sampler excludes"):
        DataLoader(ds, batch_size=2, batch_sampler=[[0]])
    with pytest.raises(ValueError, match="not both"):
        DataLoader(ds, shuffle=True, sampler=RandomSampler(ds))


class SlowDataset:
    """Each batch takes ``delay`` seconds to load (like reading and decoding files)."""

    def __init__(self, n, delay):
        self.n, self.delay = n, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.int64(i)

    def get_batch(self, indices):
        time.sleep(self.delay)
        return np.asarray(indices)


def _timed_epoch(prefetch, n_batches, delay):
    loader = DataLoader(SlowDataset(n_batches * 2, delay), batch_size=2, prefetch=prefetch)
    start = time.perf_counter()
    got = []
    for batch in loader:
        time.sleep(delay)  # the "training step"
        got.extend(batch.tolist())
    return time.perf_counter() - start, got


def test_prefetching_overlaps_loading_with_the_step():
    n_batches, delay = 10, 0.06
    serial_time = 2 * n_batches * delay  # load + step, one after the other
    elapsed, got = _timed_epoch(prefetch=2, n_batches=n_batches, delay=delay)
    assert got == list(range(2 * n_batches))
    # Perfect overlap would be ~(n+1)*delay = 0.66 s vs 1.2 s serial; allow a lot of scheduler noise.
    assert elapsed < 0.85 * serial_time, f"no overlap: {elapsed:.2f}s vs {serial_time:.2f}s serial"
    serial_elapsed, serial_got = _timed_epoch(prefetch=0, n_batches=n_batches, delay=delay)
    assert serial_got == got and serial_elapsed >= serial_time * 0.95


def test_errors_in_the_prefetch_thread_reach_the_consumer():
    class Broken(SlowDataset):
        def get_batch(self, indices):
            if 6 in indices:
                raise RuntimeError("bad sample 6")
            return np.asarray(indices)

    loader = DataLoader(Broken(10, 0), batch_size=2)
    it = iter(loader)
    assert [next(it).tolist() for _ in range(3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(RuntimeError, match="bad sample 6"):
        next(it)


def test_breaking_out_of_the_loop_stops_the_worker():
    before = {t.ident for t in threading.enumerate()}
    loader = DataLoader(SlowDataset(1000, 0.001), batch_size=1, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    deadline = time.time() + 5
    while time.time() < deadline:
        extra = [t for t in threading.enumerate() if t.ident not in before and t.name == "rustyasg-data-prefetch"]
        if not extra:
            break
        time.sleep(0.02)
    assert not extra, "prefetch thread kept running after the consumer left"
