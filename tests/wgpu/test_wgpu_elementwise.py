"""Fused elementwise generator: every op, broadcasting, vec4 and scalar paths, uniforms."""

import numpy as np
import pytest

from rustyasg.wgpu.buffers import upload
from rustyasg.wgpu.kernels.elementwise import (
    OPS, ElementwisePlanner, ElementwiseSpec, EwOp, access_kind, broadcast_strides, collapse_dims,
    contiguous_strides, generate_elementwise_wgsl,
)
from rustyasg.wgpu.pipelines import PipelineCache

# Inputs inside each op's domain (log/sqrt need positive numbers, etc.).
POSITIVE = {"log", "sqrt", "rsqrt", "pow"}


def _inputs(rng, op, shape):
    x = rng.standard_normal(shape) * 2
    if op in POSITIVE:
        x = np.abs(x) + 0.1
    if op == "reciprocal" or op == "div":
        x = np.where(np.abs(x) < 0.1, 0.5, x)
    return x.astype(np.float32)


def _run(ctx, ew, pool, readback, spec, out_shape, arrays, scalars=None, offsets=None):
    inputs = []
    for i, name in enumerate(spec.inputs):
        arr = arrays[name]
        off = (offsets or {}).get(name, 0)
        data = np.concatenate([np.full(off, np.nan, np.float32), arr.ravel()]) if off else arr
        inputs.append((upload(ctx, data, pool), broadcast_strides(arr.shape, out_shape), off))
    numel = int(np.prod(out_shape))
    outs = [pool.acquire(max(numel, 1) * 4) for _ in spec.outputs]
    for o in outs:  # poison: an unwritten element shows up as NaN
        ctx.queue.write_buffer(o, 0, np.full(max(numel, 1), np.nan, np.float32).tobytes())
    launch = ew.launch(spec, out_shape, inputs, outs, scalars)
    launch.run()
    return launch, [readback.read_array(o, out_shape, np.float32) for o in outs]


