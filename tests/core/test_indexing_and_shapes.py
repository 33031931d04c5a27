import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.shapes import Dim, broadcast_shapes


@pytest.mark.parametrize("key", [
    (1,), (slice(1, None),), (slice(None, None, -1),), (Ellipsis, 2), (None, slice(0, 2)),
    (slice(None), np.array([2, 0, 2])), (-1, slice(None, None, 2)), (slice(1, 3), None, slice(None, -1)),
])
def test_getitem_matches_numpy(key):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 5))
    x = rg.input((4, 5), "float64", name="x")
    np.testing.assert_array_equal(rg.evaluate(x[key], {x: a}), a[key])


def test_getitem_gradient_scatters_back():
    a = np.arange(12.0).reshape(3, 4)
    x = rg.input((3, 4), "float64", name="x")
    idx = np.array([0, 2, 2])
    (g,) = rg.grad(x[:, idx].sum() + x[1:, ::2].sum(), [x])
    expected = np.zeros((3, 4))
    np.add.at(expected, (slice(None), idx), 1.0)
    expected[1:, ::2] += 1
    np.testing.assert_array_equal(rg.evaluate(g, {x: a}), expected)


def test_bool_mask_indexing_is_refused_with_advice():
    x = rg.input((3,), name="x")
    with pytest.raises(IndexError, match="where"):
        x[x > 0]


def test_movement_helpers():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3, 4))
    x = rg.input((2, 3, 4), "float64", name="x")
    cases = {
        rg.stack([x, x], axis=1): np.stack([a, a], axis=1),
        rg.concat(*rg.split(x, [1, 3], axis=2), axis=2): a,
        rg.flatten(x, 1): a.reshape(2, 12),
        rg.unsqueeze(x, -1): a[..., None],
        rg.squeeze(rg.unsqueeze(x, 0)): a,
        x.permute(2, 0, 1): a.transpose(2, 0, 1),
        x.mT: a.swapaxes(-1, -2),
        rg.expand(x[:, :1], 2, 3, 4): np.broadcast_to(a[:, :1], (2, 3, 4)),
    }
    for t, want in cases.items():
        np.testing.assert_array_equal(rg.evaluate(t, {x: a}), want)


def test_symbolic_dims_flow_through_reshape():
    B = Dim("B")
    x = rg.input((B, 3, 4), name="x")
    y = x.reshape(B * 3, 4)
    assert y.shape == (B * 3, 4)
    z = y.reshape(-1, 3, 4)
    assert z.shape == (B, 3, 4)
    f = rg.function([x], z.sum(axis=(1, 2)), backend="reference")
    assert f(np.ones((5, 3, 4), np.float32)).shape == (5,)


def test_broadcast_shapes_rules():
    assert broadcast_shapes((3, 1), (4,)) == (3, 4)
    B = Dim("B")
    assert broadcast_shapes((B, 1), (1, 4)) == (B, 4)
    with pytest.raises(ValueError, match="do not broadcast"):
        broadcast_shapes((B, 3), (2, 3))


def test_matmul_1d_rules():
    rng = np.random.default_rng(2)
    m, v = rng.standard_normal((3, 4)), rng.standard_normal(4)
    M, V = rg.input((3, 4), "float64", name="m"), rg.input((4,), "float64", name="v")
    np.testing.assert_allclose(rg.evaluate(M @ V, {M: m, V: v}), m @ v)
    np.testing.assert_allclose(rg.evaluate(V @ V, {V: v}), v @ v)


def test_anonymous_batch_dims_unify_and_mismatch_is_caught_at_call():
    x, y = rg.input((None, 4), name="xa"), rg.input((None, 1), name="ya")
    d = (x - y).sum(axis=1)
    f = rg.function([x, y], d, backend="reference")
    assert f(np.ones((3, 4), np.float32), np.ones((3, 1), np.float32)).shape == (3,)
    with pytest.raises(rg.GraphBuildError, match="sub") as info:
        f(np.ones((3, 4), np.float32), np.ones((5, 1), np.float32))
    assert __file__ in str(info.value)


def test_differently_named_dims_do_not_broadcast():
    a, b = rg.input(("B", 4), name="a"), rg.input(("T", 4), name="b")
    with pytest.raises(rg.ShapeError, match="do not broadcast"):
        a + b
