"""Connectionist temporal classification loss (``torch.nn.functional.ctc_loss`` / ``torch.nn.CTCLoss``).

The forward (alpha) recursion of Graves et al. is unrolled over the static number of time
steps in log space. Targets are padded ``(N, S)`` or concatenated 1-D, as in PyTorch; the
per-sample ``input_lengths`` and ``target_lengths`` may be graph tensors: each sample's
recursion is frozen after its last frame, and its final states are read at its own target
length. Unreachable states hold a large negative number instead of ``-inf`` so that no
``-inf - -inf`` appears in values or gradients; a sample with no valid alignment gets
``inf`` and a NaN gradient on its frames (or 0 and a zero gradient with ``zero_infinity``),
as PyTorch.

Example:
    >>> import rustyasg.core as rg
    >>> lp = rg.input((6, 2, 5), name="log_probs")
    >>> tg = rg.input((2, 3), "int64", name="targets")
    >>> ctc_loss(lp, tg, [6, 5], [3, 2]).shape
    ()
"""

from __future__ import annotations

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from ..module import Module
from ._common import check_reduction, fail

__all__ = ["ctc_loss", "CTCLoss"]

_UNREACHABLE = -1e30  # "log 0" that stays finite; anything below _IMPOSSIBLE is treated as -inf
_IMPOSSIBLE = -1e29


def _lengths(v, n: int, what: str) -> Tensor:
    t = v if isinstance(v, Tensor) else rg.constant(np.asarray(v, np.int64))
    if tuple(t.shape) != (n,):
        fail("ctc_loss", f"{what} must have one entry per sample ({n}), got shape {tuple(t.shape)}", t)
    return t.astype("int64")


