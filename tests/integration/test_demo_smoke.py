"""The README's demo (examples/mnist_cnn.py) on a small subset of the real MNIST, in a subprocess:
it trains, prints a test accuracy, and writes the PNG curve and a loadable checkpoint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from rustyasg.nn.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_demo_trains_on_a_subset_and_writes_curve_and_checkpoint(tmp_path):
    backend = os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")
    out_dir = tmp_path / "mnist"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "mnist_cnn.py"), "--limit", "2000",
                           "--epochs", "1", "--backend", backend, "--out", str(out_dir), "--progress", "lines"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout

    assert "MNIST: 2000 training and 2000 test images" in out
    acc = re.search(r"test accuracy: ([\d.]+)% \(2000 images\)", out)
    assert acc, out
    assert 30.0 < float(acc.group(1)) <= 100.0  # 15 steps already beat chance (10%) by far
    # the step compiled while the data loaded; what its first step still waited is the compile figure
    assert re.search(r"training time: [\d.]+ s for 1 epoch\(s\) \(compile [\d.]+ s, after [\d.]+ s in the "
                     r"background while the data loaded", out), out
    assert "epoch 1/1: 15/15 loss=" in proc.stderr  # the progress line
    assert "test_accuracy=" in proc.stderr + out and "val_" not in proc.stderr + out  # evaluated on the test set

    curve = Path(re.search(r"training curve: (\S+)", out).group(1))
    assert curve == out_dir / "curves.png" and curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt_path = Path(re.search(r"checkpoint: (\S+)", out).group(1))
    assert ckpt_path.parent == out_dir / "checkpoints"
    ckpt = read_checkpoint(ckpt_path)
    assert ckpt.step == 15 and ckpt.metadata["rustyasg.trainer"]["epoch"] == 1
    assert ckpt.model["0.weight"].shape == (16, 1, 5, 5) and "1.running_mean" in ckpt.model
    assert (out_dir / "metrics.csv").read_text().startswith("step,")
