"""Optimizer behaviour beyond the update formulas: settings as variables, state dicts, groups, errors."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch

import rustyasg.core as rg
from rustyasg.nn import optim


def quadratic(rng, dtype=np.float64):
    """``loss = sum((A w - b)^2)`` over two parameters, with a symbolic input scale."""
    a, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    w = rg.variable(rng.normal(size=4).astype(dtype), name="w")
    c = rg.variable(rng.normal(size=3).astype(dtype), name="c")
    s = rg.input((), dtype, name="s")
    loss = rg.sum(rg.square(rg.constant(a, dtype) @ w * s - rg.constant(b, dtype) + c))
    return w, c, s, loss


def test_lr_changes_without_recompiling(rng, backend):
    w, c, s, loss = quadratic(rng, np.float32)
    opt = optim.SGD([w, c], lr=0.1)
    (gw,) = rg.grad(loss, [w])
    step = rg.function([s], gw, updates=opt.updates(loss), backend=backend)
    for lr in (0.1, 0.01, 0.5, 0.0):
        opt.param_groups[0]["lr"] = lr
        before = w.value()
        grad = step(np.float32(1.0))
        np.testing.assert_allclose(w.value(), before - np.float32(lr) * grad, rtol=1e-6, atol=1e-7)
    assert step.stats["compiles"] == 1


def test_betas_and_eps_are_variables_too(rng):
    w, c, s, loss = quadratic(rng)
    opt = optim.Adam([w, c], lr=0.1)
    step = rg.function([s], loss, updates=opt.updates(loss), backend="reference")
    step(1.0)
    opt.param_groups[0].update(betas=(0.5, 0.6), eps=1e-3)
    t = torch.optim.Adam([torch.zeros(1)], lr=0.1, betas=(0.5, 0.6), eps=1e-3)  # settings accepted by both
    assert opt.param_groups[0]["betas"] == t.param_groups[0]["betas"]
    step(1.0)
    assert step.stats["compiles"] == 1
    scal = opt.param_groups[0].scalar_variables()
    assert float(scal["one_minus_beta1"].value()) == 0.5 and float(scal["eps"].value()) == 1e-3
    assert not any(v.trainable for v in scal.values())


def test_structural_change_after_building_is_refused(rng):
    w, c, s, loss = quadratic(rng)
    opt = optim.SGD([w, c], lr=0.1)
    opt.updates(loss)
    with pytest.raises(ValueError, match="momentum.*updates\\(loss\\) again"):
        opt.param_groups[0]["momentum"] = 0.9
    assert opt.param_groups[0]["momentum"] == 0.0  # the refused value was rolled back
    opt.param_groups[0]["lr"] = 0.3  # a plain scalar is fine
    opt2 = optim.SGD([w, c], lr=0.1)
    opt2.param_groups[0]["momentum"] = 0.9  # before building, anything goes
    opt2.updates(loss)
    assert "momentum_buffer" in opt2.state[0]


def test_invalid_settings_raise_like_pytorch(rng):
    w, c, _, _ = quadratic(rng)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], nesterov=True)
    with pytest.raises(TypeError, match="momentm"):
        optim.SGD([w], momentm=0.9)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [w]}, {"params": [w, c]}])
    with pytest.raises(TypeError, match="only optimize rustyasg variables"):
        optim.SGD([np.zeros(3)])
    opt = optim.SGD([w])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.param_groups[0]["lr"] = -0.5
    with pytest.raises(ValueError, match="scalar tensor.*created at .*test_optim_api.py:"):
        opt.updates(rg.square(w))


def test_unconnected_parameter_is_left_alone(rng):
    w, c, s, loss = quadratic(rng)
    unused = rg.variable(np.ones(2), name="unused")
    opt = optim.Adam([w, unused, c], lr=0.1)
    upd = opt.updates(loss)
    assert all(k is not unused for k in upd)
    step = rg.function([s], loss, updates=upd, backend="reference")
    step(1.0)
    np.testing.assert_array_equal(unused.value(), np.ones(2))
    assert 1 not in opt.state  # PyTorch creates no state for a parameter without a gradient


def test_grads_argument_and_grad_norm_output(rng):
    w, c, s, loss = quadratic(rng)
    gw, gc = rg.grad(loss, [w, c])
    opt = optim.SGD([w, c], lr=0.1)
    upd = opt.updates(grads={w: gw * 2.0, c: None}, clip_grad_norm=1.0)
    step = rg.function([s], [opt.grad_norm, gw], updates=upd, backend="reference")
    c0, w0 = c.value(), w.value()
    norm, g = step(1.0)
    np.testing.assert_allclose(norm, np.linalg.norm(2 * g), rtol=1e-12)
    np.testing.assert_allclose(w.value(), w0 - 0.1 * 2 * g * min(1.0, 1.0 / (norm + 1e-6)), rtol=1e-12)
    np.testing.assert_array_equal(c.value(), c0)


def test_state_dict_roundtrip_continues_identically(rng):
    def build(values):
        w = rg.variable(values[0], name="w")
        c = rg.variable(values[1], name="c")
        s = rg.input((), "float64", name="s")
        loss = rg.sum(rg.square(rg.constant(np.arange(12.0).reshape(3, 4) / 10) @ w * s + c - 1.0))
        opt = optim.RMSprop([{"params": [w], "centered": True}, {"params": [c], "momentum": 0.5}], lr=0.01)
        return [w, c], opt, rg.function([s], loss, updates=opt.updates(loss), backend="reference")

    init = [rng.normal(size=4), rng.normal(size=3)]
    params, opt, step = build(init)
    for i in range(6):
        step(1.0 + 0.1 * i)
    straight = [p.value() for p in params]

    params, opt, step = build(init)
    for i in range(3):
        step(1.0 + 0.1 * i)
    saved_params, saved = [p.value() for p in params], opt.state_dict()
    assert sorted(saved["state"][0]) == ["grad_avg", "square_avg", "step"]
    assert sorted(saved["state"][1]) == ["momentum_buffer", "square_avg", "step"]
    assert saved["param_groups"][1]["params"] == [1] and saved["param_groups"][1]["momentum"] == 0.5

    params, opt, step = build(saved_params)
    opt.load_state_dict(saved)
    for i in range(3, 6):
        step(1.0 + 0.1 * i)
    for a, b in zip(params, straight):
        np.testing.assert_array_equal(a.value(), b)


def test_loads_a_pytorch_state_dict(rng):
    """A torch.optim.Adam/SGD state dict (tensors converted by load_state_dict) continues identically."""
    a, b = rng.normal(size=(5, 3)), rng.normal(size=5)
    for name, settings in (("Adam", {"lr": 0.05, "amsgrad": True}), ("SGD", {"lr": 0.05, "momentum": 0.9})):
        tw = torch.tensor(rng.normal(size=3), requires_grad=True)
        topt = getattr(torch.optim, name)([tw], **settings)

        def torch_step(topt=topt, tw=tw):
            topt.zero_grad()
            loss = ((torch.tensor(a) @ tw - torch.tensor(b)) ** 2).sum()
            loss.backward()
            topt.step()

        for _ in range(3):
            torch_step()
        w = rg.variable(tw.detach().numpy().copy(), name="w")
        opt = getattr(optim, name)([w], **settings)
        opt.load_state_dict(topt.state_dict())
        loss = rg.sum(rg.square(rg.constant(a) @ w - rg.constant(b)))
        step = rg.function([], loss, updates=opt.updates(loss), backend="reference")
        for _ in range(3):
            torch_step()
            step()
            np.testing.assert_allclose(w.value(), tw.detach().numpy(), rtol=1e-12)


def test_load_state_dict_errors_name_index_key_and_shapes(rng):
    w, c, s, loss = quadratic(rng)
    opt = optim.Adam([w, c])
    rg.function([s], loss, updates=opt.updates(loss), backend="reference")(1.0)
    sd = opt.state_dict()
    sd["state"][1]["exp_avg"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg'\] has shape \(7,\).*'c' needs \(3,\)"):
        optim.Adam([w, c]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameters saved, 1 here"):
        optim.Adam([w]).load_state_dict(opt.state_dict())


def test_mixed_dtype_group(rng):
    w32 = rg.variable(rng.normal(size=3).astype(np.float32), name="w32")
    w64 = rg.variable(rng.normal(size=3), name="w64")
    loss = rg.sum(rg.square(w32)) + rg.sum(rg.square(w64))
    opt = optim.AdamW([w32, w64], lr=0.1)
    assert opt.param_groups[0].dtype == np.float64
    upd = opt.updates(loss)
    assert upd[w32].dtype == np.float32 and upd[w64].dtype == np.float64
    before = w32.value()
    rg.function([], loss, updates=upd, backend="reference")()
    assert w32.value().dtype == np.float32 and np.all(np.abs(w32.value()) < np.abs(before))


@pytest.mark.parametrize("name", ['rustyasg.nn.optim', 'rustyasg.nn.optim.optimizer', 'rustyasg.nn.optim.param_group', 'rustyasg.nn.optim.sgd', 'rustyasg.nn.optim.adam', 'rustyasg.nn.optim.rmsprop'])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
