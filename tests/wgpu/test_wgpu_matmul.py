"""Matmul generator: odd shapes, transposes, batches, strides, tile configs, autotuning."""

import json

import numpy as np
import pytest

from rustyasg.wgpu.buffers import upload
from rustyasg.wgpu.kernels.autotune import CACHE_ENV, Autotuner, cache_dir
from rustyasg.wgpu.kernels.matmul import CANDIDATES, MatmulPlanner, heuristic_config, matmul_numpy, shape_class
from rustyasg.wgpu.kernels.matmul_wgsl import GATHERS, MatmulLayout, TileConfig, generate_matmul_wgsl

from conftest import rel_err

TOL = 1e-5  # float32 products of random normals land near 1e-7


def _operands(rng, batch, M, N, K, ta, tb):
    a = rng.standard_normal(batch + ((K, M) if ta else (M, K))).astype(np.float32)
    b = rng.standard_normal(batch + ((N, K) if tb else (K, N))).astype(np.float32)
    ref = np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b, dtype=np.float64)
    return a, b, ref


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 13, 5), (65, 129, 33), (128, 64, 256), (3, 200, 4)])
def test_matmul_odd_shapes_and_transposes(planner, rng, M, N, K, ta, tb):
    a, b, ref = _operands(rng, (), M, N, K, ta, tb)
    got = matmul_numpy(planner, a, b, ta, tb)
    assert got.shape == (M, N)
    assert rel_err(got, ref) < TOL


@pytest.mark.parametrize("config", list(CANDIDATES))
def test_every_tile_config_is_correct_on_edges_and_interior(planner, rng, config):
    cfg = CANDIDATES[config]
    # Two full tiles plus a ragged edge in each dimension, K not a tile multiple.
    M, N, K = 2 * cfg.bm + 3, 2 * cfg.bn + 5, 3 * cfg.bk + 1
    for ta, tb, dims in [(False, False, (M, N, K)), (True, True, (M, N, K)), (False, True, (2 * cfg.bm, 2 * cfg.bn, 4 * cfg.bk))]:
        a, b, ref = _operands(rng, (), *dims, ta, tb)
        assert rel_err(matmul_numpy(planner, a, b, ta, tb, config=config), ref) < TOL, (ta, tb, dims)


def test_batched_and_broadcast_batch(planner, rng):
    a, b, ref = _operands(rng, (2, 3), 7, 13, 5, False, False)
    assert rel_err(matmul_numpy(planner, a, b), ref) < TOL
    a, b, ref = _operands(rng, (4,), 33, 20, 16, False, True)
    b2 = b[0]  # one weight matrix shared by the whole batch (stride 0)
    ref2 = np.matmul(a, b2.T, dtype=np.float64)
    assert rel_err(matmul_numpy(planner, a, b2, trans_b=True), ref2) < TOL


def test_batch_beyond_65535_workgroups(planner, rng):
    a, b, ref = _operands(rng, (70_000,), 1, 2, 3, False, False)
    assert rel_err(matmul_numpy(planner, a, b, config="32x32x8_4x4"), ref) < TOL


def test_leading_dims_offsets_and_strides(ctx, planner, pool, readback, rng):
    # C[1:6, 2:9] = A[3:8, 1:5] @ B[2:6, 4:11] inside larger row-major buffers, batch of 2.
    big_a = rng.standard_normal((2, 10, 9)).astype(np.float32)
    big_b = rng.standard_normal((2, 8, 12)).astype(np.float32)
    c0 = np.full((2, 7, 11), -7.0, np.float32)
    abuf, bbuf, cbuf = upload(ctx, big_a, pool), upload(ctx, big_b, pool), upload(ctx, c0, pool)
    planner.launch(
        abuf, bbuf, cbuf, 5, 7, 4, batch=2, lda=9, ldb=12, ldc=11, stride_a=90, stride_b=96, stride_c=77,
        offset_a=3 * 9 + 1, offset_b=2 * 12 + 4, offset_c=1 * 11 + 2,
    ).run()
    got = readback.read_array(cbuf, (2, 7, 11), np.float32)
    ref = c0.astype(np.float64)
    ref[:, 1:6, 2:9] = np.matmul(big_a[:, 3:8, 1:5], big_b[:, 2:6, 4:11], dtype=np.float64)
    assert rel_err(got, ref) < TOL
    untouched = np.ones_like(got, bool)
    untouched[:, 1:6, 2:9] = False
    assert (got[untouched] == -7.0).all()  # nothing written outside C's window


def test_zero_k_gives_zeros(planner):
    got = matmul_numpy(planner, np.zeros((5, 0), np.float32), np.zeros((0, 6), np.float32))
    np.testing.assert_array_equal(got, np.zeros((5, 6)))


def test_f16_storage(ctx, planner, pool, readback, rng):
    assert ctx.has("shader-f16"), "lavapipe and current GPU drivers offer shader-f16"
    M, N, K = 64, 128, 96
    a = rng.standard_normal((M, K)).astype(np.float16)
    b = rng.standard_normal((K, N)).astype(np.float16)
    abuf, bbuf, cbuf = upload(ctx, a, pool), upload(ctx, b, pool), pool.acquire(M * N * 2)
    planner.launch(abuf, bbuf, cbuf, M, N, K, dtype="f16").run()
    got = readback.read_array(cbuf, (M, N), np.float16)
    assert rel_err(got, a.astype(np.float64) @ b.astype(np.float64)) < 2e-3  # f16 output rounding


