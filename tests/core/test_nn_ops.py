"""The core's neural-network ops: conformance kit, PyTorch parity (forward, gradient, double backward), errors.

Every comparison uses random float64 data; PyTorch (``torch.nn.functional`` on float64
tensors) is the independent oracle, the kit checks the gradient rules against finite
differences of the numpy references.
"""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rustyasg.core as rg
from rustyasg.core.testing import check_op

NN_OPS = sorted(name for name, d in rg.OPS.items() if d.kind == "nn")


def test_nn_ops_are_registered():
    assert {"conv2d", "conv2d_backward_input", "conv2d_backward_weight", "max_pool2d", "max_pool2d_indices",
            "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d",
            "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_indices",
            "adaptive_max_pool2d_backward"} <= set(NN_OPS)


def _line() -> int:
    return inspect.currentframe().f_back.f_lineno


@pytest.mark.parametrize("op", NN_OPS)
def test_conformance_float64(op):
    check_op(op, backend="reference", dtype="float64", seed=3)


# --- parity helpers ------------------------------------------------------------------------
def _ours(build, arrays, cot, wrt):
    """Forward and gradients (w.r.t. ``arrays[i]`` for i in ``wrt``) of ``build`` on the reference backend."""
    ins = [rg.input(a.shape, a.dtype.name, name=f"a{i}") for i, a in enumerate(arrays)]
    out = build(*ins)
    c = rg.input(out.shape, "float64", name="cot")
    grads = rg.grad(out, [ins[i] for i in wrt], grad_y=c)
    got = rg.function(ins + [c], [out] + grads, backend="reference")(*arrays, cot)
    return got[0], got[1:]


def _theirs(fn, arrays, cot, wrt):
    ts = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = fn(*ts)
    grads = torch.autograd.grad(out, [ts[i] for i in wrt], torch.tensor(cot))
    return out.detach().numpy(), [g.numpy() for g in grads]


def assert_parity(build, fn, arrays, rng, wrt=None):
    """Forward and vector-Jacobian products of ``build`` (ours) and ``fn`` (torch) agree."""
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else wrt
    ts_out = fn(*[torch.tensor(a) for a in arrays]).numpy()
    cot = rng.standard_normal(ts_out.shape)
    expected, expected_grads = _theirs(fn, arrays, cot, wrt)
    got, got_grads = _ours(build, arrays, cot, wrt)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    for g, e in zip(got_grads, expected_grads):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-10)


def assert_double_backward_parity(build, fn, arrays, rng):
    """Gradients of ``<grad(f), v>`` (second order, through the backward ops) agree with torch."""
    n = len(arrays)
    out_shape = fn(*[torch.tensor(a) for a in arrays]).shape
    cot = rng.standard_normal(tuple(out_shape))
    vs = [rng.standard_normal(a.shape) for a in arrays]

    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tc = torch.tensor(cot, requires_grad=True)
    first = torch.autograd.grad(fn(*ts), ts, tc, create_graph=True)
    inner = sum((g * torch.tensor(v)).sum() for g, v in zip(first, vs))
    wrt = ts + [tc]
    expected = [np.zeros(t.shape) if g is None else g.numpy()  # None: unused (linear in that input)
                for t, g in zip(wrt, torch.autograd.grad(inner, wrt, allow_unused=True))]

    ins = [rg.input(a.shape, "float64", name=f"a{i}") for i, a in enumerate(arrays)]
    c = rg.input(cot.shape, "float64", name="cot")
    first = rg.grad(build(*ins), ins, grad_y=c)
    inner = rg.sum(first[0] * rg.constant(vs[0]))
    for g, v in zip(first[1:], vs[1:]):
        inner = inner + rg.sum(g * rg.constant(v))
    second = rg.grad(inner, ins + [c])
    got = rg.function(ins + [c], second, backend="reference")(*arrays, cot)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-9, err_msg=f"second-order gradient {i} of {n + 1}")


def _expect_error(build, *fragments, cls=rg.GraphBuildError):
    """``build()`` raises ``cls`` whose message has every fragment and a ``file:line`` in this file."""
    with pytest.raises(cls) as info:
        build()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    assert info.value.source.startswith(__file__ + ":"), info.value.source
    return info.value


