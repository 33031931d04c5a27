"""The docstring examples of the wgpu part run (those that need no GPU setup of their own)."""

import doctest
import importlib

import pytest

MODULES = ["api", "ew_ops", "movement_ops", "reduce_ops", "linalg_ops", "random_ops", "elementwise"]
MODULES = [f"rustyasg.wgpu.kernels.{m}" for m in MODULES] + [
    f"rustyasg.wgpu.{m}" for m in ("fusion", "buffers", "passes", "pipelines", "handles", "memory", "compiler",
                                   "executable", "backend", "plugin")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
