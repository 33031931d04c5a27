"""CTC loss against torch.nn.functional.ctc_loss: values and gradients (through log_softmax, where
PyTorch's CTC gradient is defined) on every backend, for padded and concatenated targets, empty
targets, frames past a sample's input length, and alignments that cannot exist (zero_infinity).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn
from core_tables import load_core_module




parity = load_core_module("torch_parity_table")
R = np.random.default_rng(3)
LOGITS = R.standard_normal((7, 3, 5))
PADDED = np.array([[1, 2, 2], [3, 1, 0], [4, 4, 4]])
CONCAT = np.array([1, 2, 2, 3, 4, 4, 4])


def _case(name, targets, input_lengths, target_lengths, reduction="mean", zero_infinity=True, logits=LOGITS):
    def ours(z):
        return nn.ctc_loss(rg.log_softmax(z, axis=-1), rg.constant(targets), input_lengths, target_lengths,
                           reduction=reduction, zero_infinity=zero_infinity)

    def theirs(t):
        return TF.ctc_loss(torch.log_softmax(t, -1), torch.as_tensor(targets), torch.as_tensor(input_lengths),
                           torch.as_tensor(target_lengths), reduction=reduction, zero_infinity=zero_infinity)
    return parity.Case(name, [logits], ours, theirs)


CASES = [
    _case("ctc_mean", PADDED, [7, 5, 7], [3, 2, 3]),
    _case("ctc_sum_empty_target", PADDED, [7, 6, 7], [3, 0, 3], "sum"),
    _case("ctc_none_impossible", PADDED, [7, 5, 3], [3, 2, 3], "none"),  # 4,4,4 needs 5 frames
    _case("ctc_concatenated", CONCAT, [7, 7, 6], [3, 1, 3], "none"),
    _case("ctc_unbatched", PADDED[0], 7, 3, "sum", logits=LOGITS[:, 0]),
    # without zero_infinity an impossible sample's loss is inf and its gradient NaN on its own frames
    # (t < input length), 0 on the rest; the other samples keep finite gradients
    *[_case(f"ctc_{reduction}_impossible_nan_gradient", PADDED, [7, 5, 3], [3, 2, 3], reduction, zero_infinity=False)
      for reduction in ("none", "mean", "sum")],
    _case("ctc_unbatched_impossible", PADDED[2], 4, 3, "sum", zero_infinity=False, logits=LOGITS[:, 2]),
]


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_ctc_loss_matches_torch(backend):
    parity.check_cases(CASES, backend)


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_impossible_alignment_gradient_is_nan_on_its_frames_or_zero(backend, zero_infinity):
    dt = np.float64 if backend == "reference" else np.float32
    x = rg.input(LOGITS.shape, dt, name="x")
    loss = nn.CTCLoss(reduction="sum", zero_infinity=zero_infinity)(rg.log_softmax(x, axis=-1), rg.constant(PADDED),
                                                                    [7, 5, 3], [3, 2, 3])
    (g,) = rg.grad(loss, [x])
    value, grad = rg.function([x], [loss, g], backend=backend)(LOGITS.astype(dt))
    assert np.isfinite(grad[:, :2]).all()
    if zero_infinity:
        assert np.isfinite(value) and (grad[:, 2] == 0).all()
    else:
        assert np.isinf(value) and np.isnan(grad[:3, 2]).all() and (grad[3:, 2] == 0).all()


def test_impossible_alignment_is_inf_without_zero_infinity():
    lp = rg.constant(torch.log_softmax(torch.tensor(LOGITS), -1).numpy())
    got = np.asarray(nn.CTCLoss(reduction="none")(lp, rg.constant(PADDED), [7, 5, 3], [3, 2, 3]))
    assert np.isinf(got[2]) and np.isfinite(got[:2]).all()


def test_mistakes_are_named_errors():
    lp = rg.input((5, 2, 4), name="lp")
    with pytest.raises(rg.RustyASGError, match="one entry per sample"):
        nn.ctc_loss(lp, rg.constant(np.ones((2, 2), np.int64)), [5, 5, 5], [2, 2])
    with pytest.raises(rg.RustyASGError, match="blank 4"):
        nn.ctc_loss(lp, rg.constant(np.ones((2, 2), np.int64)), [5, 5], [2, 2], blank=4)
