"""Running worker scripts on real MPI ranks (the mpich wheel's mpiexec) from the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

WORKERS = Path(__file__).resolve().parent / "workers"


def mpiexec() -> str:
    from rustyasg.distributed import find_mpiexec

    return find_mpiexec()


def run_ranks(n: int, worker: str, *args, timeout: float = 180.0, env=None) -> subprocess.CompletedProcess:
    """``mpiexec -n n python workers/<worker> args...``; raises if it outlives ``timeout``."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    cmd = [mpiexec(), "-n", str(n), sys.executable, str(WORKERS / worker), *map(str, args)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    proc.seconds = time.monotonic() - start
    return proc


def check_ok(proc) -> None:
    assert proc.returncode == 0, f"ranks failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
