"""Adaptive pooling of 1, 2 and 3 spatial axes, max pooling indices and max-unpooling against PyTorch:
values, int64 indices and gradients on every backend (float64 on reference, float32 on cpu and wgpu), on
odd sizes whose windows overlap or do not divide evenly, including outputs larger than the input."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn
import rustyasg.nn.functional as F
from core_tables import load_core_module




parity = load_core_module("torch_parity_table")
Case = parity.Case
R = np.random.default_rng(11)


def r(*shape):
    return R.standard_normal(shape) * 2.0 - 0.5  # negatives and positives


SEQ, IMG, VOL = r(2, 3, 11), r(2, 3, 7, 5), r(2, 3, 5, 7, 6)
# +-inf and exact zeros: those pass through the windows as they do in PyTorch (NaN: NAN_CASES below)
EDGE_SEQ, EDGE_VOL = SEQ.copy(), VOL.copy()
EDGE_SEQ[0, 0, :5] = [np.inf, -np.inf, 0.0, -np.inf, 0.0]
EDGE_VOL[0, 0, 0, 0, :4] = [np.inf, -np.inf, 0.0, -0.0]
EDGE_VOL[1, 2, :, 3, 3] = -np.inf  # a whole depth column of -inf
# NaN inside one depth window of an average must stay in that window's outputs
NAN_VOL = VOL.copy()
NAN_VOL[0, 1, 4, 2, 2] = np.nan


def _case(name, ours, theirs, x, grad=True):
    return Case(name, [x], ours, theirs, grad=grad)


def _both(name, fn, x, grad=True, **kw):
    """The same call on both sides: ``fn(module)(x, ...)`` with module F or torch's functional."""
    return _case(name, lambda t: fn(F)(t, **kw), lambda t: fn(TF)(t, **kw), x, grad)


ADAPTIVE = [((SEQ, 1), 4), ((SEQ, 1), 13), ((SEQ, 1), 1), ((IMG, 2), (3, 4)), ((IMG, 2), (None, 2)),
            ((VOL, 3), (2, 3, 4)), ((VOL, 3), (4, None, 5)), ((VOL, 3), 1), ((VOL, 3), (7, 2, 1))]

