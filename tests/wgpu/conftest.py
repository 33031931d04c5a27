"""Fixtures for the wgpu backend tests: one device per session, fresh random inputs per test.

The tests run on whatever adapter wgpu picks (lavapipe in CI). Inputs are drawn
from a new seed each run; the seed is printed so a failure can be replayed.
"""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from rustyasg.wgpu.buffers import BufferPool, Readback
from rustyasg.wgpu.device import get_context
from rustyasg.wgpu.kernels.elementwise import ElementwisePlanner
from rustyasg.wgpu.kernels.matmul import MatmulPlanner
from rustyasg.wgpu.pipelines import PipelineCache
from rustyasg.wgpu import webgpu


@pytest.fixture(scope="session")
def ctx():
    return get_context()


@pytest.fixture(scope="session")
def pipelines(ctx):
    return PipelineCache(ctx)


@pytest.fixture(scope="session")
def planner(ctx, pipelines):
    return MatmulPlanner(ctx, pipelines, autotune=False)


@pytest.fixture(scope="session")
def ew(ctx, pipelines):
    return ElementwisePlanner(ctx, pipelines)


@pytest.fixture()
def pool(ctx):
    p = BufferPool(ctx)
    yield p
    p.trim()


@pytest.fixture(scope="session")
def readback(ctx):
    return Readback(ctx)


@pytest.fixture()
def rng():
    seed = secrets.randbits(32)
    print(f"random seed: {seed}")
    return np.random.default_rng(seed)


def rel_err(got, ref) -> float:
    """‖got − ref‖ / ‖ref‖ in float64 (NaN in ``got`` gives NaN, which fails any bound)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(got - ref) / (denom if denom else 1.0))


@pytest.fixture(scope="session")
def dawn_null():
    """A Dawn device on the Null backend: compiles shaders (Tint, which checks rules naga does not), runs nothing."""
    mp = pytest.MonkeyPatch()
    mp.setenv("WGPU_BACKEND_TYPE", "Null")  # read by wgpudawn when the adapter is requested
    try:
        adapter = webgpu.load("dawn").gpu.request_adapter_sync()
    finally:
        mp.undo()
    assert adapter.info["backend_type"] == "Null"
    features = ["shader-f16", "subgroups", webgpu.SUBGROUP_MATRIX]
    assert all(f in adapter.features for f in features)
    return adapter.request_device_sync(required_features=features)
