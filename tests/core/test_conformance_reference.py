"""Every registered op, on the reference backend, against its float64 reference and finite differences."""

import pytest

from rustyasg.core import OPS
from rustyasg.core.testing import check_op, ops_without_examples

# Snapshot at collection: other tests register throw-away plugin ops while they run.
REGISTERED = set(OPS)
CHECKED = sorted(name for name, d in OPS.items() if d.examples)


def test_every_non_leaf_op_has_conformance_examples():
    assert [op for op in ops_without_examples() if op in REGISTERED] == []
    assert len(CHECKED) > 60


@pytest.mark.parametrize("op", CHECKED)
def test_op_float64(op):
    check_op(op, backend="reference", dtype="float64")


@pytest.mark.parametrize("op", CHECKED)
def test_op_float32(op):
    check_op(op, backend="reference", dtype="float32", seed=1)


def test_kit_detects_a_wrong_gradient_rule(monkeypatch):
    import rustyasg.core as rg

    monkeypatch.setattr(OPS["sin"], "grad", lambda g, y, x: (g * rg.sin(x),))
    with pytest.raises(AssertionError, match="gradient"):
        check_op("sin", backend="reference", dtype="float64")


def test_kit_detects_a_wrong_forward(monkeypatch):
    import numpy as np

    monkeypatch.setattr(OPS["tanh"], "reference", lambda x: np.tanh(x) * (1 + 1e-3))
    from rustyasg.core.reference import ReferenceBackend

    # The reference backend uses the same (patched) function, so compare against the true one.
    from rustyasg.core.testing import _assert_close

    with pytest.raises(AssertionError, match="mismatch"):
        _assert_close("tanh", OPS["tanh"].reference(np.array([0.5])), np.tanh(np.array([0.5])), 1e-7, 1e-9)
    assert ReferenceBackend.name == "reference"
