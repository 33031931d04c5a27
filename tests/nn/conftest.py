"""Shared fixtures of the nn tests: the backend under test and seeded generators."""

import os

import numpy as np
import pytest


@pytest.fixture
def backend() -> str:
    """Backend name for compiled functions (``RUSTYASG_TEST_BACKEND``, default ``cpu``)."""
    return os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded numpy generator per test."""
    return np.random.default_rng(1234)