def test_generator_rejects_bad_configs():
    with pytest.raises(ValueError, match="multiples of 4"):
        generate_matmul_wgsl(TileConfig(64, 64, 8, 6, 4), MatmulLayout())
    assert TileConfig(128, 128, 32, 8, 8).problems(max_shared=32768)
    assert "acc_7_1" in generate_matmul_wgsl(TileConfig(), MatmulLayout())  # named accumulators, no arrays
    with pytest.raises(ValueError, match="grad_columns.*trans_b=True"):  # no such gather
        generate_matmul_wgsl(TileConfig(), MatmulLayout(trans_b=True, vec_b=False, gather_b="grad_columns",
                                                        gather_kernel=(3, 3)))
    with pytest.raises(ValueError, match="element by element"):
        generate_matmul_wgsl(TileConfig(), MatmulLayout(gather_b="columns", gather_kernel=(3, 3)))


def test_a_gather_decomposes_each_load_units_column_once_before_the_k_loop():
    """The window origin of an output position (or a tap's offsets) does not depend on k: each of a
    thread's B load units computes it once, and the loop's loads only add the k-dependent part."""
    src = generate_matmul_wgsl(TileConfig(), MatmulLayout(vec_b=False, gather_b="columns", gather_kernel=(3, 3)))
    loop = src.index("for (var kt")
    assert src.count("gather_fixed(min(") == src[:loop].count("gather_fixed(min(") == 4  # 128 x 8 / 256 threads
    assert "gather_at(gb3, Bbase, (knext1 + pbk3))" in src[loop:]


@pytest.mark.parametrize("gather", sorted(GATHERS))
def test_every_gather_kernel_compiles_in_dawn(dawn_null, gather):
    """Tint (Dawn's compiler, on the GPU machines) checks what naga (these tests' adapter) does not."""
    kind, trans_b = gather
    for dtype in ("f32", "f16"):
        lay = MatmulLayout(trans_b=trans_b, vec_b=False, dtype=dtype, gather_b=kind, gather_kernel=(3, 1))
        for name in ("128x128x8_8x8", "32x32x8_4x4"):
            src = generate_matmul_wgsl(CANDIDATES[name], lay)
            module = dawn_null.create_shader_module(code=src, label=f"{name} {lay.key}")  # raises on any error
        # The whole pipeline where it fits the Null adapter's 16 KiB of workgroup memory.
        dawn_null.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})


def test_shape_class_and_heuristic():
    assert shape_class(4000, 4096, 3000, 1, MatmulLayout()) == shape_class(4096, 4096, 4096, 1, MatmulLayout())
    assert shape_class(4096, 4096, 4096, 1, MatmulLayout()) != shape_class(4096, 4096, 4096, 1, MatmulLayout(trans_b=True))
    assert heuristic_config(8192, 8192, 1) in CANDIDATES and heuristic_config(5, 5, 1) in CANDIDATES


def test_autotuner_times_once_and_persists(ctx, pool, rng, tmp_path):
    path = tmp_path / "tune.json"
    names = ["32x32x8_4x4", "64x64x8_4x4", "128x64x8_8x4"]
    a = rng.standard_normal((40, 48)).astype(np.float32)
    b = rng.standard_normal((48, 48)).astype(np.float32)
    abuf, bbuf, cbuf = upload(ctx, a, pool), upload(ctx, b, pool), pool.acquire(40 * 48 * 4)
    tuner = Autotuner(ctx, "matmul", path=path)
    planner = MatmulPlanner(ctx, tuner=tuner, autotune=True, candidates=names)
    launch = planner.launch(abuf, bbuf, cbuf, 40, 48, 48)
    assert tuner.timings_run == tuner.rounds * len(names)
    stored = json.loads(path.read_text())
    assert stored["adapter"] == ctx.cache_key
    (entry,) = stored["entries"].values()
    assert entry["best"] in names and set(entry["seconds"]) == set(names)
    assert launch.label.endswith(entry["best"])
    # A new process (new tuner on the same file) reuses the choice without timing.
    tuner2 = Autotuner(ctx, "matmul", path=path)
    planner2 = MatmulPlanner(ctx, tuner=tuner2, autotune=True, candidates=names)
    planner2.launch(abuf, bbuf, cbuf, 40, 48, 48)
    assert tuner2.timings_run == 0
    # The tuned kernel computes the right product.
    got = matmul_numpy(planner2, a, b)
    assert rel_err(got, a.astype(np.float64) @ b) < TOL


def test_autotuner_skips_failing_candidates_and_foreign_files(ctx, tmp_path):
    path = tmp_path / "t.json"
    tuner = Autotuner(ctx, "x", path=path)

    def time_fn(name):
        if name == "bad":
            raise RuntimeError("driver rejected it")
        return {"slow": 2.0, "fast": 1.0}[name]

    assert tuner.choose("cls", ["bad", "slow", "fast"], time_fn) == "fast"
    data = json.loads(path.read_text())
    data["adapter"] = "some other GPU"
    path.write_text(json.dumps(data))
    assert Autotuner(ctx, "x", path=path).lookup("cls") is None
    with pytest.raises(RuntimeError, match="every x candidate failed"):
        tuner.choose("cls2", ["bad"], time_fn)


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "rustyasg"
