"""``rustyasg launch`` and plain ``mpiexec`` run the example script as it is."""

import subprocess
import sys
from pathlib import Path

import pytest

from rustyasg.distributed import find_mpiexec
from rustyasg.distributed.launch import launch_command

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "distributed" / "train.py"


def test_mpiexec_is_the_one_the_mpich_wheel_put_beside_this_python():
    assert Path(find_mpiexec()).parent == Path(sys.executable).parent
    assert launch_command(["t.py", "-x"], 3) == [find_mpiexec(), "-n", "3", sys.executable, "t.py", "-x"]


@pytest.mark.slow
def test_rustyasg_launch_trains_the_example_on_two_ranks_and_resumes(tmp_path):
    cmd = [sys.executable, "-m", "rustyasg.core.cli", "launch", "-n", "2", str(EXAMPLE), "--epochs", "1",
           "--checkpoints", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-4000:]
    assert first.stdout.count("2 rank(s): val_acc=") == 1  # printed by rank 0 only
    accuracy = float(first.stdout.split("val_acc=")[1].split()[0])
    assert accuracy > 0.5
    # A second run with more epochs resumes from the checkpoint rank 0 wrote (plain mpiexec this time).
    second = subprocess.run([find_mpiexec(), "-n", "2", sys.executable, str(EXAMPLE), "--epochs", "2",
                             "--checkpoints", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "epoch 1/2" not in second.stderr and "epoch 2/2: train_loss=" in second.stderr
    assert "steps=48" in second.stdout  # 1500 samples / 64 per step = 24 steps per epoch


def test_launch_without_a_script_says_what_to_do():
    proc = subprocess.run([sys.executable, "-m", "rustyasg.core.cli", "launch", "-n", "2"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "give the script to run" in proc.stderr
