"""``benchmarks/gpu/entry_points.py`` gives parts on PYTHONPATH the entry points pip would install.

The GPU machine runs the wgpu tests from the source folders (no package index there); a test that
starts a fresh Python finds backends and plugins only through these files.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = sorted(p.name.removeprefix("rustyasg-") for p in ROOT.glob("rustyasg-*") if (p / "pyproject.toml").exists())


def _load():
    spec = importlib.util.spec_from_file_location("gpu_entry_points", ROOT / "benchmarks" / "gpu" / "entry_points.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("part", PARTS)
def test_written_entry_points_equal_the_installed_distributions(part, tmp_path):
    (dist,) = _load().write_entry_points(tmp_path, [part])
    written = importlib.metadata.PathDistribution(tmp_path / dist)
    installed = importlib.metadata.distribution(f"rustyasg-{part}")
    assert written.metadata["Name"] == installed.metadata["Name"]
    assert written.version == installed.version
    assert ({(e.group, e.name, e.value) for e in written.entry_points}
            == {(e.group, e.name, e.value) for e in installed.entry_points})


def test_the_script_says_how_to_call_it_when_called_without_parts():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu" / "entry_points.py")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "entry_points.py /tmp/site core cpu wgpu nn" in out.stderr
