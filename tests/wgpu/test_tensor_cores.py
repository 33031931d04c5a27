"""f16 matmul on tensor cores (Dawn's subgroup matrices) and its fallback.

Two halves:

* every tensor-core kernel the generator can emit is compiled by Dawn's WGSL compiler (Tint) on
  Dawn's Null adapter, which needs no GPU: syntax, types, and the subgroup-uniformity rules
  that naga does not check; a kernel that breaks those rules is refused (the check can fail);
* f16 products through :class:`MatmulPlanner` are checked against float64 on the adapter the
  tests run on: lavapipe (CI) takes the generic f16 kernel; a GPU under ``RUSTYASG_WEBGPU=dawn``
  takes the tensor-core kernels, each config in turn (``benchmarks/gpu/run_suite.sh`` runs this
  file there).
"""

from __future__ import annotations

import numpy as np
import pytest

from rustyasg.core.registry import OPS
from rustyasg.wgpu import webgpu
from rustyasg.wgpu.buffers import upload
from rustyasg.wgpu.kernels.matmul_tc import (ALL_CONFIGS, CANDIDATES, TRIAL_CANDIDATES, TcMatmulPlanner,
                                              heuristic_config, tensor_core_shape)
from rustyasg.wgpu.kernels.matmul_tc_wgsl import FragmentShape, TcConfig, generate_tc_matmul_wgsl
from rustyasg.wgpu.kernels.matmul_wgsl import GATHERS, MatmulLayout
from rustyasg.wgpu.kernels.nn_conv_geometry import conv_geometry

from conftest import rel_err

LAYOUTS = [(ta, tb, vec) for ta in (False, True) for tb in (False, True) for vec in (False, True)]
H100_FRAGMENT = FragmentShape(16, 16, 16, 32)  # what Dawn reports on NVIDIA Hopper


@pytest.mark.parametrize("out", ["f32", "f16"])
@pytest.mark.parametrize("ta,tb,vec", LAYOUTS)
def test_every_tensor_core_kernel_compiles_in_dawn(dawn_null, ta, tb, vec, out):
    lay = MatmulLayout(trans_a=ta, trans_b=tb, vec_a=vec, vec_b=vec, vec_c=False, dtype="f16")
    for name, cfg in ALL_CONFIGS.items():  # the trial configs too: CI compiles everything the GPU may tune
        src = webgpu.adapt_wgsl(generate_tc_matmul_wgsl(cfg, lay, H100_FRAGMENT, out), "dawn")
        dawn_null.create_shader_module(code=src, label=name)  # raises on any WGSL error


@pytest.mark.parametrize("gather,tb", sorted(GATHERS))
def test_every_gathering_tensor_core_kernel_compiles_in_dawn(dawn_null, gather, tb):
    staged = [name for name, cfg in ALL_CONFIGS.items() if cfg.staged]
    assert len(staged) > 10
    for vec_a in (False, True):
        lay = MatmulLayout(trans_b=tb, vec_a=vec_a, vec_b=False, vec_c=False, dtype="f16", gather_b=gather,
                           gather_kernel=(3, 2))
        for name in staged:
            for out in ("f32", "f16"):
                src = generate_tc_matmul_wgsl(ALL_CONFIGS[name], lay, H100_FRAGMENT, out)
                assert "gather_at(gb0, Bbase" in src and "alias GatherT = f16;" in src
                dawn_null.create_shader_module(code=webgpu.adapt_wgsl(src, "dawn"), label=f"{name} {gather}")


def test_a_gathered_b_needs_staged_tiles():
    lay = MatmulLayout(vec_b=False, dtype="f16", gather_b="columns", gather_kernel=(3, 3))
    with pytest.raises(ValueError, match="cannot gather B"):
        generate_tc_matmul_wgsl(TcConfig(64, 64, 16, 2, 2, staged=False), lay, H100_FRAGMENT)
    with pytest.raises(ValueError, match="element by element"):
        generate_tc_matmul_wgsl(TcConfig(), MatmulLayout(dtype="f16", gather_b="columns", gather_kernel=(3, 3)),
                                H100_FRAGMENT)
    planner = TcMatmulPlanner.__new__(TcMatmulPlanner)
    planner.frag, planner.names = H100_FRAGMENT, list(CANDIDATES)
    assert any(not ALL_CONFIGS[n].staged for n in planner.runnable(256, 256, 64))
    assert planner.runnable(256, 256, 64, gathered=True) == [n for n in CANDIDATES if CANDIDATES[n].staged]


def test_a_small_config_builds_a_whole_pipeline_in_dawn(dawn_null):
    # Null's limits: 16 KiB of workgroup memory, workgroups a multiple of 128 invocations.
    cfg = TcConfig(64, 32, 16, 2, 2)
    assert not cfg.problems(H100_FRAGMENT, 256, 16384)
    for staged in (True, False):
        src = generate_tc_matmul_wgsl(TcConfig(64, 32, 16, 2, 2, staged), MatmulLayout(dtype="f16"), H100_FRAGMENT)
        module = dawn_null.create_shader_module(code=webgpu.adapt_wgsl(src, "dawn"))
        dawn_null.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})


