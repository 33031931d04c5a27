"""The examples in the docstrings of rustyasg.onnx and of the saved-program modules run as written."""

import doctest
import importlib

import pytest

MODULES = ["rustyasg.onnx." + m for m in ("builder", "translate", "export", "backend")] + \
          ["rustyasg.onnx", "rustyasg.core.saved_program", "rustyasg.core.symbolic_program", "rustyasg.core.exporters"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
