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
    if fault == "die":
        # mpiexec ends the job: with the dead rank's exit code, or reporting the ranks it killed.
        assert proc.returncode == 3 or message in proc.stdout + proc.stderr
    else:
        assert message in proc.stdout + proc.stderr
    assert proc.seconds < 60
    if fault == "hang":
        assert "CollectiveTimeoutError" in proc.stderr
    _assert_last_checkpoint_loads(ckpt)


def test_ctrl_c_on_mpiexec_stops_every_rank_after_the_same_step_and_saves(tmp_path):
    import signal
    import subprocess
    import sys

    from mpi_helpers import WORKERS, mpiexec

    proc = subprocess.Popen([mpiexec(), "-n", "2", sys.executable, str(WORKERS / "sigint_train.py"), tmp_path / "ckpt",
                             tmp_path / "out"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "PYTHONWARNINGS": "ignore"})
    assert proc.stdout.readline().strip() == "training"
    proc.send_signal(signal.SIGINT)  # a real Ctrl-C; mpiexec hands it to every rank
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    stops = [(tmp_path / f"out-{r}.txt").read_text().split() for r in range(2)]
    assert stops[0] == stops[1]  # the same step, interrupted, the same checkpoint
    step, interrupted, path = stops[0]
    assert interrupted == "True" and path.endswith(f"ckpt-{int(step):08d}.safetensors")
    _ = nn.read_checkpoint(path)  # complete and readable
