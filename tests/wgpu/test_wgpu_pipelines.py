"""Pipeline cache, uniform blocks, and dispatches beyond 65535 workgroups."""

import numpy as np
import pytest

from rustyasg.wgpu.pipelines import (
    LINEAR_WORKGROUP_WGSL, KernelLaunch, PipelineCache, UniformLayout, split_workgroups, uniform_buffer,
)


@pytest.mark.parametrize("limit", [65535, 7, 2])
def test_split_workgroups_covers_count_within_limits(limit):
    for count in [1, 2, limit - 1, limit, limit + 1, limit * limit, limit * limit + 3, limit**3 - 1, 100_003]:
        if count > limit**3:
            continue
        x, y, z = split_workgroups(count, limit)
        assert max(x, y, z) <= limit
        assert x * y * z >= count
        assert x * y * z - count < x * y  # less than one z-slice of waste


def test_split_workgroups_too_many():
    with pytest.raises(ValueError, match="exceed"):
        split_workgroups(8**3 + 1, 8)


def test_uniform_layout_pack_and_struct():
    lay = UniformLayout([("n", "u32"), ("alpha", "f32"), ("k", "i32")])
    data = lay.pack(n=7, alpha=0.25, k=-3)
    assert len(data) == 16 and lay.offset_of("k") == 8
    assert np.frombuffer(data[:4], np.uint32)[0] == 7
    assert np.frombuffer(data[4:8], np.float32)[0] == 0.25
    assert np.frombuffer(data[8:12], np.int32)[0] == -3
    assert lay.wgsl_struct("P") == "struct P { n: u32, alpha: f32, k: i32, }"
    with pytest.raises(KeyError, match="missing"):
        lay.pack(n=1, alpha=0.0)
    with pytest.raises(ValueError, match="f64"):
        UniformLayout([("x", "f64")])


FILL_IDS = (
    "struct P { total: u32, }\n"
    "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n"
    "@group(0) @binding(1) var<uniform> p: P;\n"
    + LINEAR_WORKGROUP_WGSL
    + "@compute @workgroup_size(64)\n"
    "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
    "        @builtin(local_invocation_index) lid: u32) {\n"
    "    let g = linear_workgroup(wid, nwg) * 64u + lid;\n"
    "    if (g >= p.total) { return; }\n"
    "    out[g] = out[g] + g + 1u;\n"
    "}\n"
)


def test_pipeline_cache_by_source(ctx):
    cache = PipelineCache(ctx)
    p1 = cache.get(FILL_IDS)
    p2 = cache.get(FILL_IDS)
    assert p1 is p2 and cache.misses == 1 and cache.hits == 1 and len(cache) == 1
    assert cache.get(FILL_IDS + "\n") is not p1


@pytest.mark.parametrize("constant", ["bitcast<f32>(4286578688u)", "bitcast<f32>(0x7fc00001u)", "bitcast<f32>( 2139095040u )"])
def test_non_finite_constants_are_refused_on_every_implementation(ctx, constant):
    # naga accepts them, Tint (Dawn, browsers) does not: the cache refuses them everywhere.
    src = f"@compute @workgroup_size(1)\nfn main() {{ let x = {constant}; }}\n"
    with pytest.raises(RuntimeError, match="non-finite constant expressions.*f32_from_bits"):
        PipelineCache(ctx).get(src)
    PipelineCache(ctx).get(LINEAR_WORKGROUP_WGSL + src.replace(constant, "f32_from_bits(4286578688u)"))


@pytest.mark.parametrize("storage", ["f32", "f16"])
@pytest.mark.parametrize("value", [-np.inf, np.inf, np.nan, 1e5, -2.5])
def test_fill_with_any_value_builds_a_kernel_dawn_accepts(ctx, pool, readback, storage, value):
    from rustyasg.wgpu.kernels.api import STORAGES, KernelBuilder, TensorView
    from rustyasg.wgpu.kernels.movement_ops import fill_launch
    dtype = np.dtype(np.float32 if storage == "f32" else np.float16)
    kb = KernelBuilder(ctx)
    out = TensorView(pool.acquire(4 * 8), (8,), dtype, STORAGES[storage])
    fill_launch(kb, out, value).run()  # the pipeline cache refuses non-finite constants
    with np.errstate(over="ignore"):
        want = np.full(8, value, dtype)
    np.testing.assert_array_equal(readback.read_array(out.buffer, (8,), dtype), want)


def test_compile_error_shows_numbered_source(ctx):
    with pytest.raises(RuntimeError, match=r"(?s)failed to compile.*   2 \| fn main"):
        PipelineCache(ctx).get("@compute @workgroup_size(1)\nfn main() { let x: u32 = 1.5; }\n")


def test_dispatch_beyond_65535_workgroups_touches_each_element_once(ctx, pool, readback):
    total = 70_000 * 64 + 5  # 70,001 workgroups: needs a 2-D split
    out = pool.acquire(total * 4)
    ctx.queue.write_buffer(out, 0, np.zeros(total, np.uint32).tobytes())
    lay = UniformLayout([("total", "u32")])
    launch = KernelLaunch(ctx, PipelineCache(ctx).get(FILL_IDS), [out, uniform_buffer(ctx, lay.pack(total=total))],
                          -(-total // 64))
    assert launch.workgroups[1] > 1 and max(launch.workgroups) <= 65535
    launch.run()
    got = readback.read_array(out, (total,), np.uint32)
    # Each element incremented exactly once by exactly its own thread.
    np.testing.assert_array_equal(got, np.arange(1, total + 1, dtype=np.uint32))


def test_launch_update_uniforms(ctx, pool, readback):
    lay = UniformLayout([("total", "u32")])
    out = pool.acquire(1024)
    ctx.queue.write_buffer(out, 0, np.zeros(256, np.uint32).tobytes())
    ubuf = uniform_buffer(ctx, lay.pack(total=10))
    launch = KernelLaunch(ctx, PipelineCache(ctx).get(FILL_IDS), [out, ubuf], 4, uniforms=(lay, {"total": 10}))
    launch.run()
    launch.update_uniforms(total=20)
    launch.run()
    got = readback.read_array(out, (256,), np.uint32)
    ids = np.arange(1, 257, dtype=np.uint32)
    np.testing.assert_array_equal(got[:10], 2 * ids[:10])
    np.testing.assert_array_equal(got[10:20], ids[10:20])
    assert not got[20:].any()
