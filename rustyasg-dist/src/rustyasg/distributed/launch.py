"""``rustyasg launch -n 4 train.py [args]``: ``mpiexec -n 4 <this python> train.py [args]``.

A thin wrapper: it finds the ``mpiexec`` that the ``mpich`` wheel installed next to this
Python (so no system MPI is needed), else the first on ``PATH``, and runs the script with
the same interpreter on every rank. ``mpiexec -n 4 python train.py`` does the same.

Example:
    >>> launch_command(["train.py", "--epochs", "2"], 4)[1:3]
    ['-n', '4']
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List, Optional, Sequence

from .communicator import DistributedError


def find_mpiexec() -> str:
    """Path of ``mpiexec``: ``$RUSTYASG_MPIEXEC`` if set, else the one beside ``sys.executable`` (the
    mpich wheel's), else the first on ``PATH``."""
    chosen = os.environ.get("RUSTYASG_MPIEXEC")
    if chosen:
        return chosen
    here = os.path.dirname(sys.executable)
    found = shutil.which("mpiexec", path=here) or shutil.which("mpiexec")
    if found is None:
        raise DistributedError("no mpiexec found next to this Python or on PATH; install MPI with: pip install mpich")
    return found


def launch_command(script_and_args: Sequence[str], n: int, mpiexec: Optional[str] = None) -> List[str]:
    """The command line that runs ``script_and_args`` on ``n`` ranks."""
    if int(n) < 1:
        raise DistributedError(f"launch needs at least one rank, got -n {n}")
    return [mpiexec or find_mpiexec(), "-n", str(int(n)), sys.executable, *script_and_args]


def launch(script_and_args: Sequence[str], n: int, timeout: Optional[float] = None) -> int:
    """Run the script on ``n`` ranks and return mpiexec's exit code (``timeout`` in seconds)."""
    try:
        return subprocess.run(launch_command(script_and_args, n), timeout=timeout).returncode
    except KeyboardInterrupt:  # mpiexec forwards the signal to the ranks and reaps them
        return 130


def _cmd_launch(args) -> int:
    if not args.script:
        print("rustyasg launch: give the script to run, e.g. rustyasg launch -n 4 train.py", file=sys.stderr)
        return 2
    return launch(args.script, args.n)


def add_command(subparsers) -> None:
    """Register ``rustyasg launch``."""
    import argparse

    p = subparsers.add_parser("launch", help="run a training script on N MPI ranks (mpiexec from the mpich wheel)")
    p.add_argument("-n", "--np", dest="n", type=int, default=2, help="number of ranks (processes)")
    p.add_argument("script", nargs=argparse.REMAINDER, help="the script and its arguments")
    p.set_defaults(handler=_cmd_launch)
