"""Float -> integer casts of NaN, +-inf and out-of-range values: one rule on every backend.

numpy leaves them undefined and LLVM's vector code saturates; the core's rule
(``FLOAT_TO_INT_VIA``) is PyTorch's on x86: truncation toward zero, the "integer indefinite"
minimum of int32 (int32 and narrower targets, then wrapped) or of int64 (int64, uint32).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg

EDGES = np.array([300.0, -200.0, 1e10, -1e10, 255.9, -129.5, np.nan, np.inf, -np.inf, 2.0 ** 31, -2.0 ** 31,
                  2.0 ** 63, -2.0 ** 63, -0.0, 0.7, -0.7, 127.5, -128.9, 65535.2, 4294967295.0], np.float32)
VALUES = np.concatenate([EDGES, (np.random.default_rng(0).standard_normal(300) *
                                 10.0 ** np.random.default_rng(1).integers(0, 12, 300)).astype(np.float32)])
TARGETS = ["int8", "uint8", "int16", "int32", "uint32", "int64"]


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
@pytest.mark.parametrize("dtype", TARGETS)
def test_float_to_int_follows_the_core_rule_alone_and_fused(backend, dtype):
    from rustyasg.core.ops.elementwise import float_to_int

    x = rg.input(VALUES.shape, "float32", name="x")
    alone, fused = rg.function([x], [x.astype(dtype), (x * 1.0 + 0.0).astype(dtype)], backend=backend)(VALUES)
    want = float_to_int(VALUES.astype(np.float64), dtype)
    np.testing.assert_array_equal(alone, want)
    np.testing.assert_array_equal(fused, want)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_the_rule_is_pytorchs(dtype):
    from rustyasg.core.ops.elementwise import float_to_int

    np.testing.assert_array_equal(float_to_int(VALUES, dtype), torch.tensor(VALUES).to(getattr(torch, dtype)).numpy())
