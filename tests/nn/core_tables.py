"""The core suite's shared test tables (``tests/core/torch_parity_table.py``, ...) for nn's tests.

``tests/core`` is not a package: its helper modules are loaded from their files, once per process.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys


def load_core_module(name: str):
    """The module ``tests/core/<name>.py`` (loaded on first use, then shared through ``sys.modules``)."""
    if name not in sys.modules:
        path = pathlib.Path(__file__).parent.parent / "core" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
