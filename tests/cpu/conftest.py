"""Shared helpers of the cpu backend tests."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def run_both(inputs, outputs, arrays, updates=None, **kw):
    """Compile the same graph with and without fusion; return both results."""
    fused = rg.function(inputs, outputs, updates=updates, backend="cpu", **kw)
    plain = rg.function(inputs, outputs, updates=updates, backend="cpu", disabled_passes=("cpu_fusion",), **kw)
    return fused, plain, fused(*arrays), plain(*arrays)