@pytest.mark.parametrize("shape", [(1000,), (1003,)], ids=["vec4", "scalar"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_each_op_matches_numpy(ctx, ew, pool, readback, rng, op, shape):
    arity = OPS[op][0]
    names = ("x", "y", "z")[:arity]
    spec = ElementwiseSpec(names, (EwOp("r", op, names),), ("r",))
    arrays = {n: _inputs(rng, op, shape) for n in names}
    if op in ("mod", "floor_divide"):  # powers of two divide exactly in f32: no floor lands off by one
        arrays["y"] = rng.choice([0.25, 0.5, 2.0, 4.0], shape).astype(np.float32)
    if op == "log1p":
        arrays["x"] = np.abs(arrays["x"]) - 0.5  # inside (-1, inf), both sides of 0
    if op == "softplus":
        arrays["y"] = rng.uniform(0.5, 2.0, shape).astype(np.float32)  # beta
        arrays["z"] = np.full(shape, 20.0, np.float32)  # threshold
    if op == "isnan":
        arrays["x"][::7] = np.nan
    if op == "where":
        arrays["x"] = (arrays["x"] > 0).astype(np.float32)
    if op == "equal":
        arrays["y"][::3] = arrays["x"][::3]
    _, (got,) = _run(ctx, ew, pool, readback, spec, shape, arrays)
    ref = spec.evaluate_numpy(arrays)[0]
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6)



def test_tan_keeps_relative_precision_next_to_its_poles(ctx, ew, pool, readback, rng):
    # float32 inputs a few ulps from k*pi/2 (k odd), where the result is large and ill-conditioned in
    # x but exact in the float32 x itself; the float64 tan of that float32 is the reference. A
    # driver's sin/cos-based tan was 500 ulp off next to the pole at -pi/2 * 567 (H100, Dawn).
    def near_poles(k):
        pole = (k * np.pi / 2).astype(np.float32)
        steps = rng.integers(1, 5, len(k)) * rng.choice([-1, 1], len(k))
        x = pole.copy()
        for n in range(4):
            x = np.where(np.abs(steps) > n, np.nextafter(x, np.float32(np.inf) * np.sign(steps)), x)
        return np.concatenate([x, pole]).astype(np.float32)

    small = near_poles(rng.integers(-60, 60, 400) * 2 + 1)         # |x| < 190
    large = near_poles(rng.integers(-2600, 2600, 400) * 2 + 1)     # |x| < 8170
    wide = rng.uniform(-8000, 8000, 600).astype(np.float32)
    edges = np.float32([0.0, -0.0, 1e-30, -1e-30, 1.5e-45, 0.785398, -2.356194, 1e4, -3e5, np.inf, -np.inf, np.nan])
    x = np.concatenate([small, large, wide, edges]).astype(np.float32)
    spec = ElementwiseSpec(("x",), (EwOp("r", "tan", ("x",)),), ("r",))
    _, (got,) = _run(ctx, ew, pool, readback, spec, x.shape, {"x": x})
    with np.errstate(invalid="ignore"):
        ref = np.tan(x.astype(np.float64))
    n_small = len(small)
    np.testing.assert_allclose(got[:n_small], ref[:n_small], rtol=3e-6, atol=0)
    # Further out the reduced argument carries an absolute error of ~1e-11 (pi/4 in three float32
    # parts, times k): near a pole that is relative error of the result, tan' = 1 + tan^2 times it.
    body = slice(n_small, len(x) - 5)  # past 8192 the driver's tan stands (its own precision)
    bound = 3e-6 * np.abs(ref[body]) + 5e-11 * (1.0 + ref[body] ** 2)
    assert (np.abs(got[body] - ref[body]) <= bound).all(), np.max(np.abs(got[body] - ref[body]) / bound)
    np.testing.assert_array_equal(np.signbit(got[-12:-10]), [False, True])  # tan(+-0) = +-0
    assert np.isnan(got[-3:]).all()  # tan(+-inf) and tan(NaN) are NaN, as numpy's


def test_atanh_near_both_poles_keeps_relative_precision(ctx, ew, pool, readback, rng):
    # Within a few ulps of -1 and +1 the result is large and ill-conditioned in x, but exact in the
    # float32 x itself: the kernel must not lose digits on either side (atanh is odd).
    ulps = rng.integers(1, 1 << 16, 500)
    near = (1.0 - ulps * 2.0 ** -24).astype(np.float32)
    x = np.concatenate([near, -near, np.float32([0.0, -0.0, 1.0, -1.0, 1.5, -1.5, np.nan])])
    spec = ElementwiseSpec(("x",), (EwOp("r", "atanh", ("x",)),), ("r",))
    _, (got,) = _run(ctx, ew, pool, readback, spec, x.shape, {"x": x})
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.arctanh(x.astype(np.float64))
    np.testing.assert_allclose(got, ref, rtol=4e-6, atol=0)
    np.testing.assert_array_equal(np.signbit(got[-7:-3]), np.signbit(ref[-7:-3]))  # ±0 and ±inf

BROADCASTS = [
    ((4, 8), (8,), ()),            # bias row, scalar
    ((3, 5, 7), (5, 1), (7,)),     # inner-dim broadcast (strided0), scalar path
    ((2, 3, 4), (1, 3, 4), (2, 1, 4)),
    ((6, 12), (6, 1), (12,)),      # column broadcast in a vec4 kernel
    ((2, 1, 3), (2, 4, 3), (1,)),  # output broadcast from 1-sized input dim
    ((), (), ()),                  # 0-d
]


@pytest.mark.parametrize("out_shape,bshape,sshape", BROADCASTS)
def test_fused_dag_with_broadcast_scalars_and_two_outputs(ctx, ew, pool, readback, rng, out_shape, bshape, sshape):
    full = np.broadcast_shapes(out_shape, bshape, sshape)
    spec = ElementwiseSpec(
        ("x", "b", "s"),
        (EwOp("t", "add", ("x", "b")), EwOp("u", "mul", ("t", "$lr")), EwOp("v", "tanh", ("u",)),
         EwOp("w", "where", ("s", "v", 2.5)), EwOp("q", "sub", ("w", "$lr"))),
        ("q", "t"),
        scalars=("lr",),
    )
    arrays = {"x": rng.standard_normal(out_shape).astype(np.float32),
              "b": rng.standard_normal(bshape).astype(np.float32),
              "s": (rng.random(sshape) > 0.5).astype(np.float32)}
    _, got = _run(ctx, ew, pool, readback, spec, full, arrays, {"lr": 0.7})
    for g, r in zip(got, spec.evaluate_numpy(arrays, {"lr": 0.7})):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


def test_transposed_input_gather_path(ctx, ew, pool, readback, rng):
    # y is stored transposed: read with permuted strides (last stride != 0, 1).
    x = rng.standard_normal((6, 8)).astype(np.float32)
    yt = rng.standard_normal((8, 6)).astype(np.float32)
    xb, yb = upload(ctx, x, pool), upload(ctx, yt, pool)
    out = pool.acquire(48 * 4)
    spec = ElementwiseSpec(("x", "y"), (EwOp("z", "mul", ("x", "y")),), ("z",))
    ew.launch(spec, (6, 8), [(xb, (8, 1), 0), (yb, (1, 6), 0)], [out]).run()
    np.testing.assert_allclose(readback.read_array(out, (6, 8), np.float32), x * yt.T, rtol=1e-6)


def test_inputs_at_offsets(ctx, ew, pool, readback, rng):
    spec = ElementwiseSpec(("x", "y"), (EwOp("z", "add", ("x", "y")),), ("z",))
    arrays = {"x": rng.standard_normal((16,)).astype(np.float32), "y": rng.standard_normal((16,)).astype(np.float32)}
    for offsets in ({"x": 4, "y": 8}, {"x": 3}):  # aligned: vec4; misaligned: scalar
        _, (got,) = _run(ctx, ew, pool, readback, spec, (16,), arrays, offsets=offsets)
        np.testing.assert_allclose(got, arrays["x"] + arrays["y"], rtol=1e-6)


def test_one_pipeline_serves_many_shapes_and_scalars(ctx, pool, readback, rng):
    ew = ElementwisePlanner(ctx, PipelineCache(ctx))
    spec = ElementwiseSpec(("x",), (EwOp("y", "mul", ("x", "$k")),), ("y",), scalars=("k",))
    launches = []
    for n in (16, 64, 4096):
        x = rng.standard_normal(n).astype(np.float32)
        xb, yb = upload(ctx, x, pool), pool.acquire(n * 4)
        launch = ew.launch(spec, (n,), [(xb, (1,), 0)], [yb], {"k": 2.0})
        launch.run()
        np.testing.assert_allclose(readback.read_array(yb, (n,), np.float32), 2 * x, rtol=1e-6)
        launch.update_uniforms(c_k=-3.0)  # a new step's scalar: no recompilation
        launch.run()
        np.testing.assert_allclose(readback.read_array(yb, (n,), np.float32), -3 * x, rtol=1e-6)
        launches.append(launch)
    assert ew.pipelines.misses == 1 and len({id(l.pipeline) for l in launches}) == 1


def test_large_scalar_kernel_splits_dispatch(ctx, ew, pool, readback, rng):
    n = 65535 * 256 + 1001  # not a multiple of 4: one element per thread, > 65535 workgroups
    x = rng.standard_normal(n).astype(np.float32)
    spec = ElementwiseSpec(("x",), (EwOp("y", "neg", ("x",)),), ("y",))
    launch, (got,) = _run(ctx, ew, pool, readback, spec, (n,), {"x": x})
    assert launch.workgroups[1] > 1
    np.testing.assert_array_equal(got, -x)


def test_spec_validation_errors():
    with pytest.raises(ValueError, match="unknown"):
        ElementwiseSpec(("x",), (EwOp("y", "frobnicate", ("x",)),), ("y",)).validate()
    with pytest.raises(ValueError, match="takes 2 args"):
        ElementwiseSpec(("x",), (EwOp("y", "add", ("x",)),), ("y",)).validate()
    with pytest.raises(ValueError, match="before it is defined"):
        ElementwiseSpec(("x",), (EwOp("y", "add", ("x", "z")),), ("y",)).validate()
    with pytest.raises(ValueError, match="scalar"):
        ElementwiseSpec(("x",), (EwOp("y", "mul", ("x", "$lr")),), ("y",)).validate()
    with pytest.raises(ValueError, match="neither"):
        ElementwiseSpec(("x",), (), ("nope",)).validate()


def test_dim_collapsing_and_access_kinds():
    assert collapse_dims((2, 3, 4), [(12, 4, 1), (12, 4, 1)]) == ((24,), [(1,), (1,)])
    assert collapse_dims((2, 1, 4), [(4, 4, 1), (0, 0, 1)]) == ((2, 4), [(4, 1), (0, 1)])
    assert contiguous_strides(()) == () and broadcast_strides((4,), (3, 4)) == (0, 1)
    assert [access_kind((5, 4), s) for s in [(4, 1), (0, 0), (8, 1), (1, 0), (1, 5)]] == [
        "contig", "splat", "strided", "strided0", "gather"]
    with pytest.raises(ValueError, match="vec4"):
        generate_elementwise_wgsl(ElementwiseSpec(("x",), (), ("x",)), ("gather",), 2, vec=True)