CASES = [
    *[_both(f"adaptive_{kind}_pool{nd}d_{size}", lambda m, k=kind, n=nd: getattr(m, f"adaptive_{k}_pool{n}d"), x,
            output_size=size)
      for (x, nd), size in ADAPTIVE for kind in ("avg", "max")],
    *[_case(f"adaptive_max_pool{nd}d_indices_{size}",
            lambda t, n=nd, s=size: getattr(F, f"adaptive_max_pool{n}d")(t, s, return_indices=True)[1],
            lambda t, n=nd, s=size: getattr(TF, f"adaptive_max_pool{n}d")(t, s, return_indices=True)[1], x, False)
      for (x, nd), size in ADAPTIVE],
    _both("adaptive_max_pool1d_edges", lambda m: m.adaptive_max_pool1d, EDGE_SEQ, False, output_size=4),
    _case("adaptive_max_pool1d_edges_indices", lambda t: F.adaptive_max_pool1d(t, 4, True)[1],
          lambda t: TF.adaptive_max_pool1d(t, 4, True)[1], EDGE_SEQ, False),
    _both("adaptive_max_pool3d_edges", lambda m: m.adaptive_max_pool3d, EDGE_VOL, False, output_size=(3, 2, 4)),
    _case("adaptive_max_pool3d_edges_indices", lambda t: F.adaptive_max_pool3d(t, (3, 2, 4), True)[1],
          lambda t: TF.adaptive_max_pool3d(t, (3, 2, 4), True)[1], EDGE_VOL, False),
    _both("adaptive_avg_pool3d_edges", lambda m: m.adaptive_avg_pool3d, EDGE_VOL, False, output_size=(3, 2, 4)),
    _both("adaptive_avg_pool3d_nan", lambda m: m.adaptive_avg_pool3d, NAN_VOL, False, output_size=(3, 4, 4)),
    _both("avg_pool3d_nan", lambda m: m.avg_pool3d, NAN_VOL, False, kernel_size=(2, 3, 2), stride=(1, 2, 2),
          padding=(1, 1, 0), ceil_mode=True, count_include_pad=False),
    # max pooling indices of every rank, and unpooling with them
    *[_case(f"max_pool3d_indices_{i}", lambda t, a=args: F.max_pool3d(t, *a, return_indices=True)[1],
            lambda t, a=args: TF.max_pool3d(t, *a, return_indices=True)[1], x, False)
      for i, (x, args) in enumerate([(VOL, (2,)), (VOL, ((2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True)),
                                     (EDGE_VOL, (3, 2, 1, 1, True))])],
    _case("max_pool3d_values_with_indices", lambda t: F.max_pool3d(t, 3, 2, 1, return_indices=True)[0],
          lambda t: TF.max_pool3d(t, 3, 2, 1, return_indices=True)[0], VOL),
    _case("max_pool1d_edges_indices", lambda t: F.max_pool1d(t, 3, 2, 1, 1, True, return_indices=True)[1],
          lambda t: TF.max_pool1d(t, 3, 2, 1, 1, True, return_indices=True)[1], EDGE_SEQ, False),
    _case("max_unpool3d", lambda t: F.max_unpool3d(*F.max_pool3d(t, 2, return_indices=True), 2),
          lambda t: TF.max_unpool3d(*TF.max_pool3d(t, 2, return_indices=True), 2), VOL[:, :, :4, :6]),
    _case("max_unpool3d_output_size",
          lambda t: F.max_unpool3d(*F.max_pool3d(t, (2, 3, 2), (2, 3, 2), return_indices=True), (2, 3, 2), (2, 3, 2),
                                   output_size=(5, 7, 6)),
          lambda t: TF.max_unpool3d(*TF.max_pool3d(t, (2, 3, 2), (2, 3, 2), return_indices=True), (2, 3, 2),
                                    (2, 3, 2), output_size=(5, 7, 6)), VOL),
    _case("maxpool3d_module_unpool", lambda t: nn.MaxUnpool3d(2, 2)(*nn.MaxPool3d(2, 2, return_indices=True)(t)),
          lambda t: torch.nn.MaxUnpool3d(2, 2)(*torch.nn.MaxPool3d(2, 2, return_indices=True)(t)), VOL[1:, :, 1:, 1:]),
    # overlapping windows repeat an index: each copy gets the gradient, as PyTorch
    _case("max_unpool1d_adaptive", lambda t: F.max_unpool1d(*F.adaptive_max_pool1d(t, 5, True), 2, 2, 0, (11,)),
          lambda t: TF.max_unpool1d(*TF.adaptive_max_pool1d(t, 5, True), 2, 2, 0, (11,)), SEQ),
    _case("max_unpool3d_overlapping",
          lambda t: F.max_unpool3d(*F.max_pool3d(t, (2, 3, 2), (2, 2, 2), return_indices=True), (2, 3, 2), (2, 2, 2),
                                   output_size=(5, 7, 6)),
          lambda t: TF.max_unpool3d(*TF.max_pool3d(t, (2, 3, 2), (2, 2, 2), return_indices=True), (2, 3, 2),
                                    (2, 2, 2), output_size=(5, 7, 6)), VOL),
    _case("max_unpool1d_edges", lambda t: F.max_unpool1d(*F.max_pool1d(t, 3, 2, 1, return_indices=True), 3, 2, 1,
                                                         (11,)),
          lambda t: TF.max_unpool1d(*TF.max_pool1d(t, 3, 2, 1, return_indices=True), 3, 2, 1, (11,)), EDGE_SEQ,
          False),
]

MODULES = [(name, args, x) for name, args, x in [
    ("AdaptiveAvgPool1d", (5,), SEQ), ("AdaptiveAvgPool2d", ((4, None),), IMG), ("AdaptiveAvgPool3d", ((2, 5, 3),), VOL),
    ("AdaptiveMaxPool1d", (3,), SEQ), ("AdaptiveMaxPool2d", (3,), IMG), ("AdaptiveMaxPool3d", ((3, None, 4),), VOL)]]
CASES += [_case(f"module_{name}", lambda t, n=name, a=args: getattr(nn, n)(*a)(t),
                lambda t, n=name, a=args: getattr(torch.nn, n)(*a)(t), x) for name, args, x in MODULES]
CASES += [_case(f"module_{name}_indices", lambda t, n=name, a=args: getattr(nn, n)(*a, return_indices=True)(t)[1],
                lambda t, n=name, a=args: getattr(torch.nn, n)(*a, return_indices=True)(t)[1], x, False)
          for name, args, x in MODULES if "Max" in name]


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_pooling_of_every_rank_matches_torch(backend):
    parity.check_cases(CASES, backend)


def _with_nans(x: np.ndarray, seed: int) -> np.ndarray:
    """``x`` with NaN at random places (often several in one window), and -inf, 0.0 and -0.0 among them;
    the first plane holds an all-NaN corner and an all -inf corner."""
    rng = np.random.default_rng(seed)
    x, u = x.copy(), rng.random(x.shape)
    x[u < 0.2] = np.nan
    x[(u >= 0.2) & (u < 0.27)] = -np.inf
    x[(u >= 0.27) & (u < 0.32)] = 0.0
    x[(u >= 0.32) & (u < 0.37)] = -0.0
    corner = (0, 0) + (slice(0, 3),) * (x.ndim - 2)
    x[corner] = np.nan
    x[(0, 1) + (slice(0, 3),) * (x.ndim - 2)] = -np.inf
    return x


def _values_and_indices(name, ours, theirs, x):
    """Values (with their gradient) and int64 indices of a ``return_indices`` max pooling."""
    return [_case(f"{name}_values", lambda t: ours(t)[0], lambda t: theirs(t)[0], x),
            _case(f"{name}_indices", lambda t: ours(t)[1], lambda t: theirs(t)[1], x, False)]


def nan_cases(seed: int) -> list:
    """Max pooling of every rank, plain and adaptive, on inputs with random NaN: NaN propagates, and the
    index (so the gradient, and max_unpool) is the one PyTorch picks: the last NaN in window order."""
    seq, img, vol = _with_nans(r(2, 3, 13), seed), _with_nans(r(2, 3, 9, 8), seed), _with_nans(r(2, 2, 6, 7, 5), seed)
    plain = [("max_pool1d", seq, (3, 2, 1, 1, True)), ("max_pool1d", seq, (4, 1, 2, 2)),
             ("max_pool2d", img, (2,)), ("max_pool2d", img, (3, 1)),  # the fixed-window cpu kernels
             ("max_pool2d", img, ((3, 2), (2, 1), 1, (1, 2), True)),
             ("max_pool3d", vol, (2,)), ("max_pool3d", vol, ((3, 2, 2), (1, 2, 1), (1, 1, 0), (1, 1, 2), True))]
    adaptive = [(1, seq, 4), (1, seq, 1), (2, img, (4, 3)), (2, img, (1, 1)), (3, vol, (4, 3, 2)), (3, vol, 1)]
    cases = []
    for i, (fn, x, args) in enumerate(plain):
        cases += _values_and_indices(f"{fn}_nan_{i}", lambda t, f=fn, a=args: getattr(F, f)(t, *a, return_indices=True),
                                     lambda t, f=fn, a=args: getattr(TF, f)(t, *a, return_indices=True), x)
    for nd, x, size in adaptive:
        fn = f"adaptive_max_pool{nd}d"
        cases += _values_and_indices(f"{fn}_nan_{size}", lambda t, f=fn, s=size: getattr(F, f)(t, s, True),
                                     lambda t, f=fn, s=size: getattr(TF, f)(t, s, True), x)
    cases += [_case("max_unpool2d_nan", lambda t: F.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2),
                    lambda t: TF.max_unpool2d(*TF.max_pool2d(t, 2, return_indices=True), 2), img[:, :, :8], False),
              _case("max_unpool3d_nan", lambda t: F.max_unpool3d(*F.max_pool3d(t, 2, return_indices=True), 2),
                    lambda t: TF.max_unpool3d(*TF.max_pool3d(t, 2, return_indices=True), 2), vol[:, :, :, :6, :4],
                    False)]
    return cases


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu", "onnxruntime"])
@pytest.mark.parametrize("seed", [3, 4])
def test_max_pooling_with_nan_matches_torch(backend, seed):
    parity.check_cases(nan_cases(seed), backend, seed)


