"""Loss modules: same values as the functions, PyTorch's buffers and option names, build-time errors."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.core.errors import GraphBuildError
from rustyasg.nn import losses as L


def _eval(out, feed):
    return rg.evaluate(out, feed, backend="reference")


def test_modules_equal_functions(rng):
    x = rg.input((6, 4), "float64", name="x")
    y = rg.input((6,), "int64", name="y")
    w = rng.uniform(0.5, 2.0, 4)
    xv, yv = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    module = L.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction="sum")
    a = _eval(module(x, y), {x: xv, y: yv})
    b = _eval(L.cross_entropy(x, y, weight=rg.constant(w), label_smoothing=0.1, reduction="sum"), {x: xv, y: yv})
    np.testing.assert_allclose(a, b, rtol=1e-12)
    a = _eval(L.TripletMarginLoss(margin=0.5, swap=True)(x, x * 2.0, x * -1.0), {x: xv})
    b = _eval(L.triplet_margin_loss(x, x * 2.0, x * -1.0, margin=0.5, swap=True), {x: xv})
    np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("ours,theirs,kw", [
    (L.CrossEntropyLoss, torch.nn.CrossEntropyLoss, {"weight": np.array([1.0, 2.0, 0.5])}),
    (L.NLLLoss, torch.nn.NLLLoss, {"weight": np.array([1.0, 2.0, 0.5])}),
    (L.BCELoss, torch.nn.BCELoss, {"weight": np.array([1.0, 2.0, 0.5])}),
    (L.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss, {"weight": np.ones(3), "pos_weight": np.full(3, 2.0)}),
    (L.MultiMarginLoss, torch.nn.MultiMarginLoss, {"weight": np.array([1.0, 2.0, 0.5])}),
    (L.MSELoss, torch.nn.MSELoss, {}),
    (L.KLDivLoss, torch.nn.KLDivLoss, {"log_target": True}),
])
def test_state_dict_keys_match_pytorch(ours, theirs, kw):
    mine = ours(**kw).state_dict()
    ref = theirs(**{k: torch.tensor(v) for k, v in kw.items() if isinstance(v, np.ndarray)},
                 **{k: v for k, v in kw.items() if not isinstance(v, np.ndarray)}).state_dict()
    assert list(mine) == list(ref)
    for k in mine:
        np.testing.assert_array_equal(mine[k], ref[k].numpy())


def test_weight_buffer_changes_without_recompiling(rng):
    loss_fn = L.CrossEntropyLoss(weight=np.ones(3, np.float32))
    x, y = rg.input((4, 3), name="x"), rg.input((4,), "int64", name="y")
    fn = rg.function([x, y], loss_fn(x, y), backend="reference")
    xv, yv = rng.normal(size=(4, 3)).astype(np.float32), np.array([0, 1, 2, 1])
    before = fn(xv, yv)
    loss_fn.weight.assign(np.array([1.0, 0.0, 0.0], np.float32))  # only class 0 counts now
    after = fn(xv, yv)
    lp = xv - np.log(np.exp(xv).sum(1, keepdims=True))
    np.testing.assert_allclose(after, -lp[0, 0], rtol=1e-5)
    np.testing.assert_allclose(before, -lp[np.arange(4), yv].mean(), rtol=1e-5)
    assert fn.stats["compiles"] == 1


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match="label_smooting"):
        L.CrossEntropyLoss(label_smooting=0.1)


def _raises(fn, *needles):
    with pytest.raises(GraphBuildError) as info:
        fn()
    text = str(info.value)
    for needle in needles + ("test_losses_modules.py:",):
        assert needle in text, f"{needle!r} not in:\n{text}"


def test_errors_name_loss_shapes_and_line():
    x = rg.input((4, 3), name="x")
    _raises(lambda: L.mse_loss(x, rg.input((4, 2), name="t")), "mse_loss", "(4, 3)", "(4, 2)")
    _raises(lambda: L.l1_loss(x, x, reduction="avg"), "l1_loss", "'avg'")
    _raises(lambda: L.cross_entropy(x, rg.input((3,), "int64", name="y")), "cross_entropy", "(4,)", "(3,)")
    _raises(lambda: L.cross_entropy(x, rg.input((4,), "int64", name="y"), weight=np.ones(5)),
            "cross_entropy", "(5,)", "3")
    _raises(lambda: L.cross_entropy(x, rg.input((4, 2), name="p")), "cross_entropy", "(4, 2)")
    _raises(lambda: L.nll_loss(x, rg.input((4,), name="y")), "nll_loss", "integer")
    _raises(lambda: L.multi_margin_loss(x, rg.input((4,), "int64", name="y"), p=3), "multi_margin_loss", "p = 1")
    _raises(lambda: L.kl_div(x, x, reduction="batch"), "kl_div", "batchmean")
    _raises(lambda: L.triplet_margin_loss(x, x, rg.input((4, 2), name="n")), "triplet_margin_loss", "(4, 2)")
    _raises(lambda: L.cosine_embedding_loss(x, x, rg.input((3,), name="t")), "cosine_embedding_loss", "(4,)")
    _raises(lambda: L.cross_entropy(rg.input((), name="s"), rg.input((), "int64", name="y")), "cross_entropy",
            "class axis")


def test_symbolic_batch_and_ignored_everything():
    x = rg.input(("B", 3), "float64", name="x")
    y = rg.input(("B",), "int64", name="y")
    fn = rg.function([x, y], L.cross_entropy(x, y, label_smoothing=0.2), backend="reference")
    xv = np.random.default_rng(0).normal(size=(7, 3))
    yv = np.array([0, 1, 2, 0, 1, 2, 0])
    expected = torch.nn.functional.cross_entropy(torch.tensor(xv), torch.tensor(yv), label_smoothing=0.2)
    np.testing.assert_allclose(fn(xv, yv), expected.item(), rtol=1e-12)
    # every target ignored: PyTorch gives nan for the mean (0 / 0), and so do we
    with np.errstate(invalid="ignore"):
        assert np.isnan(fn(xv[:2], np.array([-100, -100])))


@pytest.mark.parametrize("name", ['rustyasg.nn.losses', 'rustyasg.nn.losses._common', 'rustyasg.nn.losses.regression', 'rustyasg.nn.losses.classification', 'rustyasg.nn.losses.margin', 'rustyasg.nn.losses.modules'])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
