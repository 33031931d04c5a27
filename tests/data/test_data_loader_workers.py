"""DataLoader(num_workers=N): real worker processes, shared memory, order, seeds, errors, Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rustyasg.data import DataLoader, InMemoryDataset
from rustyasg.data.transforms import RandomNoise
from rustyasg.data.workers import WorkerError, get_worker_info

HERE = Path(__file__).resolve().parent


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, dict):
            assert sorted(x) == sorted(y)
            for k in x:
                np.testing.assert_array_equal(x[k], y[k])
        else:
            for u, v in zip(x, y):
                assert u.dtype == v.dtype
                np.testing.assert_array_equal(u, v)


def _epochs(loader, n):
    out = []
    for e in range(n):
        loader.set_epoch(e)
        out.append(list(loader))
    return out


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_batches_of_num_workers_0(workers):
    rng = np.random.default_rng(0)
    ds = InMemoryDataset(rng.standard_normal((101, 3, 4)).astype(np.float32), rng.integers(0, 9, 101))
    make = lambda n: DataLoader(ds, batch_size=8, shuffle=True, seed=5, num_workers=n)  # noqa: E731
    for plain, parallel in zip(_epochs(make(0), 2), _epochs(make(workers), 2)):
        _same(plain, parallel)


class _Records:
    """No get_batch: samples are dicts collated one by one (the default_collate path)."""

    def __len__(self):
        return 23

    def __getitem__(self, i):
        return {"x": np.full(2, i, np.int64), "w": np.float64(i) / 2}


def test_collated_dict_samples_and_a_short_last_batch():
    plain = list(DataLoader(_Records(), batch_size=5))
    parallel = list(DataLoader(_Records(), batch_size=5, num_workers=2))
    _same(plain, parallel)
    assert parallel[-1]["x"].shape == (3, 2)


class _Noisy:
    def __init__(self):
        self.noise = RandomNoise(std=1.0, seed=0)

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return self.noise(np.zeros(3)), np.int64(i)


def test_random_augmentation_is_seeded_per_batch_whatever_the_worker_count():
    runs = [list(DataLoader(_Noisy(), batch_size=3, seed=1, num_workers=n)) for n in (1, 3, 3)]
    _same(runs[0], runs[1])
    _same(runs[1], runs[2])
    first_rows = [b[0][0].tolist() for b in runs[1]]
    assert len({tuple(r) for r in first_rows}) == len(first_rows)  # forked workers never repeat draws
    other_seed = list(DataLoader(_Noisy(), batch_size=3, seed=2, num_workers=3))
    assert not np.array_equal(other_seed[0][0], runs[0][0][0])


class _FailsAt:
    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == 13:
            decode_broken_record(i)
        return np.float32(i), np.int64(i)


def decode_broken_record(i):
    raise ValueError(f"record {i} is corrupt")


def test_a_worker_exception_is_raised_in_the_main_process_with_its_traceback():
    seen = []
    with pytest.raises(WorkerError) as info:
        for batch in DataLoader(_FailsAt(), batch_size=4, num_workers=2):
            seen.append(batch[1].tolist())
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]  # every batch before the bad one, in order
    text = str(info.value)
    assert "batch 3" in text and "decode_broken_record" in text and "record 13 is corrupt" in text
    assert isinstance(info.value.__cause__, ValueError)


class _Exits:
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            os._exit(7)
        return np.float32(i)


def test_a_worker_that_dies_is_reported_not_waited_for():
    with pytest.raises(WorkerError, match="exited unexpectedly with code 7"):
        list(DataLoader(_Exits(), batch_size=2, num_workers=2))


class _WhoAmI:
    def __len__(self):
        return 6

    def __getitem__(self, i):
        info = get_worker_info()
        return np.array([info.id, info.num_workers, int(os.environ.get("INIT_MARK", "-1"))])


def test_worker_init_fn_and_worker_info():
    batches = list(DataLoader(_WhoAmI(), batch_size=1, num_workers=2,
                              worker_init_fn=lambda w: os.environ.__setitem__("INIT_MARK", str(10 + w))))
    assert [b[0].tolist() for b in batches] == [[i % 2, 2, 10 + i % 2] for i in range(6)]
    assert get_worker_info() is None


def _children_alive(pids):
    return [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]


def test_breaking_out_of_the_loop_stops_the_workers():
    import multiprocessing

    loader = DataLoader(InMemoryDataset(np.arange(400.0)), batch_size=4, num_workers=2)
    it = iter(loader)
    next(it)
    pids = [c.pid for c in multiprocessing.active_children()]
    assert len(pids) >= 2
    it.close()
    assert _children_alive(pids) == []


def test_ctrl_c_stops_the_workers_and_frees_shared_memory():
    script = HERE / "workers" / "slow_loader.py"
    earlier = set(os.listdir("/dev/shm"))  # blocks of other processes are not this test's business
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the script prints its workers' pids once batches flow
    assert line.startswith("workers"), proc.stderr.read()
    pids = [int(p) for p in line.split()[1:]]
    time.sleep(0.3)
    in_flight = {n for n in set(os.listdir("/dev/shm")) - earlier if n.startswith("rgdl_")}  # batches in the pipe
    proc.send_signal(signal.SIGINT)  # a real Ctrl-C
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "KeyboardInterrupt in the main loop" in err
    assert "Traceback" not in err  # the workers ignore SIGINT: no tracebacks from them
    deadline = time.monotonic() + 5
    while _children_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _children_alive(pids) == []
    left = {n for n in os.listdir("/dev/shm") if n.startswith("rgdl_")}
    assert in_flight and not (left & in_flight)
