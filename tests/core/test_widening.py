"""Storing 16-bit floats and computing in float32 (``compute_widened``): where the widenings go.

A GEMM's transposed operand is widened at its contiguous root (the transpose replayed on the
float32 copy), GEMMs close together share one widened copy, far-apart readers each make their
own (a shared copy would live from the forward pass to the backward), and the numbers are those
of float32 arithmetic on the 16-bit values.
"""

from __future__ import annotations

import numpy as np

import rustyasg.core as rg
from rustyasg.core.compile.fusion import ELEMENTWISE, plan_units
from rustyasg.core.compile.precision import SHARE_WINDOW, compute_widened
from rustyasg.core.program import lower


def _widened(inputs, outputs, signature):
    p = compute_widened(lower(inputs, outputs, [], signature))
    by_id = p.by_id()
    casts = [i for i in p.instrs if i.op == "cast" and str(i.dtype) == "float32"]
    return p, by_id, casts


def test_a_transposed_gemm_operand_is_widened_at_its_root():
    a = rg.input((5, 3), "bfloat16", name="a")
    b = rg.input((5, 4), "bfloat16", name="b")
    p, by_id, casts = _widened([a, b], [a.T @ b], [((5, 3), rg.bfloat16), ((5, 4), rg.bfloat16)])
    assert sorted(by_id[c.inputs[0]].op for c in casts) == ["input", "input"]
    mm = next(i for i in p.instrs if i.op == "matmul")
    left = by_id[mm.inputs[0]]
    assert left.op == "transpose" and str(left.dtype) == "float32" and by_id[left.inputs[0]] in casts


def test_close_gemms_share_a_widening_and_distant_ones_do_not():
    g = rg.input((6, 5), "bfloat16", name="g")      # y = x @ w: its gradient, weight and input
    w = rg.input((4, 5), "bfloat16", name="w")
    x = rg.input((6, 4), "bfloat16", name="x")
    dx, dw = g @ w.T, x.T @ g                       # a linear layer's two backward GEMMs
    sig = [((6, 5), rg.bfloat16), ((4, 5), rg.bfloat16), ((6, 4), rg.bfloat16)]
    _, by_id, casts = _widened([g, w, x], [dx, dw], sig)
    assert [by_id[c.inputs[0]].name for c in casts].count("g") == 1

    far = g @ w.T
    for _ in range(SHARE_WINDOW + 4):  # a long run of unrelated work between the two readers
        far = rg.tanh(far) * 1.5
    _, by_id, casts = _widened([g, w, x], [far.T @ g], sig)
    assert [by_id[c.inputs[0]].name for c in casts].count("g") == 2


def test_widened_gemms_give_float32_arithmetic_on_the_bfloat16_values():
    rng = np.random.default_rng(0)
    g = rg.input((7, 4), "bfloat16", name="g")
    w = rg.input((5, 4), "bfloat16", name="w")
    f = rg.function([g, w], [(g @ w.T).astype("float32"), (g.T @ g).astype("float32")], backend="cpu")
    gv = rng.standard_normal((7, 4)).astype(rg.bfloat16)
    wv = rng.standard_normal((5, 4)).astype(rg.bfloat16)
    g32, w32 = gv.astype(np.float32), wv.astype(np.float32)
    for got, want in zip(f(gv, wv), (g32 @ w32.T, g32.T @ g32)):
        np.testing.assert_array_equal(got, want.astype(rg.bfloat16).astype(np.float32))


def test_a_far_producer_group_is_closed_to_instructions_with_a_reach():
    # 1 -> 2 (elementwise chain), then 10 unrelated instructions, then 13 reads 2's value
    order = list(range(1, 14))
    inputs = {1: [0], 2: [1], **{k: [100 + k] for k in range(3, 13)}, 13: [2]}
    shapes = {k: (4,) for k in order}
    role = lambda i: ELEMENTWISE  # noqa: E731
    joined = plan_units(order, inputs.get, role, shapes.get, roots=order)
    far = plan_units(order, inputs.get, role, shapes.get, roots=order, reach_of=lambda i: 4 if i == 13 else None)
    group_of = lambda plan, i: next(u.members for u in plan.units if i in u.members)  # noqa: E731
    assert group_of(joined, 13) == [1, 2, 13]
    assert 13 not in group_of(far, 2)


def test_a_cast_of_a_transposed_value_casts_the_root_and_transposes_the_result():
    # a linear layer under autocast: cast(W.T) -- a fused kernel would first copy the strided view
    w = rg.input((4, 5), "float32", name="w")
    x = rg.input((3, 5), "bfloat16", name="x")
    y = x @ w.T.astype("bfloat16")
    p, by_id, _ = _widened([w, x], [y], [((4, 5), rg.float32), ((3, 5), rg.bfloat16)])
    narrowing = next(i for i in p.instrs if i.op == "cast" and str(i.dtype) == "bfloat16")
    assert by_id[narrowing.inputs[0]].name == "w" and narrowing.shape == (4, 5)
    rng = np.random.default_rng(1)
    wv, xv = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(rg.bfloat16)
    got = rg.function([w, x], y.astype("float32"), backend="cpu")(wv, xv)
    want = xv.astype(np.float32) @ wv.T.astype(rg.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(got, want.astype(rg.bfloat16).astype(np.float32))
