"""Give parts that are on ``PYTHONPATH`` but not pip-installed their entry points (the GPU machine).

The lent GPU machine has no package index, so the suite puts the parts' ``src`` folders on
``PYTHONPATH`` instead of installing them. Backends and plugins are then invisible to
``importlib.metadata`` (they are found through entry points), and a test that starts a fresh
Python process finds no backend. This writes, for each named part, the two files of metadata
that make its entry points visible, ``<name>-<version>.dist-info/METADATA`` and
``entry_points.txt``, read from the part's ``pyproject.toml``, into a folder on ``sys.path``.

Usage (repo root; the folder must be on ``PYTHONPATH`` in the processes that need them)::

    python3 benchmarks/gpu/entry_points.py /tmp/site core cpu wgpu nn

Example::

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> write_entry_points(out, ["wgpu"])
    ['rustyasg_wgpu-0.1.0.dist-info']
    >>> print((out / "rustyasg_wgpu-0.1.0.dist-info" / "entry_points.txt").read_text().strip())
    [rustyasg.backends]
    wgpu = rustyasg.wgpu.backend:WgpuBackend
    <BLANKLINE>
    [rustyasg.plugins]
    wgpu = rustyasg.wgpu.plugin
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_entry_points(target: Path, parts: list[str]) -> list[str]:
    """Write the dist-info of each part (``core``, ``cpu``, ...) into ``target``; the folders' names."""
    made = []
    for part in parts:
        project = tomllib.loads((ROOT / f"rustyasg-{part}" / "pyproject.toml").read_text())["project"]
        dist = f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
        folder = target / dist
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                         f"Version: {project['version']}\n")
        groups = {**project.get("entry-points", {})}
        for table, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
            if project.get(table):  # [project.scripts] are entry points too, as pip writes them
                groups[group] = project[table]
        text = "\n".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
                         for group, entries in groups.items())
        (folder / "entry_points.txt").write_text(text)
        made.append(dist)
    return made


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("Usage")[1].split("Example")[0].strip())
    print(" ".join(write_entry_points(Path(sys.argv[1]), sys.argv[2:])))
