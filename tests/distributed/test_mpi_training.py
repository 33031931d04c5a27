"""Data parallel and ZeRO-1 on real MPI processes: equal to one process on the full batch."""

import numpy as np
import pytest

from mpi_helpers import check_ok, run_ranks
from programs import baseline

TOLERANCE = {"reference": 1e-12, "cpu": 1e-5, "wgpu": 1e-5}


def _max_difference(npz, history):
    return max(float(np.abs(npz[f"{i}/{k}"] - v).max()) for i, state in enumerate(history) for k, v in state.items())


def _train(tmp_path, kind, backend, ranks, steps, zero=0):
    out = tmp_path / f"{kind}-{backend}-{ranks}-{zero}.npz"
    check_ok(run_ranks(ranks, "dp_train.py", kind, backend, steps, out, zero))
    return np.load(out)


@pytest.mark.parametrize("kind,backend,ranks", [
    ("mlp", "reference", 2), ("mlp", "reference", 4), ("gpt", "reference", 2),
    ("mlp", "cpu", 4), ("mlp", "wgpu", 2), pytest.param("gpt", "cpu", 2, marks=pytest.mark.slow),
    pytest.param("gpt", "reference", 4, marks=pytest.mark.slow),
])
def test_data_parallel_equals_one_process_on_the_full_batch(tmp_path, kind, backend, ranks):
    steps = 3
    result = _train(tmp_path, kind, backend, ranks, steps)
    # Each rank started from different weights: the broadcast and identical updates keep them equal.
    assert result["spread"].tolist() == [0.0] * steps
    assert _max_difference(result, baseline(kind, backend, steps)) <= TOLERANCE[backend]


@pytest.mark.parametrize("kind,backend,ranks", [("mlp", "reference", 4), ("mlp", "wgpu", 2),
                                                pytest.param("gpt", "cpu", 4, marks=pytest.mark.slow)])
def test_zero1_equals_plain_data_parallel_and_shards_the_state(tmp_path, kind, backend, ranks):
    steps = 3
    plain = _train(tmp_path, kind, backend, ranks, steps, zero=0)
    zero = _train(tmp_path, kind, backend, ranks, steps, zero=1)
    assert zero["spread"].tolist() == [0.0] * steps
    keys = [k for k in plain.files if "/" in k]
    assert max(float(np.abs(plain[k] - zero[k]).max()) for k in keys) <= TOLERANCE[backend]
    per_rank, unsharded = zero["state_bytes"], int(zero["unsharded"])
    # Adam's two moments, 1/N each (plus padding to a multiple of N, and the step scalar).
    assert per_rank.shape == (ranks,) and len(set(per_rank.tolist())) == 1
    assert unsharded / ranks <= per_rank[0] <= unsharded / ranks + 2 * ranks * 8 + 8


@pytest.mark.parametrize("kind,backend,ranks", [("mlp", "reference", 2), ("gpt", "cpu", 2)])
def test_data_parallel_of_a_built_step_equals_one_process(tmp_path, kind, backend, ranks):
    steps = 2
    result = _train(tmp_path, kind, backend, ranks, steps, zero="step")
    assert result["spread"].tolist() == [0.0] * steps
    assert _max_difference(result, baseline(kind, backend, steps)) <= TOLERANCE[backend]