WINDOW = np.array([1.0, np.nan, 3.0, np.nan, 2.0, 2.0])


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu", "onnxruntime"])
def test_one_window_picks_torchs_element_and_sign(backend):
    """One window of every kind, each pooled whole: the last NaN wins, a window of -inf picks its first
    element, and of -0.0 and 0.0 the first one wins, sign included."""
    dt = np.float64 if backend == "reference" else np.float32
    windows = [WINDOW, np.full(6, np.nan), np.full(6, -np.inf), np.array([-0.0, 0.0, -0.0, 0.0, -1.0, -np.inf]),
               np.array([0.0, -0.0, -np.inf, -0.0, 0.0, -2.0]), np.array([np.nan, 1.0, 2.0, 5.0, 5.0, -1.0])]
    for w in windows:
        pools = [(lambda m, t: m.max_pool1d(t.reshape(1, 1, 6), 6, return_indices=True)),
                 (lambda m, t: m.max_pool2d(t.reshape(1, 1, 2, 3), (2, 3), return_indices=True)),
                 (lambda m, t: m.max_pool3d(t.reshape(1, 1, 3, 2, 1), (3, 2, 1), return_indices=True)),
                 (lambda m, t: m.adaptive_max_pool2d(t.reshape(1, 1, 3, 2), 1, True)),
                 (lambda m, t: m.adaptive_max_pool3d(t.reshape(1, 1, 2, 1, 3), 1, True))]
        x = rg.input((6,), dt, name="x")
        outs = [o for pool in pools for o in pool(F, x)]
        got = rg.function([x], outs + list(rg.grad(sum(rg.sum(o) for o in outs[::2]), [x])), backend=backend)(
            w.astype(dt))
        tx = torch.tensor(w, requires_grad=True)
        want = [o for pool in pools for o in pool(TF, tx)]
        sum(o.sum() for o in want[::2]).backward()
        for i, (g, t) in enumerate(zip(got[:-1], want)):
            t = t.detach().numpy()
            np.testing.assert_array_equal(np.asarray(g).reshape(-1), t.reshape(-1), err_msg=f"{w}: output {i}")
            assert np.signbit(g).tolist() == np.signbit(t).tolist(), f"{w}: sign of output {i}"
        np.testing.assert_array_equal(got[-1], tx.grad.numpy(), err_msg=f"{w}: gradient")


