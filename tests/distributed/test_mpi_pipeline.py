"""GPipe stages on real MPI ranks: the same parameters as the unsplit model (and so as data parallel)."""

import numpy as np
import pytest

from mpi_helpers import check_ok, run_ranks
from programs import baseline

TOLERANCE = {"reference": 1e-12, "cpu": 1e-5}


@pytest.mark.parametrize("backend,ranks,micro", [("reference", 2, 4), ("reference", 4, 2), ("cpu", 2, 4)])
def test_pipeline_stages_equal_the_unsplit_model(tmp_path, backend, ranks, micro):
    steps = 3
    check_ok(run_ranks(ranks, "pipe_train.py", backend, steps, micro, tmp_path / "stage"))
    got, losses = {}, []
    for r in range(ranks):
        stage = np.load(tmp_path / f"stage-{r}.npz")
        got.update({k: stage[k] for k in stage.files if "/" in k})
        losses.append(stage["losses"])
    expected = baseline("mlp", backend, steps)
    assert sorted(got) == sorted(f"{i}/{k}" for i, s in enumerate(expected) for k in s)  # every layer, once
    assert max(float(np.abs(got[f"{i}/{k}"] - v).max()) for i, s in enumerate(expected) for k, v in s.items()) \
        <= TOLERANCE[backend]
    assert all(np.array_equal(losses[0], other) for other in losses)  # the last stage's loss, on every rank
