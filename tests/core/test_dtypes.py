import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core import dtypes


@pytest.mark.parametrize("a,b,expected", [
    ("float32", "float64", "float64"), ("int32", "float16", "float16"), ("int64", "int32", "int64"),
    ("bool", "int32", "int32"), ("float16", "float32", "float32"), ("bool", "bool", "bool"),
])
def test_promotion_lattice(a, b, expected):
    assert dtypes.promote_types(a, b) == np.dtype(expected)
    assert dtypes.promote_types(b, a) == np.dtype(expected)


def test_python_scalars_are_weak():
    x = rg.input((3,), "float32", name="x")
    assert (x * 2.0).dtype == np.float32
    assert (2 + x).dtype == np.float32
    assert (x ** 2).dtype == np.float32
    h = rg.input((3,), "float16", name="h")
    assert (h + 1.5).dtype == np.float16
    i = rg.input((3,), "int32", name="i")
    assert (i + 1).dtype == np.int32
    assert (i * 1.5).dtype == np.float32   # int tensor meets a float scalar: default float
    assert (i / 2).dtype == np.float32     # true division of ints is floating


def test_tensor_tensor_promotion_inserts_cast():
    a = rg.input((2,), "float32", name="a")
    b = rg.input((2,), "float64", name="b")
    c = a + b
    assert c.dtype == np.float64
    assert c.inputs[0].op == "cast"
    out = rg.function([a, b], c, backend="reference")(np.ones(2, np.float32), np.full(2, 0.25))
    assert out.dtype == np.float64 and np.allclose(out, 1.25)


def test_unsupported_dtype_is_rejected():
    with pytest.raises(TypeError, match="unsupported dtype"):
        rg.input((2,), "complex64")


def test_call_with_wrong_dtype_fails_clearly():
    x = rg.input((2,), "int32", name="idx")
    f = rg.function([x], x + 1, backend="reference")
    with pytest.raises(TypeError, match="idx"):
        f(np.array([0.5, 1.5]))