def test_dawn_refuses_fragment_offsets_that_are_not_subgroup_uniform(dawn_null):
    src = generate_tc_matmul_wgsl(TcConfig(64, 32, 16, 2, 2), MatmulLayout(dtype="f16"), H100_FRAGMENT)
    # The subgroup index from local_invocation_index is not provably uniform per subgroup.
    broken = src.replace("@builtin(subgroup_id) sg: u32", "@builtin(subgroup_size) sgs: u32")
    broken = broken.replace("let wm0 =", "let sg = lid / sgs;\n    let wm0 =")
    assert broken != src
    with pytest.raises(Exception, match="uniform"):
        dawn_null.create_shader_module(code=webgpu.adapt_wgsl(broken, "dawn"))


def test_fragment_shape_comes_from_dawns_configurations():
    configs = [
        {"component_type": "f16", "result_component_type": "f16", "m": 16, "n": 16, "k": 16,
         "min_subgroup_size": 32, "max_subgroup_size": 32},
        {"component_type": "f16", "result_component_type": "f32", "m": 16, "n": 8, "k": 16,
         "min_subgroup_size": 32, "max_subgroup_size": 32},
        {"component_type": "f16", "result_component_type": "f32", "m": 16, "n": 16, "k": 16,
         "min_subgroup_size": 32, "max_subgroup_size": 32},
        {"component_type": "f16", "result_component_type": "f32", "m": 32, "n": 32, "k": 32,
         "min_subgroup_size": 32, "max_subgroup_size": 64},  # varying subgroup size: unusable
    ]
    assert FragmentShape.from_configs(configs) == FragmentShape(16, 16, 16, 32)
    assert FragmentShape.from_configs(configs[:1]) is None  # no f32 accumulation
    assert FragmentShape.from_configs([]) is None


def test_config_problems_name_the_limit():
    big = TcConfig(256, 256, 32, 4, 4)
    assert any("workgroup memory" in p for p in big.problems(H100_FRAGMENT, 1024, 49152))
    assert any("fragment" in p for p in TcConfig(48, 64, 16, 2, 2).problems(H100_FRAGMENT))
    assert any("invocations" in p for p in TcConfig(256, 256, 16, 8, 8, False).problems(H100_FRAGMENT, 1024))
    with pytest.raises(ValueError, match="fragment"):
        generate_tc_matmul_wgsl(TcConfig(48, 64, 16, 2, 2), MatmulLayout(dtype="f16"), H100_FRAGMENT)
    with pytest.raises(ValueError, match="f32 or f16"):
        generate_tc_matmul_wgsl(TcConfig(), MatmulLayout(dtype="f16"), H100_FRAGMENT, "bf16")


def test_one_staged_buffer_halves_the_tiles_and_adds_a_barrier_before_the_next_store():
    double, single = TcConfig(128, 256, 32, 2, 4), TcConfig(128, 256, 32, 2, 4, buffers=1)
    assert single.name == "tc128x256x32_2x4_sb" and double.name == "tc128x256x32_2x4"
    scratch = 4 * single.subgroups * H100_FRAGMENT.m * H100_FRAGMENT.n
    assert double.shared_bytes(H100_FRAGMENT) - scratch == 2 * (single.shared_bytes(H100_FRAGMENT) - scratch)
    assert double.problems(H100_FRAGMENT, 1024, 49152) and not single.problems(H100_FRAGMENT, 1024, 49152)
    assert any("buffers" in p for p in TcConfig(buffers=3).problems(H100_FRAGMENT))
    lay = MatmulLayout(dtype="f16")
    one, two = (generate_tc_matmul_wgsl(c, lay, H100_FRAGMENT) for c in (single, double))
    loop = lambda src: src[src.index("for (var kt"):]  # noqa: E731
    assert loop(one).count("workgroupBarrier()") == loop(two).count("workgroupBarrier()") + 1
    assert "let cur = 0u;" in one and "let cur = kt % 2u;" in two
    # Checked and timed on an H100: a candidate of the tuner; the others only when asked.
    assert single.name in CANDIDATES and not set(TRIAL_CANDIDATES) & set(CANDIDATES)


def test_heuristic_prefers_fast_big_tiles_when_they_fill_the_gpu():
    names = list(CANDIDATES)
    assert heuristic_config(4096, 4096, 1, names) == names[0]
    small = heuristic_config(64, 64, 1, names)
    assert CANDIDATES[small].bm * CANDIDATES[small].bn == min(c.bm * c.bn for c in CANDIDATES.values())


def test_tensor_cores_can_be_switched_off(ctx, monkeypatch):
    monkeypatch.setenv("RUSTYASG_WGPU_TENSOR_CORES", "0")
    assert tensor_core_shape(ctx) is None
    assert TcMatmulPlanner.for_context(ctx) is None


