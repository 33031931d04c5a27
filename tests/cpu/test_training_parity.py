"""Whole training steps on the cpu backend follow PyTorch's trajectory (the benchmark workloads)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.workloads import load  # noqa: E402


@pytest.mark.parametrize("name,steps,tol", [("W1", 10, 1e-5), ("W2", 5, 1e-4), ("W3", 3, 1e-4), ("W4", 2, 1e-4)])
def test_workload_losses_follow_pytorch(name, steps, tol):
    w = load(name)
    params = w.init_params(np.random.default_rng(0))
    ours, theirs = w.rustyasg_step(params, "cpu"), w.torch_step(params)
    for k in range(steps):
        batch = w.make_batch(np.random.default_rng(10 + k))
        a, b = float(ours(*batch)), theirs(*batch)
        assert abs(a - b) <= tol * max(1.0, abs(b)), (k, a, b)
