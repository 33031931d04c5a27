"""The docstring examples of every rustyasg.cpu module run (and pass) as tests."""

import doctest
import importlib
import pkgutil

import pytest

import rustyasg.cpu

MODULES = sorted({f"rustyasg.cpu.{m.name}" for m in pkgutil.walk_packages(rustyasg.cpu.__path__, "")}
                 | {f"rustyasg.cpu.kernels.{m.name}"
                    for m in pkgutil.iter_modules(importlib.import_module("rustyasg.cpu.kernels").__path__)})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