def test_indices_are_int64_and_adaptive_windows_follow_torch_rule():
    y, i = F.adaptive_max_pool3d(rg.input((1, 2, 5, 4, 7)), (2, 3, 4), return_indices=True)
    assert (y.describe(), i.describe()) == ("float32(1, 2, 2, 3, 4)", "int64(1, 2, 2, 3, 4)")
    # window i spans floor(i*in/out) to ceil((i+1)*in/out): 5 -> 3 gives [0, 2), [1, 4), [3, 5)
    x = rg.input((1, 1, 5), "float64", name="x")
    got = rg.function([x], F.adaptive_avg_pool1d(x, 3), backend="reference")(np.arange(5.0)[None, None])
    np.testing.assert_allclose(got[0, 0], [0.5, 2.0, 3.5])


def test_adaptive_avg_pool_to_one_keeps_symbolic_sizes():
    x = rg.input((None, 4, None, None, None), name="x")
    assert nn.AdaptiveAvgPool3d(1)(x).shape[1:] == (4, 1, 1, 1)


@pytest.mark.parametrize("call, message", [
    (lambda: F.adaptive_avg_pool3d(rg.input((2, 3, 4, 4)), 2), "rank-5 input"),
    (lambda: F.adaptive_max_pool1d(rg.input((2, 3, 8)), (2, 2)), "needs 1 entries"),
    (lambda: nn.AdaptiveMaxPool3d((2, 0, 2))(rg.input((1, 1, 4, 4, 4))), "must be positive"),
    (lambda: F.adaptive_max_pool3d(rg.input((1, 1, None, 4, 4)), 2), "static spatial sizes"),
    (lambda: F.max_pool3d(rg.input((1, 1, 4, 4, 4)), 2, padding=2, return_indices=True), "at most half"),
])
def test_mistakes_are_named_errors(call, message):
    with pytest.raises(rg.RustyASGError, match=message) as info:
        call()
    assert "test_pooling_nd_parity.py" in str(info.value)  # the user's line
