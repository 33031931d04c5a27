"""The wgpu executor: state stays on the GPU, one submit per call, simultaneous updates,
in-place writes, handles, fusion, buffer reuse, big dispatches, exact int64, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.backends import get_backend
from rustyasg.wgpu.backend import WgpuBackend
from rustyasg.wgpu.handles import GpuArray
from rustyasg.wgpu.kernels.api import KernelError


@pytest.fixture(scope="module")
def be():
    return get_backend("wgpu")


def _sgd_model(rng, n_in=7, n_hidden=9):
    w1 = rg.variable(rng.standard_normal((n_in, n_hidden)).astype(np.float32), name="w1")
    b1 = rg.variable(np.zeros(n_hidden, np.float32), name="b1")
    w2 = rg.variable(rng.standard_normal((n_hidden, 1)).astype(np.float32), name="w2")
    x = rg.input(("B", n_in), name="x")
    y = rg.input(("B", 1), name="y")
    loss = rg.mean((rg.relu(x @ w1 + b1) @ w2 - y) ** 2)
    params = [w1, b1, w2]
    grads = rg.grad(loss, params)
    return x, y, loss, params, {p: p - 0.05 * g for p, g in zip(params, grads)}


def test_state_stays_on_gpu_one_submit_per_call(be, rng):
    x, y, loss, params, updates = _sgd_model(rng)
    step = rg.function([x, y], loss, updates=updates, backend=be)
    data = [(rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((5, 1)).astype(np.float32))
            for _ in range(6)]
    step(*data[0], fetch=False)  # compile and upload the variables
    buffers = [be.resident(p).buffer for p in params]
    before = dict(be.stats)
    handles = [step(*d, fetch=False) for d in data[1:]]
    assert be.stats["submits"] - before.get("submits", 0) == 5, "one submit per compiled call"
    assert be.stats["readbacks"] - before.get("readbacks", 0) == 0, "nothing read back unless asked"
    assert be.stats["uploads"] - before.get("uploads", 0) == 0, "variables are not re-uploaded"
    assert [be.resident(p).buffer for p in params] == buffers, "variables keep their GPU buffers"
    assert all(p._owner is be for p in params)
    assert isinstance(handles[-1], GpuArray)
    # Reading the loss back is the step's only readback.
    assert np.isfinite(float(be.to_host(handles[-1])))
    assert be.stats["readbacks"] - before.get("readbacks", 0) == 1


def test_training_trajectory_matches_reference(be, rng):
    x, y, loss, params, updates = _sgd_model(rng)
    start = [p.value() for p in params]
    data = [(rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((5, 1)).astype(np.float32))
            for _ in range(4)]
    gpu = rg.function([x, y], loss, updates=updates, backend=be)
    got = [float(gpu(*d)) for d in data]
    got_params = [p.value() for p in params]
    for p, v in zip(params, start):
        p.assign(v)
    ref = rg.function([x, y], loss, updates=updates, backend="reference")
    want = [float(ref(*d)) for d in data]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    for g, p in zip(got_params, params):
        np.testing.assert_allclose(g, p.value(), rtol=1e-4, atol=1e-5)


def test_updates_are_simultaneous(be, rng):
    a0, b0 = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    a, b = rg.variable(a0, name="a"), rg.variable(b0, name="b")
    c = rg.variable(np.zeros(5, np.float32), name="c")
    f = rg.function([], [a * 1.0], updates={a: b, b: a, c: c + a * 2.0}, backend=be)
    out = f()[0]
    np.testing.assert_array_equal(out, a0)
    np.testing.assert_array_equal(a.value(), b0)
    np.testing.assert_array_equal(b.value(), a0)
    np.testing.assert_allclose(c.value(), 2 * a0, rtol=1e-6)


def test_swap_snapshots_are_planned_buffers(be, rng):
    """A swap needs the old values copied aside; those copies take buffers of the memory plan."""
    a, b = rg.variable(rng.standard_normal(300).astype(np.float32), name="a"), \
        rg.variable(rng.standard_normal(300).astype(np.float32), name="b")
    f = rg.function([], [rg.sum(a * b)], updates={a: b, b: a}, backend=be)
    exe = f.compile()
    memory = exe.program.plan.memory
    snaps = [k for k in memory.buffers if isinstance(k, tuple) and k[0] == "snapshot"]
    assert len(snaps) >= 1 and all(memory.buffers[k].nbytes == 300 * 4 for k in snaps)
    assert len(exe.plan.snapshot_copies) == len(snaps)
    assert exe.plan.plan_bytes == sum(memory.pool_sizes)
    a0, b0 = a.value(), b.value()
    for _ in range(3):  # swapped three times: a holds b's first value
        f()
    np.testing.assert_array_equal(a.value(), b0)
    np.testing.assert_array_equal(b.value(), a0)


def test_memory_slots_name_the_planned_buffer_or_the_variable_written(be, rng):
    x, y, loss, params, updates = _sgd_model(rng)
    step = rg.function([x, y], loss, updates=updates, backend=be)
    exe = step.compile(np.zeros((5, 7), np.float32), np.zeros((5, 1), np.float32))
    slots = be.memory_slots(exe)
    memory = exe.program.plan.memory
    in_place = [s for s in slots.values() if s.startswith("in place: variable ")]
    assert sorted(s.rsplit(" ", 1)[1] for s in in_place) == ["b1", "w1", "w2"]
    planned = {s for s in slots.values() if s.startswith("buffer ")}
    assert planned and {int(s.split()[1]) for s in planned} <= set(range(len(memory.pool_sizes)))
    for p in params:
        assert slots[p.id] == "resident variable (device buffer)"


def test_output_of_an_updated_variable_is_its_old_value(be, rng):
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    w = rg.variable(w0, name="w")
    f = rg.function([], [w, w.sum()], updates={w: w * 2.0}, backend=be)
    first, total = f()
    np.testing.assert_array_equal(first, w0)
    np.testing.assert_allclose(total, w0.sum(), rtol=1e-5)
    np.testing.assert_allclose(w.value(), 2 * w0, rtol=1e-6)


def test_fused_update_is_written_in_place(be, rng):
    x, y, loss, params, updates = _sgd_model(rng)
    step = rg.function([x, y], loss, updates=updates, backend=be)
    report = step.memory_report(np.zeros((5, 7), np.float32), np.zeros((5, 1), np.float32))
    assert report["in_place_updates"] == 3 and report["copied_updates"] == 0, report


def test_host_assign_rewrites_the_same_buffer(be, rng):
    w = rg.variable(rng.standard_normal(8).astype(np.float32), name="w")
    x = rg.input((8,), name="x")
    f = rg.function([x], (w * x).sum(), backend=be)
    ones = np.ones(8, np.float32)
    f(ones)
    buf = be.resident(w).buffer
    new = rng.standard_normal(8).astype(np.float32)
    w.assign(new)
    np.testing.assert_allclose(f(ones), new.sum(), rtol=1e-5)
    assert be.resident(w).buffer is buf and f.stats["compiles"] == 1


def test_an_elementwise_chain_is_one_kernel(be, rng):
    x = rg.input((64, 33), name="x")
    y = rg.input((33,), name="y")
    out = rg.tanh(rg.exp(x) * 2.0 + y) - rg.sigmoid(x) * y
    f = rg.function([x, y], out, backend=be)
    xv, yv = rng.standard_normal((64, 33)).astype(np.float32), rng.standard_normal(33).astype(np.float32)
    np.testing.assert_allclose(f(xv, yv), np.tanh(np.exp(xv) * 2 + yv) - yv / (1 + np.exp(-xv)), rtol=1e-5,
                               atol=1e-6)
    assert f.memory_report(xv, yv)["launches"] == 1


def test_dead_buffers_are_reused(be, rng):
    x = rg.input((32, 32), name="x")
    h = x
    for _ in range(12):
        h = rg.softmax(h @ x, axis=-1)  # matmul and softmax do not fuse: each result is a buffer
    f = rg.function([x], h, backend=be)
    xv = rng.standard_normal((32, 32)).astype(np.float32)
    ref = xv.astype(np.float64)
    for _ in range(12):
        z = ref @ xv
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        ref = z / z.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(f(xv), ref, rtol=1e-4, atol=1e-6)
    assert f.memory_report(xv)["plan_bytes"] <= 4 * 32 * 32 * 4, "24 intermediates must share a few buffers"


def test_more_than_65535_workgroups(be, rng):
    n = 65535 * 256 + 1001  # scalar (not vec4) path: more workgroups than one dimension allows
    x = rg.input((n,), name="x")
    rows = rg.input((70001, 3), name="rows")  # one workgroup per row
    f = rg.function([x, rows], [x * 3.0 + 1.0, rows.sum(axis=1)], backend=be)
    xv = rng.standard_normal(n).astype(np.float32)
    rv = rng.standard_normal((70001, 3)).astype(np.float32)
    a, s = f(xv, rv)
    np.testing.assert_allclose(a, xv * 3 + 1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s, rv.sum(axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,axes", [((3, 700), (1,)), ((4000, 6), (0,)), ((5, 300, 7), (1,)), ((2, 40000), (1,)),
                                        ((6, 5, 4, 3), (0, 2)), ((2, 3000), None)])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var", "logsumexp"])
def test_reductions_at_every_layout(be, rng, op, shape, axes):
    x = rg.input(shape, name="x")
    kw = {"correction": 1} if op == "var" else {}
    f = rg.function([x], getattr(rg, op)(x, axis=axes, **kw), backend=be)
    xv = rng.standard_normal(shape).astype(np.float32)
    want = rg.OPS[op].reference(xv.astype(np.float64), axis=axes, keepdims=False, **kw)
    np.testing.assert_allclose(f(xv), want, rtol=2e-4, atol=2e-4)


def test_argmax_first_index_on_ties(be):
    x = rg.input((4, 600), name="x")
    f = rg.function([x], [rg.argmax(x, axis=1), rg.argmin(x, axis=0)], backend=be)
    xv = np.zeros((4, 600), np.float32)
    xv[0, [17, 300, 599]] = 5.0
    xv[1, [598, 599]] = 1.0
    xv[2, 2] = -1.0
    am, an = f(xv)
    np.testing.assert_array_equal(am, np.argmax(xv, axis=1))
    np.testing.assert_array_equal(an, np.argmin(xv, axis=0))
    assert am.dtype == np.int64


def test_int64_arithmetic_is_exact(be, rng):
    big = rng.integers(-(1 << 62), 1 << 62, size=50)
    small = rng.integers(-(1 << 20), 1 << 20, size=50)
    a, b = rg.input((50,), "int64", name="a"), rg.input((50,), "int64", name="b")
    f = rg.function([a, b], [a + b, a - b, b * b, rg.maximum(a, b), a < b, rg.where(a > b, a, b), -a,
                             rg.abs(a), b // 7, b % 7], backend=be)
    got = f(big, small)
    want = [big + small, big - small, small * small, np.maximum(big, small), big < small,
            np.where(big > small, big, small), -big, np.abs(big), small // 7, small % 7]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_floor_division_and_modulo_all_signs(be, rng, dtype):
    a, b = rg.input((3000,), dtype, name="a"), rg.input((3000,), dtype, name="b")
    f = rg.function([a, b], [a // b, a % b, a // 7, a % -5], backend=be)
    av = rng.integers(-(1 << 30), 1 << 30, 3000).astype(dtype)
    bv = rng.integers(-1000, 1000, 3000).astype(dtype)
    bv[bv == 0] = 3
    av[:8] = [-998970, 998970, -7, 7, -1, 0, -14, 13]  # exact divisions and small negatives
    bv[:8] = 7
    for got, want in zip(f(av, bv), [av // bv, av % bv, av // 7, av % -5]):
        np.testing.assert_array_equal(got, want)


def test_rng_state_advances_on_the_gpu_and_matches_reference(be):
    seed = int(np.random.default_rng(7).integers(1 << 30))
    draws = {}
    for name in ("wgpu", "reference"):
        gen = rg.RNG(seed)
        f = rg.function([], [gen.uniform((3, 50), low=-1.0, high=3.0), gen.normal((101,))], backend=name)
        draws[name] = [f() for _ in range(3)]
        draws[name + " state"] = gen.state.value()
    assert draws["wgpu state"] == draws["reference state"] == (seed << 32) + 3
    for got, want in zip(draws["wgpu"], draws["reference"]):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=2e-5, atol=2e-5)
    assert not np.allclose(draws["wgpu"][0][0], draws["wgpu"][1][0]), "a new stream every step"


def test_outputs_are_device_handles_until_fetched(be, rng):
    x = rg.input((4,), name="x")
    f = rg.function([x], [x * 2.0, (x > 0)], backend=be)
    xv = rng.standard_normal(4).astype(np.float32)
    h, m = f(xv, fetch=False)
    assert isinstance(h, GpuArray) and h.shape == (4,)
    np.testing.assert_allclose(h.numpy(), 2 * xv)
    np.testing.assert_array_equal(be.to_host(m), xv > 0)
    assert be.to_host(m).dtype == np.bool_


def test_selected_by_environment_variable(monkeypatch):
    monkeypatch.setenv("RUSTYASG_BACKEND", "wgpu")
    assert isinstance(get_backend(), WgpuBackend)


def test_unsupported_kernel_case_names_op_and_line(be):
    a, b = rg.input((3, 4), "int32", name="a"), rg.input((4, 2), "int32", name="b")
    out = rg.matmul(a, b)
    f = rg.function([a, b], out, backend=be)
    with pytest.raises(KernelError, match=r"matmul \(wgpu\).*\n.*int32\(3, 4\).*\n.*test_executor.py"):
        f(np.ones((3, 4), np.int32), np.ones((4, 2), np.int32))


def test_no_adapter_gives_the_install_hint(monkeypatch):
    import wgpu

    import rustyasg.wgpu.device as device

    with pytest.raises(device.NoGpuAdapterError, match="matches no adapter"):
        WgpuBackend(adapter="no-such-adapter-anywhere")
    monkeypatch.setattr(wgpu.gpu, "enumerate_adapters_sync", lambda: [])
    with pytest.raises(device.NoGpuAdapterError, match="apt-get install mesa-vulkan-drivers"):
        device._context_for.__wrapped__("", False)  # uncached: the shared context stays as it is


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_long_k_matmul_is_split_and_exact(be, rng, ta, tb):
    M, K, N = 24, 2048, 40  # one output tile: K is sliced into partial products, then summed
    a = rg.input((K, M) if ta else (M, K), name="a")
    b = rg.input((N, K) if tb else (K, N), name="b")
    f = rg.function([a, b], rg.matmul(a.mT if ta else a, b.mT if tb else b), backend=be)
    av = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    bv = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    want = (av.T if ta else av).astype(np.float64) @ (bv.T if tb else bv)
    np.testing.assert_allclose(f(av, bv), want, rtol=1e-4, atol=1e-3)
    assert f.memory_report(av, bv)["launches"] == 2, "partial products and their sum"


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_long_k_float16_matmul_reads_its_operands_as_float16(be, ctx, rng, ta, tb):
    """One output tile of an f16 product: sliced over K only by the tensor-core kernels (f16 operands,
    float32 partials); the generic kernel has one storage type for operands and result, so without
    tensor cores the product is one launch (sliced through it, the f16 words were read as f32)."""
    from rustyasg.wgpu.kernels.matmul_tc import tensor_core_shape

    M, K, N = 24, 2048, 40
    a = rg.input((K, M) if ta else (M, K), "float16", name="a")
    b = rg.input((N, K) if tb else (K, N), "float16", name="b")
    f = rg.function([a, b], rg.matmul(a.mT if ta else a, b.mT if tb else b), backend=be)
    av = (rng.standard_normal((K, M) if ta else (M, K)) * 0.5).astype(np.float16)
    bv = (rng.standard_normal((N, K) if tb else (K, N)) * 0.5).astype(np.float16)
    want = (av.T if ta else av).astype(np.float64) @ (bv.T if tb else bv).astype(np.float64)
    got = f(av, bv)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=0, atol=2e-3 * np.abs(want).max())
    assert f.memory_report(av, bv)["launches"] == (2 if tensor_core_shape(ctx) is not None else 1)


MOVES = {
    "transpose (0,2,1,3)": lambda x: rg.transpose(x, axes=(0, 2, 1, 3)),
    "transpose (0,3,1,2)": lambda x: rg.transpose(x, axes=(0, 3, 1, 2)),
    "slice": lambda x: x[:, 1:3, ::-1, 4:12],
    "flip": lambda x: rg.flip(x, axes=(1, 3)),
    "pad": lambda x: rg.pad(x, pad_width=(0, 1, 2, 0, 0, 0, 4, 4), value=1.0),
    "concat": lambda x: rg.concat(x, x[:, :, :, :8], axis=3),
    "broadcast": lambda x: rg.broadcast_to(x[:, :1], shape=(2, 4, 3, 16)),
}


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "bool"])
@pytest.mark.parametrize("move", sorted(MOVES))
def test_movement_every_dtype_and_vector_path(be, rng, move, dtype):
    x = rg.input((2, 4, 3, 16), dtype, name="x")
    out = MOVES[move](x)
    f = rg.function([x], out, backend=be)
    xv = (rng.standard_normal((2, 4, 3, 16)) * 1e3)
    xv = (xv > 0) if dtype == "bool" else xv.astype(dtype)
    got = f(xv)
    want = rg.evaluate(MOVES[move](rg.constant(xv)), backend="reference")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_bool_mask_constant_keeps_the_fused_kernel_vectorized(be, rng):
    mask = np.tril(np.ones((16, 16), bool))
    s = rg.input((8, 16, 16), name="s")
    f = rg.function([s], rg.softmax(rg.where(rg.constant(mask), s, -np.inf), axis=-1), backend=be)
    sv = rng.standard_normal((8, 16, 16)).astype(np.float32)
    z = np.where(mask, sv, -np.inf)
    want = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(f(sv), want / want.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    fused = [launch for launch in f.compile(sv).launches if launch.label.startswith("fused")]
    assert [launch.workgroups for launch in fused] == [(2, 1, 1)], "2048 elements as 512 vec4s: 2 workgroups"


def test_tensor_beyond_the_binding_limit_is_a_clear_error(be):
    limit = be.ctx.limits["max-storage-buffer-binding-size"]
    n = limit // 4 + 1024
    x = rg.input((n,), name="x")
    out = rg.exp(x) * 2.0
    f = rg.function([x], out.sum(), backend=be)
    with pytest.raises(KernelError, match=r"max-storage-buffer-binding-size.*\n.*\n.*test_executor.py"):
        f.compile(np.zeros(n, np.float32))


@pytest.mark.parametrize("subgroups", ["1", "0"])
def test_row_reductions_with_and_without_subgroups(be, rng, monkeypatch, subgroups):
    monkeypatch.setenv("RUSTYASG_WGPU_SUBGROUPS", subgroups)
    x = rg.input((37, 1000), name="x")
    f = rg.function([x], [rg.sum(x, axis=1), rg.max(x, axis=1), rg.min(x, axis=1), rg.var(x, axis=1),
                          rg.logsumexp(x, axis=1), rg.softmax(x, axis=1), rg.mean(rg.reshape(x, shape=(-1,)))],
                    backend=be)
    xv = rng.standard_normal((37, 1000)).astype(np.float32)
    x64 = xv.astype(np.float64)
    e = np.exp(x64 - x64.max(1, keepdims=True))
    want = [x64.sum(1), x64.max(1), x64.min(1), x64.var(1, ddof=1),
            np.log(e.sum(1)) + x64.max(1), e / e.sum(1, keepdims=True), x64.mean()]
    for got, w in zip(f(xv), want):
        np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5)
