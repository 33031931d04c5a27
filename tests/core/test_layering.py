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


def _module_graph(package_dir: Path, package: str):
    """Edges module -> module inside one package, from every import statement (lazy ones too)."""
    graph = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).with_suffix("")
        parts = list(rel.parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        name = ".".join([package] + parts)
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_init else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"  # a module or subpackage, else a name in target
                    path = package_dir / Path(*full.split(".")[len(package.split(".")):])
                    edges.add(full if path.with_suffix(".py").exists() or (path / "__init__.py").exists() else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
    return {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("part", ["core", "cpu", "wgpu"])
def test_no_import_circles(part):
    """No module needs one that needs it (imports inside functions included): in the backends, kernel
    protocols are data and dispatch lives in one place; in the core, the saved-program format knows
    nothing of functions and a watched step is made by the step's own class."""
    graph = _module_graph(ROOT / f"rustyasg-{part}" / "src" / "rustyasg" / part, f"rustyasg.{part}")
    assert _cycles(graph) == []


def test_the_module_graph_sees_subpackages(tmp_path):
    """``from . import ops`` (a folder) is an edge to that subpackage, not to the package itself."""
    pkg = tmp_path / "pkg"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import api\n")
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "api.py").write_text("from . import ops\n")
    assert _module_graph(pkg, "pkg") == {"pkg": {"pkg.api"}, "pkg.api": {"pkg.ops"}, "pkg.ops": set()}


def test_the_circle_check_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
