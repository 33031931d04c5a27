"""Dependencies point one way: core imports no part, and a backend imports no other part.

Checked on the source (every import statement, including those inside functions), so an
import that only runs on some code path is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(src_dir: Path):
    """(file, line, imported module) for every absolute ``rustyasg.*`` import under ``src_dir``."""
    for path in sorted(src_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("rustyasg."):
                    yield path.relative_to(ROOT), node.lineno, name


def _part_of(module: str) -> str:
    return module.split(".")[1]


@pytest.mark.parametrize("part, allowed", [("core", {"core"}), ("cpu", {"core", "cpu"}), ("wgpu", {"core", "wgpu"})])
def test_part_imports_only_what_it_may(part, allowed):
    found = [f"{path}:{line} imports {mod}" for path, line, mod in _imports(ROOT / f"rustyasg-{part}" / "src")
             if _part_of(mod) not in allowed]
    assert not found, "\n".join(found)


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    src = tmp_path / "pkg"
    src.mkdir()
    (src / "m.py").write_text("def f():\n    from rustyasg.cpu.kernels import protocol\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert [(line, mod) for _, line, mod in _imports(src)] == [(2, "rustyasg.cpu.kernels")]
