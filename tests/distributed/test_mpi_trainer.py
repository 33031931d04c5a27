"""Trainer(distributed=...) on real MPI ranks: equal to one process, resumable, and failing fast."""

import numpy as np
import pytest

import rustyasg.nn as nn
from mpi_helpers import check_ok, run_ranks
from programs import DTYPES, make_model, trainer_baseline


def _params_difference(npz, expected):
    return max(float(np.abs(npz["param/" + k] - v).max()) for k, v in expected.items())


@pytest.mark.parametrize("ranks,zero", [(2, 0), (4, 1)])
def test_trainer_distributed_equals_one_process(tmp_path, ranks, zero):
    out = tmp_path / "out.npz"
    proc = run_ranks(ranks, "trainer_train.py", "reference", 2, tmp_path / "ckpt", out, zero)
    check_ok(proc)
    result = np.load(out)
    assert float(result["spread"]) == 0.0
    assert int(result["global_step"]) == 12  # 48 samples / global batch 8, two epochs
    assert _params_difference(result, trainer_baseline("reference", 2)) <= 1e-12
    # Only rank 0 shows the progress bar and the epoch lines.
    assert proc.stderr.count("epoch 2/2: train_loss=") == 1


def test_trainer_resumes_a_zero1_checkpoint_on_another_number_of_ranks(tmp_path):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    check_ok(run_ranks(4, "trainer_train.py", "reference", 1, ckpt, out, 1))
    assert [p.name for p in sorted(ckpt.iterdir())] == ["ckpt-00000006.safetensors"]
    check_ok(run_ranks(2, "trainer_train.py", "reference", 2, ckpt, out, 1))
    assert _params_difference(np.load(out), trainer_baseline("reference", 2)) <= 1e-12


def _assert_last_checkpoint_loads(ckpt):
    manager = nn.CheckpointManager(ckpt)
    assert manager.latest_step == 6  # written at the end of epoch 1, before the fault in epoch 2
    model = make_model("mlp", DTYPES["reference"])
    restored = manager.restore_latest(model=model)
    assert restored is not None and np.isfinite(model.state_dict()["0.weight"]).all()


@pytest.mark.parametrize("fault,message", [
    ("hang", "got no answer from the other ranks within 5 s"),
    ("raise", "injected failure on rank 1 at step 8"),
    ("die", "BAD TERMINATION"),
])
def test_a_rank_that_dies_or_hangs_fails_the_job_fast(tmp_path, fault, message):
    ckpt = tmp_path / "ckpt"
    proc = run_ranks(4, "trainer_train.py", "reference", 3, ckpt, tmp_path / "out.npz", 0, fault, 1, 8,
                     timeout=120, env={"WORKER_TIMEOUT": "5"})
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert proc.seconds < 60
    if fault == "hang":
        assert "CollectiveTimeoutError" in proc.stderr
    _assert_last_checkpoint_loads(ckpt)
