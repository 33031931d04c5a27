"""Every loss against PyTorch 2.13.0 on the CPU: values and gradients for each reduction.

One table row per configuration; each row compiles one function that returns the
loss for every reduction and the gradients of each (``'none'`` through a random
cotangent), and compares them with ``torch.nn.functional`` in float64 (reference
backend, 1e-10; every row) and float32 (the backend under test, 1e-5; the richest
row of every loss).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rustyasg.core as rg
from rustyasg.nn import losses as L

N, C = 5, 4


# -- input generators (numpy, float64) ------------------------------------------------------------
def normal(*shape, scale=1.0):
    return lambda r: r.normal(size=shape) * scale


def uniform(lo, hi, *shape):
    return lambda r: r.uniform(lo, hi, size=shape)


def labels(*shape, ignore=None):
    def draw(r):
        t = r.integers(0, C, size=shape)
        if ignore is not None:
            t.reshape(-1)[:: 3] = ignore  # every third entry ignored
        return t.astype(np.int64)
    return draw


def softmax_of(*shape, axis=1, log=False):
    def draw(r):
        z = r.normal(size=shape)
        z = z - z.max(axis=axis, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
        return lp if log else np.exp(lp)
    return draw


def signs(*shape):
    return lambda r: np.where(r.random(shape) < 0.5, -1.0, 1.0)


@dataclass
class Case:
    id: str
    ours: Callable
    theirs: Callable
    inputs: Sequence[Tuple[Callable, bool]]  # (generator, differentiable)
    consts: Dict[str, Callable] = field(default_factory=dict)  # array options (weights) drawn per test
    reductions: Tuple[str, ...] = ("mean", "sum", "none")


def torch_focal(x, t, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss, verbatim (torchvision is not a dependency)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def same(fn_ours, fn_theirs, **kw):
    """Both sides called with the same keyword options."""
    return (lambda *a, reduction, **c: fn_ours(*a, reduction=reduction, **kw, **c),
            lambda *a, reduction, **c: fn_theirs(*a, reduction=reduction, **kw, **c))


def row(id, fns, inputs, consts=None, reductions=("mean", "sum", "none")):
    return Case(id, fns[0], fns[1], inputs, consts or {}, reductions)


X = (normal(N, C), True)
T = (normal(N, C), True)
CASES = [
    row("mse", same(L.mse_loss, F.mse_loss), [X, T]),
    row("l1", same(L.l1_loss, F.l1_loss), [X, T]),
    row("smooth_l1", same(L.smooth_l1_loss, F.smooth_l1_loss), [(normal(N, C, scale=1.5), True), T]),
    row("smooth_l1_beta0.5", same(L.smooth_l1_loss, F.smooth_l1_loss, beta=0.5), [X, T]),
    row("smooth_l1_beta0", same(L.smooth_l1_loss, F.smooth_l1_loss, beta=0.0), [X, T]),
    row("huber", same(L.huber_loss, F.huber_loss), [(normal(N, C, scale=1.5), True), T]),
    row("huber_delta0.7", same(L.huber_loss, F.huber_loss, delta=0.7), [X, T]),
    row("ce", same(L.cross_entropy, F.cross_entropy), [X, (labels(N), False)]),
    row("ce_weight_ignore_smooth", same(L.cross_entropy, F.cross_entropy, ignore_index=-100, label_smoothing=0.2),
        [X, (labels(N, ignore=-100), False)], {"weight": uniform(0.2, 2.0, C)}),
    row("ce_weight", same(L.cross_entropy, F.cross_entropy), [X, (labels(N), False)],
        {"weight": uniform(0.2, 2.0, C)}),
    row("ce_ignore_2", same(L.cross_entropy, F.cross_entropy, ignore_index=2), [X, (labels(N), False)]),
    row("ce_smooth", same(L.cross_entropy, F.cross_entropy, label_smoothing=0.3), [X, (labels(N), False)]),
    row("ce_spatial", same(L.cross_entropy, F.cross_entropy, label_smoothing=0.1),
        [(normal(2, C, 3, 2), True), (labels(2, 3, 2, ignore=-100), False)], {"weight": uniform(0.2, 2.0, C)}),
    row("ce_1d", same(L.cross_entropy, F.cross_entropy), [(normal(C), True), (labels(), False)],
        reductions=("mean", "sum")),
    row("ce_probs", same(L.cross_entropy, F.cross_entropy), [X, (softmax_of(N, C), True)]),
    row("ce_probs_weight_smooth", same(L.cross_entropy, F.cross_entropy, label_smoothing=0.25),
        [(normal(2, C, 3), True), (softmax_of(2, C, 3), True)], {"weight": uniform(0.2, 2.0, C)}),
    row("nll", same(L.nll_loss, F.nll_loss), [(softmax_of(N, C, log=True), True), (labels(N, ignore=-100), False)],
        {"weight": uniform(0.2, 2.0, C)}),
    row("nll_spatial", same(L.nll_loss, F.nll_loss), [(softmax_of(2, C, 3, log=True), True), (labels(2, 3), False)]),
    row("bce", same(L.binary_cross_entropy, F.binary_cross_entropy),
        [(uniform(0.05, 0.95, N, C), True), (uniform(0, 1, N, C), True)]),
    row("bce_weight", same(L.binary_cross_entropy, F.binary_cross_entropy),
        [(uniform(0.05, 0.95, N, C), True), (uniform(0, 1, N, C), False)], {"weight": uniform(0.2, 2.0, C)}),
    row("bce_logits", same(L.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
        [(normal(N, C, scale=3.0), True), (uniform(0, 1, N, C), True)]),
    row("bce_logits_pos_weight", same(L.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
        [(normal(N, C, scale=3.0), True), (uniform(0, 1, N, C), True)],
        {"weight": uniform(0.2, 2.0, N, 1), "pos_weight": uniform(0.2, 3.0, C)}),
    row("kl_div", same(L.kl_div, F.kl_div), [(softmax_of(N, C, log=True), True), (softmax_of(N, C), True)],
        reductions=("mean", "batchmean", "sum", "none")),
    row("kl_div_log_target", same(L.kl_div, F.kl_div, log_target=True),
        [(softmax_of(N, C, log=True), True), (softmax_of(N, C, log=True), True)],
        reductions=("mean", "batchmean", "sum", "none")),
    row("focal", (lambda x, t, reduction: L.sigmoid_focal_loss(x, t, reduction=reduction),
                  lambda x, t, reduction: torch_focal(x, t, 0.25, 2.0, reduction)),
        [(normal(N, C, scale=2.0), True), (lambda r: (r.random((N, C)) < 0.3).astype(float), False)]),
    row("focal_soft_no_alpha", (lambda x, t, reduction: L.sigmoid_focal_loss(x, t, -1.0, 1.5, reduction),
                                lambda x, t, reduction: torch_focal(x, t, -1.0, 1.5, reduction)),
        [(normal(N, C, scale=2.0), True), (uniform(0, 1, N, C), True)]),
    row("hinge_embedding", same(L.hinge_embedding_loss, F.hinge_embedding_loss, margin=0.8),
        [(normal(N, C), True), (signs(N, C), False)]),
    row("multi_margin", same(L.multi_margin_loss, F.multi_margin_loss), [X, (labels(N), False)]),
    row("multi_margin_p2_weight", same(L.multi_margin_loss, F.multi_margin_loss, p=2, margin=0.7),
        [X, (labels(N), False)], {"weight": uniform(0.2, 2.0, C)}),
    row("cosine_embedding", same(L.cosine_embedding_loss, F.cosine_embedding_loss, margin=0.2),
        [X, T, (signs(N), False)]),
    row("triplet", same(L.triplet_margin_loss, F.triplet_margin_loss, margin=2.0), [X, T, (normal(N, C), True)]),
    row("triplet_p1_swap", same(L.triplet_margin_loss, F.triplet_margin_loss, p=1, swap=True, margin=2.0),
        [X, T, (normal(N, C), True)]),
    row("triplet_p3", same(L.triplet_margin_loss, F.triplet_margin_loss, p=3, margin=1.5),
        [X, T, (normal(N, C), True)]),
    row("margin_ranking", same(L.margin_ranking_loss, F.margin_ranking_loss, margin=0.3),
        [(normal(N), True), (normal(N), True), (signs(N), False)]),
]


def _ours(case: Case, arrays, consts, dtype, backend):
    """Loss values and gradients for every reduction from one compiled function."""
    ins = [rg.input(a.shape, dtype if a.dtype.kind == "f" else a.dtype, name=f"a{i}") for i, a in enumerate(arrays)]
    opts = {k: rg.constant(v, dtype) for k, v in consts.items()}
    wrt = [t for t, (_, diff) in zip(ins, case.inputs) if diff]
    outs, cot = [], {}
    for red in case.reductions:
        loss = case.ours(*ins, reduction=red, **opts)
        outs.append(loss)
        objective = loss
        if loss.shape != ():
            cot[red] = np.random.default_rng(7).normal(size=tuple(loss.shape))
            objective = rg.sum(loss * rg.constant(cot[red], dtype))
        outs += rg.grad(objective, wrt)
    fn = rg.function(ins, outs, backend=backend)
    values = fn(*[a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays])
    return values, cot


def _theirs(case: Case, arrays, consts, dtype, cot):
    tdt = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    outs = []
    for red in case.reductions:
        ts = [torch.tensor(a, dtype=tdt, requires_grad=diff) if a.dtype.kind == "f" else torch.tensor(a)
              for a, (_, diff) in zip(arrays, case.inputs)]
        opts = {k: torch.tensor(v, dtype=tdt) for k, v in consts.items()}
        loss = case.theirs(*ts, reduction=red, **opts)
        objective = loss if loss.dim() == 0 else (loss * torch.tensor(cot[red], dtype=tdt)).sum()
        wrt = [t for t, (_, diff) in zip(ts, case.inputs) if diff]
        grads = torch.autograd.grad(objective, wrt)
        outs += [loss.detach().numpy()] + [g.numpy() for g in grads]
    return outs


# Every configuration is checked in float64 on the reference backend (the semantics); on the backend
# under test, in float32, the richest configuration of every loss (numba compile time is CI time).
FLOAT32_ON_BACKEND = {"mse", "l1", "smooth_l1_beta0.5", "huber_delta0.7", "ce_weight_ignore_smooth",
                      "ce_probs_weight_smooth", "nll", "bce_weight", "bce_logits_pos_weight", "kl_div",
                      "kl_div_log_target", "focal", "hinge_embedding", "multi_margin_p2_weight", "cosine_embedding",
                      "triplet_p1_swap", "margin_ranking"}
PRECISIONS = [pytest.param(c, "float64-reference", id=f"float64-reference-{c.id}") for c in CASES] + \
    [pytest.param(c, "float32-backend", id=f"float32-backend-{c.id}") for c in CASES if c.id in FLOAT32_ON_BACKEND]
assert len(PRECISIONS) == len(CASES) + len(FLOAT32_ON_BACKEND), "a FLOAT32_ON_BACKEND id matches no case"


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("case,precision", PRECISIONS)
def test_loss_matches_pytorch(case, precision, backend):
    dtype = np.float64 if precision.startswith("float64") else np.float32
    be = "reference" if dtype == np.float64 else backend
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (1e-5, 1e-7)
    r = np.random.default_rng(zlib.crc32(case.id.encode()))
    arrays = [np.asarray(gen(r)) for gen, _ in case.inputs]
    consts = {k: gen(r) for k, gen in case.consts.items()}
    ours, cot = _ours(case, arrays, consts, dtype, be)
    theirs = _theirs(case, arrays, consts, dtype, cot)
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"output {i}: shape {a.shape} vs torch {b.shape}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{case.id} output {i}")
