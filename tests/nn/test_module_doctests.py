"""The examples in the docstrings of the layers, attention, positional encodings and model zoo run as written."""

import doctest
import importlib

import pytest

MODULES = ["rustyasg.nn." + m for m in ("_checks", "activations", "attention", "containers", "conv", "dropout",
                                        "embedding", "init", "linear", "module", "normalization", "pooling",
                                        "positional", "transformer", "functional", "zoo", "zoo.mlp", "zoo.lenet",
                                        "zoo.resnet", "zoo.gpt", "zoo.vit", "zoo.bert", "zoo.llama",
                                        "zoo.checkpoint_names", "kv_cache", "generation", "hub", "name_mapping",
                                        "torch_checkpoint", "convert", "plugin", "pretrained", "pretrained.bert",
                                        "pretrained.gpt2", "pretrained.llama", "pretrained.vit", "bfloat16")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
