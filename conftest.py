"""Every part's docstring examples are collected as tests (pytest's doctest collector).

The source trees are in ``testpaths`` (pyproject.toml). ``rustyasg`` is a native namespace package
spread over the parts' ``src`` folders, so a source file is imported by its dotted name
(``rustyasg-core/src/rustyasg/core/graph.py`` -> ``rustyasg.core.graph``): the module the
installed part provides, never a second copy under another name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from _pytest.doctest import DoctestModule
from _pytest.main import Dir

ROOT = Path(__file__).resolve().parent


class PartDoctestModule(DoctestModule):
    """Doctests of one module of a part, imported as ``rustyasg.<part>.<module>``."""

    def _getobj(self):
        src = next(p for p in self.path.parents if p.name == "src")
        parts = list(self.path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return importlib.import_module(".".join(parts))


def _in_part_sources(path: Path) -> bool:
    rel = path.relative_to(ROOT).parts if path.is_relative_to(ROOT) else ()
    return len(rel) > 2 and rel[0].startswith("rustyasg-") and rel[1] == "src"


def pytest_collect_directory(path: Path, parent):
    # Plain folders, not pytest Packages: a Package would import its __init__.py under a wrong name.
    return Dir.from_parent(parent, path=path) if _in_part_sources(path) else None


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".py" and _in_part_sources(file_path):
        return PartDoctestModule.from_parent(parent, path=file_path)
    return None
