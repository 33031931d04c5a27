"""``cpu_attention_share``: the fused attention's forward + lse, and its gradients, each as one kernel.

Every graph here is checked twice: how it lowers (which attention instructions are left) and
what it computes, against the float64 reference backend (the kernels themselves are tested
in depth in ``test_attention_kernels.py``, whose training graphs go through this pass too).
"""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.cpu import threads

from test_attention_kernels import assert_matches

SHAPES = {"q": (2, 3, 9, 4), "k": (2, 3, 11, 4), "v": (2, 3, 11, 5), "g": (2, 3, 9, 5)}


def _attention_ops(f, feed):
    return [i.op for i in f.lower(*feed).instrs if "attention" in i.op]


def _check(build, feed, want_ops, rtol=1e-5):
    """Lower ``build()``'s function on the cpu, compare the ops it keeps and its results with the reference."""
    inputs, outputs = build("float32")
    f = rg.function(inputs, outputs, backend="cpu")
    assert _attention_ops(f, feed) == want_ops
    got = f(*feed)
    ref_inputs, ref_outputs = build("float64")
    with np.errstate(all="ignore"):
        want = rg.function(ref_inputs, ref_outputs, backend="reference")(
            *(a.astype(np.float64) if a.dtype.kind == "f" else a for a in feed))
    for g, w in zip(got, want):
        assert_matches(g, w, rtol)
    return got


def _feed(rng, names="qkvg", keep=False):
    arrays = [rng.standard_normal(SHAPES[n]).astype(np.float32) for n in names]
    if keep:
        mask = rng.random((2, 3, 11)) < 0.6
        mask[..., 0] = True
        arrays.append(mask)
    return arrays


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_keep", [False, True])
def test_a_training_step_runs_two_attention_kernels(causal, with_keep, rng):
    def build(dtype):
        q, k, v, g = (rg.input(SHAPES[n], dtype, name=n) for n in "qkvg")
        keep = [rg.input((2, 3, 11), "bool", name="keep")] if with_keep else []
        y = rg.attention(q, k, v, *keep, scale=0.6, causal=causal)
        return [q, k, v, g, *keep], [y, *rg.grad((y * g).sum(), [q, k, v])]

    _check(build, _feed(rng, keep=with_keep), ["cpu.attention_with_lse", "cpu.attention_grads"])


@pytest.mark.parametrize("wrt", [("q",), ("v",), ("k", "v"), ("q", "v")])
def test_gradients_of_some_operands(wrt, rng):
    """One gradient keeps its own op (the others go to scratch); two share a kernel, the third packed unasked."""
    def build(dtype):
        q, k, v, g = (rg.input(SHAPES[n], dtype, name=n) for n in "qkvg")
        y = rg.attention(q, k, v, causal=True)
        wanted = [dict(zip("qkv", (q, k, v)))[w] for w in wrt]
        return [q, k, v, g], rg.grad((y * g).sum(), wanted)

    backward = ["attention_backward"] if len(wrt) == 1 else ["cpu.attention_grads"]
    _check(build, _feed(rng), ["cpu.attention_with_lse"] + backward)


def test_an_lse_with_other_operands_or_attributes_keeps_its_own_kernel(rng):
    def build(dtype):
        q, k, v = (rg.input(SHAPES[n], dtype, name=n) for n in "qkv")
        y = rg.attention(q, k, v, scale=0.5, causal=True)
        return [q, k, v], [y, rg.attention_lse(q, k, scale=0.7, causal=True), rg.attention_lse(q, k, scale=0.5),
                           rg.attention_lse(k, k, scale=0.5, causal=True)]

    _check(build, _feed(rng, "qkv"), ["attention", "attention_lse", "attention_lse", "attention_lse"])


def test_an_lse_computed_before_the_forward_shares_its_kernel_when_the_values_exist(rng):
    def build(v_first):
        def graph(dtype):
            q, k, v = (rg.input(SHAPES[n], dtype, name=n) for n in "qkv")
            lse, y = rg.attention_lse(q, k, scale=0.5, causal=True), rg.attention(q, k, v, scale=0.5, causal=True)
            # instructions are lowered in the outputs' order: tanh(v) first makes v exist before the lse
            return [q, k, v], ([rg.tanh(v)] if v_first else []) + [lse, y]
        return graph

    feed = _feed(rng, "qkv")
    _check(build(True), feed, ["cpu.attention_with_lse"])
    _check(build(False), feed, ["attention_lse", "attention"])  # v does not exist yet where the lse runs


def test_two_attention_blocks_each_share_their_own(rng):
    def build(dtype):
        q, k, v, g = (rg.input(SHAPES[n], dtype, name=n) for n in "qkvg")
        h = rg.attention(q, k, v, causal=True)
        y = rg.attention(h, rg.tanh(h), h, scale=0.4)  # a second block on the first's output
        return [q, k, v, g], [y, *rg.grad((y * g).sum(), [q, k, v])]

    feed = _feed(rng)
    _check(build, feed, ["cpu.attention_with_lse"] * 2 + ["cpu.attention_grads"] * 2, rtol=2e-5)


def test_packed_results_are_views_and_the_step_has_three_kernels(rng):
    q, k, v, g = (rg.input(SHAPES[n], "float32", name=n) for n in "qkvg")
    y = rg.attention(q, k, v, causal=True)
    f = rg.function([q, k, v, g], [y, *rg.grad((y * g).sum(), [q, k, v])], backend="cpu")
    exe = f.compile(*_feed(rng))
    labels = [line.split("(")[0] for line in exe.describe().splitlines()]
    assert labels == ["numba.attention_with_lse", "fused[mul,sum]", "numba.attention_grads"]
    assert exe.memory_report()["copies"] == 0


def test_sixteen_bit_and_float64_steps_share_after_widening(rng):
    x = rng.standard_normal((2, 7, 4))

    def graph(dtype):
        inp = rg.input(x.shape, dtype, name="x")
        y = rg.attention(inp, inp, inp, causal=True)
        return [inp], [y, *rg.grad(y.astype("float32").sum(), [inp])]

    ref = rg.function(*graph("float64"), backend="reference")
    for dtype, rtol in (("float16", 3e-3), ("bfloat16", 2e-2), ("float64", 1e-12)):
        f = rg.function(*graph(dtype), backend="cpu")
        a = x.astype(rg.bfloat16 if dtype == "bfloat16" else dtype)
        assert _attention_ops(f, [a]) == ["cpu.attention_with_lse", "cpu.attention_grads"]
        want = ref(np.asarray(a, np.float64))  # the rounded operands, exactly
        for g, w in zip(f(a), want):
            assert_matches(np.asarray(g, np.float64), w, rtol, dtype)


def test_the_shared_kernels_split_across_threads_give_the_same_bits(rng, monkeypatch):
    q, k, v, g = (rg.input(SHAPES[n], "float32", name=n) for n in "qkvg")
    y = rg.attention(q, k, v, causal=True)
    outputs = [y, *rg.grad((y * g).sum(), [q, k, v])]
    feed = _feed(rng)
    one = rg.function([q, k, v, g], outputs, backend="cpu")(*feed)
    monkeypatch.setenv("RUSTYASG_CPU_THREADS", "2")
    monkeypatch.setattr(threads, "MIN_WORK", 0)
    two = rg.function([q, k, v, g], outputs, backend="cpu")(*feed)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
