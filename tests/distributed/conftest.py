"""Helpers of these tests import as top-level modules; the scripts under workers/ run as MPI ranks
(under mpiexec), never as test modules."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # programs.py, mpi_helpers.py

collect_ignore_glob = ["workers/*.py"]
