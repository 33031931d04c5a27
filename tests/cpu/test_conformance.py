"""Every registered op on the cpu backend: forward against the float64 reference,
gradients against finite differences (the core's conformance kit), in float32 and float64.
"""

import pytest

from rustyasg.core import OPS
from rustyasg.core.plugins import load_kernels
from rustyasg.core.testing import check_op

CHECKED = sorted(name for name, d in OPS.items() if d.examples)
LEAVES = {"input", "variable", "constant"}


def test_every_core_op_has_a_cpu_kernel():
    core_ops = {name for name, d in OPS.items() if d.plugin == "rustyasg.core"}
    missing = sorted(core_ops - set(load_kernels("cpu")) - LEAVES)
    assert missing == []
    assert len(core_ops) > 80


@pytest.mark.parametrize("op", CHECKED)
def test_op_float32(op):
    check_op(op, backend="cpu", dtype="float32", seed=3)


@pytest.mark.parametrize("op", CHECKED)
def test_op_float64(op):
    check_op(op, backend="cpu", dtype="float64", seed=4)
