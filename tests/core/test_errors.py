"""Mistakes fail while the graph is built, naming the op, the shapes and this file's line."""

import inspect

import numpy as np
import pytest

import rustyasg.core as rg


def _line() -> int:
    return inspect.currentframe().f_back.f_lineno


def test_broadcast_mismatch_names_op_shapes_and_line():
    a = rg.input((3, 4), name="a")
    b = rg.input((5,), name="b")
    with pytest.raises(rg.ShapeError) as info:
        line = _line(); a + b  # noqa: E702
    msg = str(info.value)
    assert "add" in msg and "(3, 4)" in msg and "(5,)" in msg
    assert f"{__file__}:{line}" in msg
    assert info.value.source == f"{__file__}:{line}"


def test_matmul_inner_dimension_error():
    a, b = rg.input((2, 3), name="a"), rg.input((4, 5), name="b")
    with pytest.raises(rg.ShapeError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\)"):
        a @ b


def test_reshape_size_error():
    x = rg.input((2, 3), name="x")
    with pytest.raises(rg.ShapeError, match="cannot reshape"):
        x.reshape(4, 2)


def test_dtype_error_is_a_type_error():
    c = rg.input((3,), "float32", name="c")
    with pytest.raises(rg.DTypeError, match="condition must be bool"):
        rg.where(c, c, c)
    with pytest.raises(TypeError):
        rg.where(c, c, c)


def test_unknown_attribute_is_rejected():
    x = rg.input((3,), name="x")
    with pytest.raises(rg.GraphBuildError, match="unknown attribute"):
        rg.apply("softmax", x, dim=0)


def test_symbolic_mismatch_found_when_called():
    x = rg.input(("B", 3), name="x")
    y = rg.input(("B", 3), name="y")
    f = rg.function([x, y], x + y, backend="reference")
    with pytest.raises(ValueError, match="dimension B is 4 elsewhere but 5 here"):
        f(np.zeros((4, 3), np.float32), np.zeros((5, 3), np.float32))


def test_missing_input_names_it():
    x = rg.input((2,), name="x")
    y = rg.input((2,), name="forgotten")
    f = rg.function([x], x + y, backend="reference")
    with pytest.raises(rg.GraphBuildError, match="forgotten"):
        f(np.zeros(2, np.float32))


def test_tensor_has_no_truth_value():
    x = rg.input((2,), name="x")
    with pytest.raises(TypeError, match="truth value"):
        if x > 0:
            pass