CASES = [  # M, N, K, trans_a, trans_b, batch
    (256, 256, 64, False, False, 1),
    (100, 72, 50, False, False, 1),
    (257, 129, 96, True, False, 1),
    (96, 200, 130, False, True, 2),
    (128, 256, 48, True, True, 3),
    (1, 7, 3, False, False, 1),
]
EVERY_CONFIG = {(256, 256, 64), (100, 72, 50)}  # an aligned and an edge problem: every config's kernel runs


def _f16_product(ctx, planner, pool, readback, a, b, M, N, K, ta, tb, batch, config=None, out="f16"):
    ab, bb = upload(ctx, a, pool), upload(ctx, b, pool)
    cb = pool.acquire(max(batch * M * N * (2 if out == "f16" else 4), 4))
    if config is None:
        launch = planner.launch(ab, bb, cb, M, N, K, batch=batch, trans_a=ta, trans_b=tb, dtype="f16")
    else:
        launch = planner.tensor_cores.launch(ab, bb, cb, M, N, K, batch=batch, trans_a=ta, trans_b=tb,
                                             out_dtype=out, config=config)
    launch.run()
    got = readback.read_array(cb, (batch, M, N), np.float16 if out == "f16" else np.float32)
    return launch, got


@pytest.mark.parametrize("M,N,K,ta,tb,batch", CASES)
def test_f16_matmul_matches_float64(ctx, planner, pool, readback, rng, M, N, K, ta, tb, batch):
    a = rng.standard_normal((batch, K, M) if ta else (batch, M, K)).astype(np.float16)
    b = rng.standard_normal((batch, N, K) if tb else (batch, K, N)).astype(np.float16)
    a64 = np.swapaxes(a, 1, 2).astype(np.float64) if ta else a.astype(np.float64)
    b64 = np.swapaxes(b, 1, 2).astype(np.float64) if tb else b.astype(np.float64)
    ref = a64 @ b64
    tensor_cores = tensor_core_shape(ctx) is not None
    assert (planner.tensor_cores is not None) == tensor_cores
    launch, got = _f16_product(ctx, planner, pool, readback, a, b, M, N, K, ta, tb, batch)
    assert rel_err(got, ref) < 2e-3  # f16 output rounding
    if planner.tensor_cores is None:
        assert not launch.label.startswith("matmul tc")
        return
    assert launch.label.startswith("matmul tc")
    if (M, N, K) not in EVERY_CONFIG:
        return
    for name in planner.tensor_cores.runnable(M, N, K):  # every config the tuner may pick
        for out in ("f32", "f16"):
            _, got = _f16_product(ctx, planner, pool, readback, a, b, M, N, K, ta, tb, batch, name, out)
            assert rel_err(got, ref) < (1e-4 if out == "f32" else 2e-3), (name, out)


def test_every_staged_config_gathers_a_convolutions_columns(ctx, planner, pool, readback, rng):
    # The forward implicit GEMM y[n] = W @ cols(x[n]) (padding, dilation, a stride, ragged tiles), with
    # each config the tuner may pick; without tensor cores, the generic f16 kernel gathers. The other
    # gathers run through the conv kernels' tests.
    x = rng.standard_normal((3, 6, 13, 11)).astype(np.float16)
    w = rng.standard_normal((20, 6, 3, 3)).astype(np.float16)
    attrs = OPS["conv2d"].check_attrs({"stride": (1, 2), "padding": (1, 2), "dilation": (2, 1)})
    ref = OPS["conv2d"].reference(x.astype(np.float64), w.astype(np.float64), **attrs)
    geo = conv_geometry(x.shape, w.shape, ref.shape[2:], attrs)
    xb, wb, yb = upload(ctx, x, pool), upload(ctx, w, pool), pool.acquire(ref.size * 2)
    args = dict(batch=geo.N, inner_batch=1, outer_strides=(0, x[0].size, ref[0].size), lda=geo.K, ldc=geo.P,
                stride_a=geo.Og * geo.K, stride_b=x[0].size, stride_c=ref[0].size, gather=("columns", geo.uniforms(0)))
    if planner.tensor_cores is None:
        launch = planner.launch(wb, xb, yb, geo.Og, geo.P, geo.K, dtype="f16", **args)
        assert launch.label.endswith("(implicit conv)") and not launch.label.startswith("matmul tc")
        launch.run()
        assert rel_err(readback.read_array(yb, ref.shape, np.float16), ref) < 2e-3
        return
    names = planner.tensor_cores.runnable(geo.Og, geo.P, geo.K, gathered=True)
    assert names and all(ALL_CONFIGS[n].staged for n in names)
    for name in names:
        launch = planner.tensor_cores.launch(wb, xb, yb, geo.Og, geo.P, geo.K, out_dtype="f16", config=name, **args)
        assert launch.label == f"matmul {name} (implicit conv)"
        launch.run()
        assert rel_err(readback.read_array(yb, ref.shape, np.float16), ref) < 2e-3, name
