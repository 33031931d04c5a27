"""A real `rustyasg serve` process on loopback, for the server tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn


class ServerProcess:
    """`rustyasg serve MODEL --port 0 ARGS...`; ``url`` once it printed its address."""

    def __init__(self, model: Path, *args: str):
        cli = Path(sys.executable).with_name("rustyasg")
        self.proc = subprocess.Popen([str(cli), "serve", str(model), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.proc.stderr.read()}")
        self.url = match.group(0).rstrip("/")

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM, then wait; True when it exited cleanly (uvicorn drains, then re-raises the signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout) in (0, -signal.SIGTERM)


def save_mlp(path: Path, seed: int = 0):
    """A small classifier saved as a program; returns (path, the direct cpu function)."""
    nn.init.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 5), nn.Softmax(dim=-1))
    model.eval()
    x = rg.input((None, 16), "float32", name="x")
    fn = rg.function([x], model(x), backend="cpu")
    fn.save(path)
    return path, fn


@pytest.fixture(scope="module")
def mlp_program(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlp")
    path, fn = save_mlp(folder / "mlp.rgp")
    return folder, fn


@pytest.fixture(scope="module")
def server(mlp_program):
    folder, _ = mlp_program
    srv = ServerProcess(folder, "--max-batch", "16", "--max-latency-ms", "5", "--max-request-bytes", "200000")
    yield srv
    assert srv.stop()


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)
