"""Graph-to-graph gradients: higher order, Hessian-vector products, stop_gradient, unconnected inputs."""

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.testing import numerical_grad


def _eval(t, feed):
    return rg.evaluate(t, feed)


def test_second_derivative_of_tanh():
    rng = np.random.default_rng(0)
    xs = rng.uniform(-2, 2, size=7)
    x = rg.input((7,), "float64", name="x")
    y = rg.tanh(x).sum()
    (dx,) = rg.grad(y, [x])
    (d2x,) = rg.grad(dx.sum(), [x])
    t = np.tanh(xs)
    np.testing.assert_allclose(_eval(dx, {x: xs}), 1 - t ** 2, rtol=1e-12)
    np.testing.assert_allclose(_eval(d2x, {x: xs}), -2 * t * (1 - t ** 2), rtol=1e-10)


def test_third_derivative_of_cube():
    x = rg.input((), "float64", name="x")
    y = x * x * x
    (d1,) = rg.grad(y, [x])
    (d2,) = rg.grad(d1, [x])
    (d3,) = rg.grad(d2, [x])
    v = 1.7
    assert np.isclose(_eval(d1, {x: v}), 3 * v ** 2)
    assert np.isclose(_eval(d2, {x: v}), 6 * v)
    assert np.isclose(_eval(d3, {x: v}), 6.0)


def test_hessian_vector_product_of_mlp_loss_matches_finite_differences():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4))
    Y = rng.standard_normal((6, 2))
    w1v, w2v = rng.standard_normal((4, 5)) * 0.5, rng.standard_normal((5, 2)) * 0.5
    vec1, vec2 = rng.standard_normal((4, 5)), rng.standard_normal((5, 2))

    w1 = rg.input((4, 5), "float64", name="w1")
    w2 = rg.input((5, 2), "float64", name="w2")
    x = rg.constant(X, "float64")
    loss = rg.mean((rg.tanh(x @ w1) @ w2 - rg.constant(Y, "float64")) ** 2)
    g1, g2 = rg.grad(loss, [w1, w2])
    v1, v2 = rg.input((4, 5), "float64", name="v1"), rg.input((5, 2), "float64", name="v2")
    gv = (g1 * v1).sum() + (g2 * v2).sum()
    h1, h2 = rg.grad(gv, [w1, w2])
    hv = rg.function([w1, w2, v1, v2], [h1, h2], backend="reference")(w1v, w2v, vec1, vec2)

    grad_fn = rg.function([w1, w2], [g1, g2], backend="reference")
    eps = 1e-5
    plus = grad_fn(w1v + eps * vec1, w2v + eps * vec2)
    minus = grad_fn(w1v - eps * vec1, w2v - eps * vec2)
    for got, p, m in zip(hv, plus, minus):
        np.testing.assert_allclose(got, (p - m) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_gradient_through_broadcasting_sums_back():
    rng = np.random.default_rng(2)
    a_v, b_v = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    a, b = rg.input((3, 4), "float64", name="a"), rg.input((4,), "float64", name="b")
    ga, gb = rg.grad((a * b).sum(), [a, b])
    np.testing.assert_allclose(_eval(gb, {a: a_v, b: b_v}), a_v.sum(0))
    np.testing.assert_allclose(_eval(ga, {a: a_v, b: b_v}), np.broadcast_to(b_v, (3, 4)))


def test_stop_gradient_treats_value_as_constant():
    x = rg.input((), "float64", name="x")
    y = x * rg.stop_gradient(x)
    (g,) = rg.grad(y, [x])
    assert np.isclose(_eval(g, {x: 3.0}), 3.0)  # not 2x = 6


def test_unconnected_inputs():
    x, z = rg.input((2,), "float64", name="x"), rg.input((3,), "float64", name="z")
    y = (x * 2).sum()
    gx, gz = rg.grad(y, [x, z])
    np.testing.assert_array_equal(_eval(gz, {z: np.ones(3)}), np.zeros(3))
    assert rg.grad(y, [x, z], unconnected="none")[1] is None
    with pytest.raises(ValueError, match="does not influence"):
        rg.grad(y, [x, z], unconnected="error")


def test_integer_path_carries_no_gradient_and_argmax_is_cut():
    x = rg.input((4,), "float64", name="x")
    idx = rg.argmax(x, axis=0)
    y = (x * idx.astype("float64")).sum()
    (g,) = rg.grad(y, [x])
    xv = np.array([0.1, 0.9, 0.3, 0.2])
    np.testing.assert_allclose(_eval(g, {x: xv}), np.full(4, 1.0))


def test_non_scalar_output_needs_cotangent():
    x = rg.input((3,), "float64", name="x")
    with pytest.raises(ValueError, match="grad_y"):
        rg.grad(x * 2, [x])
    (g,) = rg.grad(x * x, [x], grad_y=rg.constant(np.array([1.0, 2.0, 3.0])).astype("float64"))
    np.testing.assert_allclose(_eval(g, {x: np.array([1.0, 1.0, 2.0])}), [2.0, 4.0, 12.0])


def test_not_differentiable_op_is_reported():
    x = rg.input((3,), "float64", name="x")
    y = rg.where(rg.logical_not(x > 0), x, -x).sum()
    rg.grad(y, [x])  # fine: the bool path is not differentiated
    seed = rg.input((), "int64", name="seed")
    with pytest.raises(TypeError):
        rg.grad(rg.argmax(x, axis=0), [x])
    assert rg.random_uniform(seed, shape=(2,)).dtype == np.float32


def test_numerical_grad_helper_is_accurate():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 2))
    cot = rng.standard_normal((3, 2))
    g = numerical_grad(lambda v: np.exp(v) * v, [a], 0, cot)
    np.testing.assert_allclose(g, cot * (np.exp(a) * (1 + a)), rtol=1e-7)
