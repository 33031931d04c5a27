"""The conformance kit over every registered op on the wgpu backend (float32, and float16
where the adapter grants shader-f16), with the kit's own tolerances.

WGSL has no float64: the wgpu backend computes float64 in float32 (see
``rustyasg.wgpu.kernels.api``), so examples whose attributes ask for a float64 result
(``one_hot``, ``random_*``, ``dim_size``) are checked with that attribute set to the
dtype under test, i.e. at that dtype's tolerance.
"""

import zlib
from dataclasses import replace

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.plugins import load_kernels
from rustyasg.core.testing import check_op, sample_input
from rustyasg.wgpu.device import get_context

# Snapshot at collection: tests elsewhere register throw-away plugin ops while they run.
CORE_OPS = set(rg.OPS)
CHECKED = sorted(name for name, d in rg.OPS.items() if d.examples)
LEAVES = {"input", "variable", "constant"}


def _exact_in(dtype, spec):
    """The kit's draw for ``spec``, rounded to values ``dtype`` holds exactly."""
    plain = replace(spec, generator=None)
    return lambda rng: sample_input(plain, rng).astype(dtype).astype(np.float64)


def examples_in(op, dtype):
    """The op's examples with float dtype attributes set to ``dtype``.

    In float16 the float operands are drawn as the kit draws them, then rounded to float16
    values: the float64 reference and the backend then see the same numbers. (Rounding
    a float64 sample to float16 moves it by up to 1e-3, enough to cross a floor, a rounding
    tie or a comparison that the reference, fed the unrounded sample, does not cross.)
    """
    out = []
    for ex in rg.OPS[op].examples:
        attrs = {k: (np.dtype(dtype) if isinstance(v, np.dtype) and v.kind == "f" else v) for k, v in ex.attrs.items()}
        inputs = ex.inputs
        if np.dtype(dtype) == np.float16:
            inputs = tuple(replace(spec, generator=_exact_in(np.float16, spec))
                           if spec.generator is None and np.dtype(spec.dtype).kind == "f" else spec
                           for spec in inputs)
        out.append(replace(ex, attrs=attrs, inputs=inputs))
    return out


def test_every_op_has_a_wgpu_kernel():
    missing = sorted(CORE_OPS - set(load_kernels("wgpu")) - LEAVES)
    assert not missing, f"ops without a wgpu kernel: {missing}"


@pytest.mark.parametrize("op", CHECKED)
def test_op_conforms_float32(op):
    seed = zlib.crc32(op.encode())  # random inputs, the same on every run
    check_op(op, backend="wgpu", dtype="float32", examples=examples_in(op, "float32"), seed=seed)


@pytest.mark.parametrize("op", CHECKED)
def test_op_conforms_float16(op):
    if not get_context().has("shader-f16"):
        pytest.fail("this adapter lacks shader-f16; the float16 half of the kit cannot run here")
    seed = zlib.crc32(op.encode())  # random inputs, the same on every run
    check_op(op, backend="wgpu", dtype="float16", examples=examples_in(op, "float16"), seed=seed)
