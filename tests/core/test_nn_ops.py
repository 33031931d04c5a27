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

NN_OPS = ["conv2d", "conv2d_backward_input", "conv2d_backward_weight"]


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
    expected = [g.numpy() for g in torch.autograd.grad(inner, ts + [tc])]

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
