"""CPU graph rewrites: each one changes the program but never the numbers."""

from __future__ import annotations

import numpy as np

import rustyasg.core as rg


def _pair(inputs, outputs, pass_name):
    on = rg.function(inputs, outputs, backend="cpu")
    off = rg.function(inputs, outputs, backend="cpu", disabled_passes=(pass_name,))
    return on, off


def test_batched_weight_gradient_becomes_one_gemm(rng):
    x = rg.input((4, 5, 6), "float64", name="x")
    w = rg.variable(rng.standard_normal((6, 3)), name="w")
    loss = ((x @ w) ** 2).sum()
    (gw,) = rg.grad(loss, [w])
    on, off = _pair([x], gw, "cpu_matmul_batch_fold")
    xv = rng.standard_normal((4, 5, 6))
    ops_on = [i.op for i in on.lower(xv).instrs]
    ops_off = [i.op for i in off.lower(xv).instrs]
    assert "sum_to" in ops_off and "sum_to" not in ops_on
    assert all(len(i.shape) == 2 for i in on.lower(xv).instrs if i.op == "matmul" and i.id == on.lower(xv).outputs[0])
    np.testing.assert_allclose(on(xv), off(xv), rtol=1e-12)


def test_conv_forward_and_weight_gradient_share_one_im2col(rng):
    x = rg.input((2, 3, 8, 8), "float64", name="x")
    w = rg.variable(rng.standard_normal((4, 3, 3, 3)), name="w")
    y = rg.conv2d(x, w, padding=1)
    (gw,) = rg.grad((y * y).sum(), [w])
    on, off = _pair([x], [y, gw], "cpu_conv_im2col")
    xv = rng.standard_normal((2, 3, 8, 8))
    assert [i.op for i in on.lower(xv).instrs].count("cpu.im2col") == 1
    for a, b in zip(on(xv), off(xv)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_bfloat16_input_shares_its_columns_too(rng):
    # the forward conv and the weight gradient read two float32 widenings of one bfloat16 value
    x = rg.input((2, 3, 8, 8), "bfloat16", name="x")
    w = rg.variable(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), name="w")
    y = rg.conv2d(x, w.astype("bfloat16"), padding=1)
    (gw,) = rg.grad((y.astype("float32") ** 2).sum(), [w])
    on, off = _pair([x], [y, gw], "cpu_conv_im2col")
    xv = rng.standard_normal((2, 3, 8, 8)).astype(rg.bfloat16)
    ops = [i.op for i in on.lower(xv).instrs]
    assert ops.count("cpu.im2col") == 1 and ops.count("cpu.conv2d_gemm_weight") == 1
    for a, b in zip(on(xv), off(xv)):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_explicit_broadcasts_are_folded_into_elementwise_ops(rng):
    x, b = rg.input((6, 5), "float32", name="x"), rg.input((5,), "float32", name="b")
    y = rg.tanh(x * rg.broadcast_to(b, shape=(6, 5)))
    on, off = _pair([x, b], y, "cpu_broadcast_elim")
    xv, bv = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    assert "broadcast_to" in [i.op for i in off.lower(xv, bv).instrs]
    assert "broadcast_to" not in [i.op for i in on.lower(xv, bv).instrs]
    np.testing.assert_allclose(on(xv, bv), off(xv, bv), rtol=1e-6)


def test_a_needed_broadcast_is_read_inside_the_fused_loop(rng):
    x = rg.input((6, 5), "float32", name="x")
    cot = rg.input((6,), "float32", name="cot")
    (g,) = rg.grad(rg.sum(rg.sigmoid(x) * 3.0, axis=1), [x], grad_y=cot)
    f = rg.function([x, cot], g, backend="cpu")
    xv, cv = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    program = f.lower(xv, cv)
    (group,) = program.plan.groups
    members = group.members
    assert "broadcast_to" in [program.by_id()[m].op for m in members]
    exe = f.compile(xv, cv)
    assert exe.memory_report()["copies"] == 0 and len(exe.describe().splitlines()) == 1
    np.testing.assert_allclose(f(xv, cv), rg.function([x, cot], g, backend="reference")(xv, cv), rtol=1e-5)


def test_gradients_of_disjoint_slices_are_assembled_without_adds(rng):
    x = rg.input((3, 4, 5), "float64", name="x")
    parts = [x[0] * 2.0, rg.tanh(x[1]), x[2, 1:] ** 2]  # the last piece leaves x[2, 0] uncovered
    loss = sum((p * p).sum() for p in parts)
    (g,) = rg.grad(loss, [x])
    on, off = _pair([x], g, "cpu_slice_assemble")
    xv = rng.standard_normal((3, 4, 5))
    ops_on, ops_off = [i.op for i in on.lower(xv).instrs], [i.op for i in off.lower(xv).instrs]
    assert ops_off.count("slice_grad") == 3 and ops_on.count("cpu.assemble") == 1 and "slice_grad" not in ops_on
    np.testing.assert_allclose(on(xv), off(xv), rtol=1e-12)
    np.testing.assert_allclose(on(xv), rg.function([x], g, backend="reference")(xv), rtol=1e-12)


def test_overlapping_slices_are_left_alone(rng):
    x = rg.input((6,), "float64", name="x")
    (g,) = rg.grad((x[:4] ** 2).sum() + (x[2:] ** 3).sum(), [x])
    on = rg.function([x], g, backend="cpu")
    xv = rng.standard_normal(6)
    assert "cpu.assemble" not in [i.op for i in on.lower(xv).instrs]
    np.testing.assert_allclose(on(xv), rg.function([x], g, backend="reference")(xv), rtol=1e-12)
