"""Schedulers against torch.optim.lr_scheduler, and schedules driving a compiled step without recompiling."""

from __future__ import annotations

import doctest
import importlib
import json
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as T

import rustyasg.core as rg
from rustyasg.nn import optim, schedulers as S

STEPS = 40
BASES = (0.1, 0.03)  # two param groups with their own base rates


def our_lrs(make, steps=STEPS):
    ws = [rg.variable(np.zeros(2), name=f"w{i}") for i in range(len(BASES))]
    opt = optim.SGD([{"params": [w], "lr": lr} for w, lr in zip(ws, BASES)], momentum=0.9)
    sched = make(opt)
    out = [sched.get_last_lr()]
    for _ in range(steps):
        sched.step()
        out.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == out[-1]
    return np.array(out)


def torch_lrs(make, steps=STEPS):
    ps = [torch.zeros(2, requires_grad=True) for _ in BASES]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, BASES)], momentum=0.9)
    sched = make(opt)
    out = [sched.get_last_lr()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for _ in range(steps):
            sched.step()
            out.append(sched.get_last_lr())
    return np.array(out)


CASES = {
    "step": (lambda o: S.StepLR(o, step_size=7, gamma=0.3), lambda o: T.StepLR(o, step_size=7, gamma=0.3)),
    "exponential": (lambda o: S.ExponentialLR(o, gamma=0.93), lambda o: T.ExponentialLR(o, gamma=0.93)),
    "cosine": (lambda o: S.CosineAnnealingLR(o, T_max=15, eta_min=0.001),
               lambda o: T.CosineAnnealingLR(o, T_max=15, eta_min=0.001)),
    "cosine_no_floor": (lambda o: S.CosineAnnealingLR(o, T_max=12), lambda o: T.CosineAnnealingLR(o, T_max=12)),
    "linear_warmup": (lambda o: S.LinearWarmupLR(o, warmup_steps=9, start_factor=0.1),
                      lambda o: T.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=9)),
    "linear_decay": (lambda o: S.LinearWarmupLR(o, warmup_steps=6, start_factor=1.0, end_factor=0.25),
                     lambda o: T.LinearLR(o, start_factor=1.0, end_factor=0.25, total_iters=6)),
    "warmup_cosine": (lambda o: S.WarmupCosineAnnealingLR(o, warmup_steps=5, total_steps=STEPS, eta_min=0.002,
                                                          warmup_start_factor=0.2),
                      lambda o: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.2, total_iters=5),
                                                   T.CosineAnnealingLR(o, T_max=STEPS - 5, eta_min=0.002)],
                                               milestones=[5])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_pytorch(name):
    ours, theirs = CASES[name]
    a, b = our_lrs(ours), torch_lrs(theirs)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15)
    assert len(np.unique(np.round(a[:, 0], 12))) > 3  # the schedule really moves


def test_warmup_from_zero_and_hold_after_total():
    lrs = our_lrs(lambda o: S.WarmupCosineAnnealingLR(o, warmup_steps=4, total_steps=10, eta_min=0.01), steps=14)
    np.testing.assert_allclose(lrs[:5, 0], [0.0, 0.025, 0.05, 0.075, 0.1])
    np.testing.assert_allclose(lrs[10:, 0], 0.01)
    lrs = our_lrs(lambda o: S.LinearWarmupLR(o, warmup_steps=4), steps=6)
    np.testing.assert_allclose(lrs[:, 1], [0.0, 0.0075, 0.015, 0.0225, 0.03, 0.03, 0.03])


def test_compiled_step_follows_the_schedule_without_recompiling(backend):
    w = rg.variable(np.zeros(3, np.float32), name="w")
    g = np.array([1.0, -2.0, 0.5], np.float32)
    loss = rg.sum(w * rg.constant(g))  # constant gradient g: each step moves w by -lr * g
    opt = optim.SGD([w], lr=0.5)
    sched = S.WarmupCosineAnnealingLR(opt, warmup_steps=3, total_steps=12, eta_min=0.05)
    step = rg.function([], loss, updates=opt.updates(loss), backend=backend)
    expected = np.zeros(3)
    for _ in range(12):
        lr = sched.get_last_lr()[0]
        step()
        expected -= np.float32(lr) * g
        np.testing.assert_allclose(w.value(), expected, rtol=1e-5, atol=1e-6)
        sched.step()
    assert step.stats["compiles"] == 1


def test_state_dict_resumes_exactly():
    make = lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.01)  # noqa: E731
    straight = our_lrs(make, steps=8)

    w = rg.variable(np.zeros(2), name="w")
    v = rg.variable(np.zeros(2), name="v")
    opt = optim.SGD([{"params": [w], "lr": BASES[0]}, {"params": [v], "lr": BASES[1]}])
    sched = make(opt)
    for _ in range(3):
        sched.step()
    saved_sched = json.loads(json.dumps(sched.state_dict()))  # plain JSON-able values
    saved_opt = opt.state_dict()

    w2 = rg.variable(np.zeros(2), name="w")
    v2 = rg.variable(np.zeros(2), name="v")
    opt2 = optim.SGD([{"params": [w2], "lr": 9.0}, {"params": [v2], "lr": 9.0}])
    sched2 = make(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert [g["lr"] for g in opt2.param_groups] == list(straight[3])
    resumed = [sched2.get_last_lr()]
    for _ in range(5):
        sched2.step()
        resumed.append(sched2.get_last_lr())
    np.testing.assert_array_equal(np.array(resumed), straight[3:])


def test_bad_arguments():
    opt = optim.SGD([rg.variable(np.zeros(2), name="w")], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        S.WarmupCosineAnnealingLR(opt, warmup_steps=10, total_steps=10)
    with pytest.raises(KeyError, match="initial_lr"):
        S.ExponentialLR(optim.SGD([rg.variable(np.zeros(2), name="w")]), gamma=0.9, last_epoch=5)


@pytest.mark.parametrize("name", ['rustyasg.nn.schedulers'])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
