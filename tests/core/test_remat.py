"""Gradient checkpointing and memory budgets: recomputation changes memory, never values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.backend_api import planned_peak_bytes

P = rg.checkpoint_policies


def _net(policy=None, depth=6, width=48, batch=128, seed=0, dtype="float32", dropout=False):
    """A deep MLP (gelu, layer norm); with ``policy`` each layer is a checkpoint region."""
    rng = np.random.default_rng(seed)
    x = rg.input((batch, width), dtype, name="x")
    ws = [rg.variable((rng.standard_normal((width, width)) * 0.3).astype(dtype), name=f"w{i}") for i in range(depth)]
    gamma = rg.variable(np.ones(width, dtype), name="gamma")
    beta = rg.variable(np.zeros(width, dtype), name="beta")
    seed = rg.constant(np.int64(7))

    def layer(h, w):
        z = rg.checkpoint_name(h @ w, "pre")
        a = rg.gelu(rg.layer_norm(z, gamma, beta))
        return rg.dropout(a, 0.1, seed) if dropout else a

    h = x
    for w in ws:
        h = (rg.checkpoint(layer, policy=policy) if policy is not None else layer)(h, w)
    loss = rg.mean(h * h)
    return x, ws, rg.grad(loss, ws), rng.standard_normal((batch, width)).astype(dtype)


POLICIES = [P.nothing_saveable, P.dots_saveable, P.save_only_these_names("pre"), P.everything_saveable]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_checkpointed_gradients_equal_plain_float64(policy):
    x, ws, plain, x0 = _net(None, dtype="float64")
    want = rg.function([x], plain, backend="reference")(x0)
    x, ws, grads, x0 = _net(policy, dtype="float64")
    f = rg.function([x], grads, backend="reference")
    for g, w in zip(f(x0), want):
        np.testing.assert_array_equal(g, w)
    recomputed = f.report(x0)["remat"]["recomputed"]
    assert (recomputed == 0) == (policy is P.everything_saveable)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_checkpointed_gradients_are_bit_identical_float32(backend):
    """The recomputed values run the same kernels on the same inputs: bit for bit."""
    x, ws, plain, x0 = _net(None)
    want = rg.function([x], plain, backend=backend)(x0)
    x, ws, grads, x0 = _net(P.nothing_saveable)
    got = rg.function([x], grads, backend=backend)(x0)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_random_ops_are_not_recomputed():
    """Dropout inside a region: a second draw would differ; the mask is kept, gradients equal."""
    x, ws, plain, x0 = _net(None, dropout=True, dtype="float64")
    want = rg.function([x], plain, backend="reference")(x0)
    x, ws, grads, x0 = _net(P.nothing_saveable, dropout=True, dtype="float64")
    f = rg.function([x], grads, backend="reference")
    program = f.lower(x0)
    assert sum(i.op.startswith("random") for i in program.instrs) == sum(
        i.op.startswith("random") for i in rg.function([x], grads, backend="reference",
                                                         disabled_passes=("rematerialize",)).lower(x0).instrs)
    for g, w in zip(f(x0), want):
        np.testing.assert_array_equal(g, w)


def test_checkpointing_lowers_the_planned_peak():
    x, ws, plain, x0 = _net(None)
    fp = planned_peak_bytes(rg.function([x], plain, backend="cpu").compile(x0))
    x, ws, grads, x0 = _net(P.nothing_saveable)
    f = rg.function([x], grads, backend="cpu")
    assert planned_peak_bytes(f.compile(x0)) < fp
    r = f.report(x0)["remat"]
    assert r["recomputed"] > 0 and r["peak_after"] < r["peak_before"]


@pytest.mark.parametrize("solver", ["milp", "greedy"])
@pytest.mark.parametrize("fraction", [0.7, 0.5])
def test_memory_budget_is_met_on_the_cpu_planners_peak(solver, fraction):
    x, ws, grads, x0 = _net(None)
    plain = rg.function([x], grads, backend="cpu")
    want = plain(x0)
    peak = planned_peak_bytes(plain.compile(x0))
    budget = int(peak * fraction)
    f = rg.function([x], grads, backend="cpu", memory_budget=budget, memory_solver=solver)
    exe = f.compile(x0)
    assert planned_peak_bytes(exe) <= budget
    r = f.report(x0)["remat"]
    assert r["fits"] and r["planned_peak"] <= budget and r["solver"] == solver and r["memory_budget"] == budget
    for g, w in zip(f(x0), want):
        np.testing.assert_array_equal(g, w)


def test_the_exact_solver_recomputes_no_more_than_greedy():
    """Same budget: the 0/1 program's recompute cost is at most the greedy rule's."""
    x, ws, grads, x0 = _net(None, depth=8)
    budget = int(planned_peak_bytes(rg.function([x], grads, backend="cpu").compile(x0)) * 0.6)
    costs = {}
    for solver in ("milp", "greedy"):
        r = rg.function([x], grads, backend="cpu", memory_budget=budget, memory_solver=solver).report(x0)["remat"]
        assert r["fits"]
        costs[solver] = r["recompute_cost"]
    assert costs["milp"] <= costs["greedy"] * 1.0001


def test_an_unreachable_budget_warns_and_says_how_far_it_got():
    x, ws, grads, x0 = _net(None, depth=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = rg.function([x], grads, backend="cpu", memory_budget=1024)
        f.compile(x0)
    msgs = [str(w.message) for w in caught if "memory_budget=1024" in str(w.message)]
    assert msgs and "cannot be met" in msgs[0] and "lowest planned peak" in msgs[0]
    assert f.report(x0)["remat"]["fits"] is False


def test_bad_budget_arguments_are_clear_errors():
    x, ws, grads, x0 = _net(None, depth=2)
    with pytest.raises(ValueError, match="positive number of bytes"):
        rg.function([x], grads, memory_budget=-5)
    with pytest.raises(ValueError, match="'milp'"):
        rg.function([x], grads, memory_budget=10 ** 6, memory_solver="anneal")
    with pytest.raises(TypeError, match="checkpoint_policies"):
        rg.checkpoint(lambda h: h, policy="nothing")


def test_nn_checkpoint_module_keeps_state_dict_and_gradients():
    import rustyasg.nn as nn
    from rustyasg.nn.zoo.gpt import GPT, GPTConfig

    def grads(checkpointed):
        rg.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=16))
        names = sorted(model.state_dict())
        if checkpointed:
            for block in model.transformer.h:
                nn.checkpoint_module(block)
        idx = rg.input((2, 8), "int64", name="idx")
        loss = rg.mean(model(idx) ** 2)
        f = rg.function([idx], rg.grad(loss, model.parameters()), backend="cpu")
        tokens = np.arange(16, dtype=np.int64).reshape(2, 8) % 32
        return names, sorted(model.state_dict()), f(tokens), f.report(tokens)

    names0, _, want, _ = grads(False)
    names1, after, got, report = grads(True)
    assert names0 == names1 == after
    assert report["remat"]["recomputed"] > 0
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_checkpointed_convolutions_do_not_share_columns_with_the_forward_pass():
    """cpu: without checkpointing conv2d and its weight gradient share one im2col, kept from the
    forward pass to the backward one; with checkpoint regions each convolution builds its columns
    in its own scratch, so checkpointing conv blocks lowers the planned peak; gradients agree."""
    import rustyasg.nn as nn

    def build(checkpointed):
        rg.manual_seed(0)
        blocks = [nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
                  for c in (3, 8, 8)]
        if checkpointed:
            for b in blocks:
                nn.checkpoint_module(b)
        model = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(8 * 16 * 16, 4))
        x = rg.input((4, 3, 16, 16), name="x")
        loss = rg.mean(model(x) ** 2)
        return rg.function([x], rg.grad(loss, model.parameters()), backend="cpu")

    x0 = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    plain, ckpt = build(False), build(True)
    assert planned_peak_bytes(ckpt.compile(x0)) < planned_peak_bytes(plain.compile(x0))
    for g, w in zip(ckpt(x0), plain(x0)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def _convnet(budget_fraction=None):
    """A small residual convnet (3x3 convolutions, batch norm) whose im2col columns, kept from
    the forward pass to the weight gradients, would be most of the cpu plan's peak."""
    import rustyasg.nn as nn

    rg.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            return rg.relu(x + self.b2(self.c2(rg.relu(self.b1(self.c1(x))))))

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), Block(16), Block(16), nn.Flatten(),
                          nn.Linear(16 * 16 * 16, 4))
    x = rg.input((8, 3, 16, 16), name="x")
    loss = rg.mean(model(x) ** 2)
    return x, rg.grad(loss, model.parameters())


def test_a_convnets_half_budget_fits_with_the_same_gradients():
    """cpu: a budget of half the plain step's planned peak is met (the convolutions' columns are
    step-local scratch under a budget, not kept to the backward pass) and the gradients are
    the plain step's, bit for bit (the same GEMMs on the same columns)."""
    x0 = np.random.default_rng(1).standard_normal((8, 3, 16, 16)).astype(np.float32)
    x, grads = _convnet()
    plain = rg.function([x], grads, backend="cpu")
    peak = planned_peak_bytes(plain.compile(x0))
    budget = peak // 2
    x, grads = _convnet()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "cannot be met" would fail here
        small = rg.function([x], grads, backend="cpu", memory_budget=budget)
        exe = small.compile(x0)
    assert planned_peak_bytes(exe) <= budget
    r = exe.program.report["remat"]
    assert r["fits"] and r["planned_peak"] <= budget
    # no column matrix outlives its convolution: every one is a step's scratch
    assert not any(i.op == "cpu.im2col" for i in exe.program.instrs)
    got, want = small(x0), plain(x0)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