# --- convolution ----------------------------------------------------------------------------
CONV_CASES = [  # N, C, H, W, O, kernel, stride, padding, dilation, groups
    (2, 4, 9, 8, 6, (3, 2), (2, 1), (1, 2), (1, 2), 2),
    (1, 3, 6, 6, 3, 3, 1, 1, 1, 3),
    (2, 2, 5, 7, 4, 2, 3, 0, 1, 1),
    (3, 6, 7, 7, 4, (1, 3), 2, (0, 1), 3, 2),
]


def _pair(v):
    return (v, v) if isinstance(v, int) else v


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case):
    n, c, h, w, o, k, s, p, d, g = case
    rng = np.random.default_rng(CONV_CASES.index(case))
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c // g) + _pair(k))]
    assert_parity(lambda x, wt: rg.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g),
                  lambda x, wt: F.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g), arrays, rng)


@pytest.mark.parametrize("case", CONV_CASES[:2])
def test_conv2d_double_backward_matches_torch(case):
    n, c, h, w, o, k, s, p, d, g = case
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c // g) + _pair(k))]
    assert_double_backward_parity(lambda x, wt: rg.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g),
                                  lambda x, wt: F.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g),
                                  arrays, rng)


TRANSPOSE_CASES = [  # N, C_in, H, W, C_out, kernel, stride, padding, output_padding, dilation, groups
    (2, 4, 4, 5, 6, 3, 2, 1, 1, 1, 2),
    (1, 2, 3, 3, 3, 3, 1, 0, 1, 2, 1),          # output_padding >= stride (allowed by dilation)
    (1, 3, 5, 4, 2, (2, 3), (3, 2), (1, 0), (2, 1), 1, 1),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose2d_matches_torch(case):
    n, c, h, w, co, k, s, p, op, d, g = case
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((c, co // g) + _pair(k))]
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    assert_parity(lambda x, wt: rg.conv_transpose2d(x, wt, **kw), lambda x, wt: F.conv_transpose2d(x, wt, **kw),
                  arrays, rng)
    assert_double_backward_parity(lambda x, wt: rg.conv_transpose2d(x, wt, **kw),
                                  lambda x, wt: F.conv_transpose2d(x, wt, **kw), arrays, rng)


def test_conv2d_keeps_a_symbolic_batch():
    x, w = rg.input((None, 3, 8, 8), "float64", name="x"), rg.input((5, 3, 3, 3), "float64", name="w")
    y = rg.conv2d(x, w, padding=1)
    assert y.shape[1:] == (5, 8, 8) and isinstance(y.shape[0], rg.Dim)
    f = rg.function([x, w], y, backend="reference")
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        xv, wv = rng.standard_normal((batch, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
        np.testing.assert_allclose(f(xv, wv), F.conv2d(torch.tensor(xv), torch.tensor(wv), padding=1).numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_conv_errors_name_op_shapes_and_line():
    x = rg.input((2, 4, 8, 8), name="x")
    e = _expect_error(lambda: rg.conv2d(x, rg.input((6, 3, 3, 3), name="w"), groups=2),
                      "conv2d", "channel mismatch", "(2, 4, 8, 8)", "(6, 3, 3, 3)")
    assert isinstance(e, rg.ShapeError)
    _expect_error(lambda: rg.conv2d(x, rg.input((6, 4, 3, 3), name="w"), groups=3),
                  "conv2d", "not divisible by groups=3")
    _expect_error(lambda: rg.conv2d(x, rg.input((6, 4, 5, 5), name="w"), dilation=2),
                  "conv2d", "larger than the padded input (8, 8)")
    _expect_error(lambda: rg.conv2d(rg.input((4, 8, 8), name="x3"), rg.input((6, 4, 3, 3), name="w")),
                  "conv2d", "input must have rank 4", "(4, 8, 8)")
    _expect_error(lambda: rg.conv2d(x, rg.input((6, 4, 3, 3), name="w"), stride=0), "conv2d", "stride must be positive")
    _expect_error(lambda: rg.conv2d(rg.input((2, 4, "H", 8), name="xs"), rg.input((6, 4, 3, 3), name="w")),
                  "conv2d", "symbolic dimension H")
    _expect_error(lambda: rg.conv_transpose2d(x, rg.input((4, 2, 3, 3), name="w"), stride=2, output_padding=2),
                  "conv_transpose2d", "output_padding (2, 2) must be smaller than either stride (2, 2)",
                  "(2, 4, 8, 8)")
    _expect_error(lambda: rg.conv_transpose2d(x, rg.input((3, 2, 3, 3), name="w")),
                  "conv_transpose2d", "channel mismatch")
    line = _line(); err = _expect_error(lambda: rg.conv2d_backward_input(  # noqa: E702
        rg.input((2, 6, 9, 9)), rg.input((6, 4, 3, 3)), input_size=(8, 8)), "exceeds the convolution output (6, 6)")
    assert err.source == f"{__file__}:{line}"


# --- pooling --------------------------------------------------------------------------------
MAX_POOL_CASES = [  # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 7), 2, None, 0, 1, False),
    ((1, 2, 7, 6), (3, 2), (2, 1), 1, (1, 2), True),
    ((2, 2, 9, 9), 3, 2, 1, 2, True),
    ((1, 3, 10, 5), (4, 3), (3, 2), (2, 1), 1, True),
]


@pytest.mark.parametrize("case", MAX_POOL_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool2d_matches_torch(case, ties):
    shape, k, s, p, d, ceil = case
    rng = np.random.default_rng(MAX_POOL_CASES.index(case))
    # With ties (few distinct values) PyTorch routes the gradient to the first maximum of each window.
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil)
    assert_parity(lambda t: rg.max_pool2d(t, k, **kw), lambda t: F.max_pool2d(t, k, **kw), [x], rng)
    got = rg.evaluate(rg.max_pool2d_indices(rg.constant(x), k, **kw))
    np.testing.assert_array_equal(got, F.max_pool2d(torch.tensor(x), k, return_indices=True, **kw)[1].numpy())
    assert_double_backward_parity(lambda t: rg.max_pool2d(t, k, **kw), lambda t: F.max_pool2d(t, k, **kw),
                                  [x], rng)


AVG_POOL_CASES = [  # shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 8, 7), 2, None, 0, False, True, None),
    ((1, 2, 7, 6), (3, 2), (2, 1), 1, True, False, None),
    ((1, 2, 7, 6), (3, 2), (2, 1), 1, True, True, None),
    ((2, 2, 9, 8), 3, 2, 1, True, True, 7),
    ((1, 1, 6, 5), (4, 3), (3, 2), (2, 1), True, False, None),
]


@pytest.mark.parametrize("case", AVG_POOL_CASES)
def test_avg_pool2d_matches_torch(case):
    shape, k, s, p, ceil, cip, div = case
    rng = np.random.default_rng(AVG_POOL_CASES.index(case))
    kw = dict(stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
    arrays = [rng.standard_normal(shape)]
    assert_parity(lambda t: rg.avg_pool2d(t, k, **kw), lambda t: F.avg_pool2d(t, k, **kw), arrays, rng)
    assert_double_backward_parity(lambda t: rg.avg_pool2d(t, k, **kw), lambda t: F.avg_pool2d(t, k, **kw),
                                  arrays, rng)


ADAPTIVE_CASES = [  # input shape, output_size
    ((2, 3, 7, 5), (3, 2)), ((1, 2, 10, 9), (4, None)), ((1, 2, 2, 3), (3, 5)), ((2, 4, 6, 6), 1),
    ((1, 1, 13, 11), (5, 3)),
]


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool2d_matches_torch(case, kind):
    shape, size = case
    rng = np.random.default_rng(ADAPTIVE_CASES.index(case))
    ours, theirs = ((rg.adaptive_avg_pool2d, F.adaptive_avg_pool2d) if kind == "avg"
                    else (rg.adaptive_max_pool2d, F.adaptive_max_pool2d))
    arrays = [rng.standard_normal(shape)]
    assert_parity(lambda t: ours(t, size), lambda t: theirs(t, size), arrays, rng)
    assert_double_backward_parity(lambda t: ours(t, size), lambda t: theirs(t, size), arrays, rng)
    if kind == "max":
        got = rg.evaluate(rg.adaptive_max_pool2d_indices(rg.constant(arrays[0]), size))
        np.testing.assert_array_equal(got, F.adaptive_max_pool2d(torch.tensor(arrays[0]), size, True)[1].numpy())


def test_global_avg_pool2d_is_the_spatial_mean():
    x = np.random.default_rng(5).standard_normal((3, 4, 5, 6))
    got = rg.evaluate(rg.global_avg_pool2d(rg.constant(x)))
    np.testing.assert_allclose(got, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12, atol=1e-14)


def test_pooling_keeps_a_symbolic_batch():
    x = rg.input((None, 2, 7, 7), "float64", name="x")
    y = rg.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True) + rg.avg_pool2d(x, 3, stride=2, padding=1)
    (gx,) = rg.grad(rg.sum(y * y), [x])
    f = rg.function([x], [y, gx], backend="reference")
    xv = np.random.default_rng(2).standard_normal((3, 2, 7, 7))
    tx = torch.tensor(xv, requires_grad=True)
    ty = F.max_pool2d(tx, 3, stride=2, padding=1, ceil_mode=True) + F.avg_pool2d(tx, 3, stride=2, padding=1)
    (ty * ty).sum().backward()
    got_y, got_g = f(xv)
    np.testing.assert_allclose(got_y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_g, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pooling_errors_name_op_shapes_and_line():
    x = rg.input((2, 3, 6, 6), name="x")
    _expect_error(lambda: rg.max_pool2d(x, 3, padding=2), "max_pool2d", "padding (2, 2) must be at most half",
                  "(2, 3, 6, 6)")
    _expect_error(lambda: rg.max_pool2d(x, 3, padding=2, dilation=2), "max_pool2d", "at most half")
    _expect_error(lambda: rg.avg_pool2d(x, 7), "avg_pool2d", "output size is too small")
    _expect_error(lambda: rg.max_pool2d(rg.input((3, 6, 6), name="x3"), 2), "max_pool2d", "rank 4", "(3, 6, 6)")
    _expect_error(lambda: rg.avg_pool2d(rg.input((2, 3, 6, 6), "int64", name="xi"), 2), "avg_pool2d",
                  "floating-point", cls=rg.DTypeError)
    _expect_error(lambda: rg.adaptive_avg_pool2d(x, (0, 2)), "adaptive_avg_pool2d", "output_size must be positive")
    _expect_error(lambda: rg.adaptive_max_pool2d(x, (1, 2, 3)), "adaptive_max_pool2d", "output_size=(1, 2, 3)")
    _expect_error(lambda: rg.max_pool2d_backward(rg.input((2, 3, 2, 2)), x, kernel_size=2, stride=2, padding=0,
                                                 dilation=1, ceil_mode=False),
                  "max_pool2d_backward", "gradient shape (2, 3, 2, 2) differs from the pooled output (2, 3, 3, 3)")


# --- normalization ----------------------------------------------------------------------------
LAYER_NORM_CASES = [((4, 7), 1, 1e-5), ((2, 3, 5), 1, 1e-5), ((2, 3, 4, 5), 2, 1e-3), ((3, 2, 2), 3, 1e-5)]


@pytest.mark.parametrize("case", LAYER_NORM_CASES)
def test_layer_norm_matches_torch(case):
    shape, k, eps = case
    rng = np.random.default_rng(LAYER_NORM_CASES.index(case))
    arrays = [rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape[-k:]), rng.standard_normal(shape[-k:])]
    ours = lambda x, g, b: rg.layer_norm(x, g, b, eps=eps)  # noqa: E731
    theirs = lambda x, g, b: F.layer_norm(x, shape[-k:], g, b, eps=eps)  # noqa: E731
    assert_parity(ours, theirs, arrays, rng)
    assert_double_backward_parity(ours, theirs, arrays, rng)


BATCH_NORM_CASES = [((6, 3), 1e-5), ((2, 3, 5), 1e-5), ((3, 4, 3, 2), 1e-3), ((1, 2, 2, 3), 1e-5)]


@pytest.mark.parametrize("case", BATCH_NORM_CASES)
def test_batch_norm_matches_torch(case):
    shape, eps = case
    rng = np.random.default_rng(BATCH_NORM_CASES.index(case))
    c = shape[1]
    arrays = [rng.standard_normal(shape) * 2 - 1, rng.standard_normal(c), rng.standard_normal(c)]
    ours = lambda x, g, b: rg.batch_norm(x, g, b, eps=eps)  # noqa: E731
    theirs = lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=eps)  # noqa: E731
    assert_parity(ours, theirs, arrays, rng)
    assert_double_backward_parity(ours, theirs, arrays, rng)


def test_batch_norm_on_the_last_axis_matches_torch_with_channels_moved():
    # axis=-1 (channels last) must equal PyTorch's channel-first batch norm on the moved axis.
    rng = np.random.default_rng(4)
    x, g, b = rng.standard_normal((3, 5, 4)), rng.standard_normal(4), rng.standard_normal(4)
    got = rg.evaluate(rg.batch_norm(rg.constant(x), rg.constant(g), rg.constant(b), axis=-1))
    expected = F.batch_norm(torch.tensor(x).permute(0, 2, 1), None, None, torch.tensor(g), torch.tensor(b),
                            training=True).permute(0, 2, 1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_norms_without_affine_parameters():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5))
    got_ln = rg.evaluate(rg.layer_norm(rg.constant(x), normalized_ndim=2))
    got_bn = rg.evaluate(rg.batch_norm(rg.constant(x)))
    np.testing.assert_allclose(got_ln, F.layer_norm(torch.tensor(x), (4, 5)).numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_bn, F.batch_norm(torch.tensor(x), None, None, training=True).numpy(),
                               rtol=1e-10, atol=1e-10)


def test_layer_norm_keeps_symbolic_leading_axes():
    x = rg.input((None, "T", 6), "float64", name="x")
    g, b = rg.input((6,), "float64", name="g"), rg.input((6,), "float64", name="b")
    y = rg.layer_norm(x, g, b)
    gx, gg, gb = rg.grad(rg.sum(y * y * y), [x, g, b])
    f = rg.function([x, g, b], [y, gx, gg, gb], backend="reference")
    rng = np.random.default_rng(8)
    xv, gv, bv = rng.standard_normal((2, 3, 6)), rng.standard_normal(6), rng.standard_normal(6)
    ts = [torch.tensor(a, requires_grad=True) for a in (xv, gv, bv)]
    ty = F.layer_norm(ts[0], (6,), ts[1], ts[2])
    (ty ** 3).sum().backward()
    for got, want in zip(f(xv, gv, bv), [ty.detach()] + [t.grad for t in ts]):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-10)


def test_normalization_errors_name_op_shapes_and_line():
    x = rg.input((4, 3, 5), name="x")
    _expect_error(lambda: rg.layer_norm(x, rg.input((3,), name="g"), rg.input((3,), name="b")),
                  "layer_norm", "gamma shape (3,) must be (5,)", "(4, 3, 5)")
    _expect_error(lambda: rg.layer_norm(x, rg.input((5,), name="g"), rg.input((5,), name="b"), normalized_ndim=4),
                  "layer_norm", "normalized_ndim=4 must be between 1 and the rank 3")
    _expect_error(lambda: rg.batch_norm(x, rg.input((5,), name="g"), rg.input((3,), name="b")),
                  "batch_norm", "gamma shape (5,) must be (3,)")
    _expect_error(lambda: rg.batch_norm(rg.input((1, 3), name="x1")), "batch_norm", "more than 1 value per channel")
    _expect_error(lambda: rg.batch_norm(rg.input((6,), name="x0")), "batch_norm", "rank >= 2")
    _expect_error(lambda: rg.layer_norm_backward(rg.input((4, 3, 6)), x, rg.input((5,))),
                  "layer_norm_backward", "gradient shape (4, 3, 6) differs from the input's (4, 3, 5)")


# --- embedding ------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("index_dtype", ["int64", "int32"])
def test_embedding_matches_torch(padding_idx, index_dtype):
    rng = np.random.default_rng(9)
    weight = rng.standard_normal((6, 4))
    idx = rng.integers(0, 6, (3, 5)).astype(index_dtype)
    idx[0, :2] = (padding_idx or 0) % 6  # make sure the padding row is looked up
    assert_parity(lambda w, i: rg.embedding(w, i, padding_idx=padding_idx),
                  lambda w, i: F.embedding(i.long(), w, padding_idx=padding_idx), [weight, idx], rng, wrt=[0])


def test_embedding_errors_name_op_shapes_and_line():
    w = rg.input((6, 4), name="w")
    _expect_error(lambda: rg.embedding(w, rg.input((3,), "float32", name="i")), "embedding", "int32 or int64",
                  "(6, 4)", cls=rg.DTypeError)
    _expect_error(lambda: rg.embedding(w, rg.input((3,), "int64", name="i"), padding_idx=6), "embedding",
                  "padding_idx 6 is out of range for 6 embeddings")
    _expect_error(lambda: rg.embedding(rg.input((6,), name="w1"), rg.input((3,), "int64", name="i")), "embedding",
                  "weight must be (num_embeddings, dim)")