def _padded_targets(targets: Tensor, target_lengths, n: int) -> Tensor:
    """``(N, S)`` targets; concatenated 1-D targets are split by their (constant) lengths."""
    if targets.ndim == 2:
        return targets
    if isinstance(target_lengths, Tensor):
        if target_lengths.op != "constant":
            fail("ctc_loss", "concatenated 1-D targets need target_lengths known while the graph is built "
                             "(a list); pass padded (N, S) targets to give lengths as a tensor", targets)
        target_lengths = target_lengths.attrs["value"]
    lengths = np.asarray(target_lengths, np.int64).reshape(-1)
    width = max(int(lengths.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    index = np.minimum(starts[:, None] + np.arange(width)[None, :], max(int(lengths.sum()) - 1, 0))
    return rg.take(targets, rg.constant(index.astype(np.int64)), axis=0) if lengths.sum() else \
        rg.zeros((n, width), "int64")


def _lse(*terms: Tensor) -> Tensor:
    return rg.logsumexp(rg.stack(list(terms), axis=0), axis=0)


def _nan_gradient(log_probs: Tensor, frames: Tensor) -> Tensor:
    """Per sample 0, whose gradient is NaN at the ``(T, N, 1)`` ``frames`` of ``log_probs`` and 0 elsewhere.

    PyTorch's gradient of an impossible alignment's infinite loss is NaN on the sample's frames
    (``exp(alpha + beta + inf)``); here the frames' log-probabilities reach the loss through
    ``sqrt(w) * sqrt(w)`` with ``w = 0 * tanh(lp)``: the value is exactly 0 (``tanh`` keeps -inf
    log-probabilities finite), and the chain rule gives ``0 / 0`` at ``w = 0``.
    """
    w = rg.where(frames, rg.tanh(log_probs), 0.0) * 0.0
    return rg.sum(rg.sqrt(w) * rg.sqrt(w), axis=(0, 2))


@rg.builder()
def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """CTC loss of ``(T, N, C)`` log-probabilities (``(T, C)`` unbatched) against label sequences.

    ``reduction='mean'`` divides each sample's loss by its target length, then averages, as PyTorch.
    """
    check_reduction("ctc_loss", reduction)
    if log_probs.ndim == 2:
        log_probs = rg.unsqueeze(log_probs, 1)
        targets = rg.unsqueeze(targets, 0) if targets.ndim == 1 else targets
        input_lengths = [input_lengths] if np.ndim(input_lengths) == 0 else input_lengths
        target_lengths = [target_lengths] if np.ndim(target_lengths) == 0 else target_lengths
    if log_probs.ndim != 3:
        fail("ctc_loss", "log_probs must be (T, N, C) or (T, C)", log_probs)
    steps, n, classes = log_probs.shape
    if not isinstance(steps, int) or not isinstance(n, int):
        fail("ctc_loss", "the number of time steps and the batch size must be concrete (the recursion is unrolled)",
             log_probs)
    if not 0 <= blank < classes:
        fail("ctc_loss", f"blank {blank} is not a class index (C = {classes})", log_probs)
    targets = _padded_targets(targets, target_lengths, n).astype("int64")
    in_len, tg_len = _lengths(input_lengths, n, "input_lengths"), _lengths(target_lengths, n, "target_lengths")
    width = int(targets.shape[1])
    states = 2 * width + 1
    # Extended labels: blank, l1, blank, l2, ..., blank  -> (N, 2S+1)
    odd = np.arange(states) % 2 == 1
    label_of_state = np.clip((np.arange(states) - 1) // 2, 0, max(width - 1, 0))
    ext = rg.where(rg.constant(odd), rg.take(targets, rg.constant(label_of_state), axis=1) if width else blank, blank)
    lp = rg.take_along_dim(log_probs, rg.broadcast_to(rg.unsqueeze(ext, 0), shape=(steps, n, states)), 2)
    # A skip from s-2 is allowed into a label state that differs from the label two states back.
    prev2 = rg.pad(ext, (0, 0, 2, 0), value=blank)[:, :states]
    skip = rg.logical_and(rg.constant(odd & (np.arange(states) >= 2)), rg.not_equal(ext, prev2))
    neg = rg.constant(np.asarray(_UNREACHABLE, log_probs.dtype))
    start = rg.constant(np.arange(states) < 2)
    has_label = rg.unsqueeze(tg_len, 1) > 0
    first_ok = rg.logical_and(start, rg.logical_or(rg.constant(np.arange(states) == 0), has_label))
    alpha = rg.where(first_ok, lp[0], neg)
    for t in range(1, steps):
        stay = alpha
        step1 = rg.pad(alpha, (0, 0, 1, 0), value=_UNREACHABLE)[:, :states]
        step2 = rg.where(skip, rg.pad(alpha, (0, 0, 2, 0), value=_UNREACHABLE)[:, :states], neg)
        new = _lse(stay, step1, step2) + lp[t]
        alpha = rg.where(rg.unsqueeze(in_len > t, 1), new, alpha)
    last = rg.unsqueeze(2 * tg_len, 1)
    end_blank = rg.take_along_dim(alpha, last, 1)
    end_label = rg.where(rg.unsqueeze(tg_len, 1) > 0, rg.take_along_dim(alpha, rg.maximum(last - 1, 0), 1), neg)
    total = rg.squeeze(_lse(end_blank, end_label), 1)
    impossible = total < _IMPOSSIBLE
    loss = rg.where(impossible, np.inf, -total)
    if zero_infinity:
        loss = rg.where(impossible, 0.0, loss)
    else:
        frames = rg.logical_and(rg.unsqueeze(impossible, 0), rg.constant(np.arange(steps)[:, None]) < in_len)
        loss = loss + _nan_gradient(log_probs, rg.unsqueeze(frames, 2))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return rg.sum(loss)
    return rg.mean(loss / rg.maximum(tg_len, 1).astype(loss.dtype))


class CTCLoss(Module):
    """``torch.nn.CTCLoss``: ``forward(log_probs, targets, input_lengths, target_lengths)``."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__()
        check_reduction("CTCLoss", reduction)
        self.blank, self.reduction, self.zero_infinity = blank, reduction, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths) -> Tensor:
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                        self.zero_infinity)
