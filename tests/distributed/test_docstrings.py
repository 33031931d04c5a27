"""Every example in rustyasg.distributed's docstrings runs (in one process: a world of one)."""

import doctest
import importlib
import pkgutil

import pytest

import rustyasg.distributed

MODULES = sorted(m.name for m in pkgutil.iter_modules(rustyasg.distributed.__path__, "rustyasg.distributed."))


@pytest.mark.parametrize("name", MODULES)
def test_examples_in_docstrings_pass(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_every_public_name_is_documented():
    missing = [n for n in rustyasg.distributed.__all__ if not (getattr(rustyasg.distributed, n).__doc__ or "").strip()]
    assert missing == []
