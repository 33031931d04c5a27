"""Dependencies point one way: core imports no part, a backend no other part, and backends and
plugins use only the core's public API (never an op module's internals, ``rustyasg.core.ops.*``:
what they need is declared in :mod:`rustyasg.core.backend_api`).

Checked on the source (every import statement, including those inside functions), so an
import that only runs on some code path is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(src_dir: Path, root: Path = ROOT):
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
                    yield path.relative_to(root), node.lineno, name


def _part_of(module: str) -> str:
    return module.split(".")[1]


@pytest.mark.parametrize("part, allowed", [("core", {"core"}), ("cpu", {"core", "cpu"}), ("wgpu", {"core", "wgpu"})])
def test_part_imports_only_what_it_may(part, allowed):
    found = [f"{path}:{line} imports {mod}" for path, line, mod in _imports(ROOT / f"rustyasg-{part}" / "src")
             if _part_of(mod) not in allowed]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("tree", ["rustyasg-cpu/src", "rustyasg-wgpu/src", "examples/third-party-op/src"])
def test_backends_and_plugins_use_only_the_public_core(tree):
    found = [f"{path}:{line} imports {mod}" for path, line, mod in _imports(ROOT / tree)
             if mod.startswith("rustyasg.core.") and (mod.startswith("rustyasg.core.ops") or "._" in mod)]
    assert not found, "\n".join(found)


def test_the_check_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "pkg"
    src.mkdir()
    (src / "m.py").write_text("def f():\n    from rustyasg.cpu.kernels import protocol\n")
    assert [(line, mod) for _, line, mod in _imports(src, tmp_path)] == [(2, "rustyasg.cpu.kernels")]
