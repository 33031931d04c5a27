"""Matmul launches: choose a tile config (tuned per shape class), bind, dispatch.

:class:`MatmulPlanner` turns a problem (buffers, sizes, strides, transposes)
into a :class:`~rustyasg.wgpu.pipelines.KernelLaunch`. The WGSL comes from
:mod:`.matmul_wgsl`; which :class:`TileConfig` to use is decided per *shape
class* (sizes rounded to powers of 4, batch, layout) by the autotuner on
hardware adapters and by a size heuristic elsewhere.

Example::

    planner = MatmulPlanner(get_context())
    launch = planner.launch(a, b, c, M=64, N=64, K=64)
    launch.run()
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..buffers import BufferPool, Readback, upload
from ..pipelines import KernelLaunch, PipelineCache, uniform_buffer
from .autotune import Autotuner, autotune_enabled, time_gpu
from .matmul_tc import TcMatmulPlanner
from .matmul_wgsl import (MATMUL_UNIFORMS, MatmulLayout, TileConfig, batch_params, generate_matmul_wgsl, shape_class,
                          vec4_ok)
from .nn_conv_geometry import GATHER_LABEL, gather_bindings, gather_fields

# Candidates the autotuner times; the heuristic picks among the first three.
CANDIDATES: dict[str, TileConfig] = {
    c.name: c
    for c in (
        TileConfig(128, 128, 8, 8, 8),
        TileConfig(128, 64, 8, 8, 4),
        TileConfig(32, 32, 8, 4, 4),
        TileConfig(128, 128, 8, 8, 8, warp_cols=8),
        TileConfig(128, 128, 8, 8, 8, warp_cols=4),
        TileConfig(128, 128, 8, 8, 8, a_rows=True),
        TileConfig(128, 128, 16, 8, 8),
        TileConfig(64, 128, 8, 4, 8),
        TileConfig(64, 64, 8, 4, 4),
        TileConfig(64, 64, 16, 4, 4),
        TileConfig(64, 64, 16, 4, 4, a_rows=True),
        TileConfig(64, 64, 8, 8, 8),
        TileConfig(128, 256, 8, 8, 16),
        TileConfig(256, 128, 8, 16, 8),
    )
}


def heuristic_config(M: int, N: int, batch: int) -> str:
    """Untuned choice: big tiles when there are enough of them to fill a GPU.

    Example::

        >>> heuristic_config(4096, 4096, 1), heuristic_config(100, 100, 1)
        ('128x128x8_8x8', '32x32x8_4x4')
    """
    tiles128 = -(-M // 128) * -(-N // 128) * batch
    if M >= 128 and N >= 128 and tiles128 >= 64:
        return "128x128x8_8x8"
    tiles_mid = -(-M // 128) * -(-N // 64) * batch
    if M >= 64 and N >= 64 and tiles_mid >= 32:
        return "128x64x8_8x4"
    return "32x32x8_4x4"


class MatmulPlanner:
    """Builds batched matmul launches on one device.

    ``launch(a, b, c, M, N, K, ...)`` computes, for every batch index ``i``,
    ``C_i = op(A_i) @ op(B_i)`` where ``A_i`` starts at element
    ``offset_a + i * stride_a`` with leading dimension ``lda`` (similarly B,
    C); ``trans_a`` means A is stored K x M. A stride of 0 broadcasts an
    operand over the batch.

    Example::

        planner = MatmulPlanner(ctx)
        planner.launch(a, b, c, 7, 13, 5).run()
    """

    def __init__(self, ctx: Any, pipelines: PipelineCache | None = None, tuner: Autotuner | None = None,
                 autotune: bool | None = None, candidates: list[str] | None = None):
        self.ctx = ctx
        self.names = list(candidates) if candidates is not None else list(CANDIDATES)
        unknown = [n for n in self.names if n not in CANDIDATES]
        if unknown:
            raise KeyError(f"unknown matmul tile configs {unknown}; known: {sorted(CANDIDATES)}")
        self.pipelines = pipelines if pipelines is not None else PipelineCache(ctx)
        self.autotune = autotune_enabled(ctx) if autotune is None else autotune
        self.tuner = tuner if tuner is not None else (Autotuner(ctx, "matmul") if self.autotune else None)
        self.max_threads = int(ctx.limits.get("max-compute-invocations-per-workgroup", 256))
        self.max_shared = int(ctx.limits.get("max-compute-workgroup-storage-size", 16384))
        # f16 products go to the tensor cores where the adapter has subgroup matrices.
        self.tensor_cores = TcMatmulPlanner.for_context(ctx, self.pipelines, self.autotune)

    def fits(self, cfg: TileConfig) -> bool:
        """Whether ``cfg`` fits this adapter's workgroup limits."""
        return not cfg.problems(self.max_threads, self.max_shared)

    def candidates(self) -> list[str]:
        """Names of the tile configs this adapter can run."""
        return [name for name in self.names if self.fits(CANDIDATES[name])]

    def layout(self, M, N, K, batch, trans_a, trans_b, lda, ldb, ldc, sa, sb, sc, oa, ob, oc, dtype,
               levels: dict | None = None, gather_b: str = "", gather_kernel: tuple = ()) -> MatmulLayout:
        """The :class:`MatmulLayout` these sizes and strides allow (``levels``: :func:`batch_params`;
        ``gather_b``: how B is gathered, see :data:`~.matmul_wgsl.GATHERS`)."""
        multi = batch > 1
        lv = levels or {}
        return MatmulLayout(
            trans_a=trans_a,
            trans_b=trans_b,
            vec_a=vec4_ok(M if trans_a else K, lda, sa if multi else 0, oa, lv.get("sa_outer", 0)),
            vec_b=not gather_b and vec4_ok(K if trans_b else N, ldb, sb if multi else 0, ob, lv.get("sb_outer", 0)),
            vec_c=vec4_ok(N, ldc, sc if multi else 0, oc, lv.get("sc_outer", 0)),
            dtype=dtype,
            gather_b=gather_b,
            gather_kernel=gather_kernel,
        )

    def source(self, config: str, layout: MatmulLayout) -> str:
        """WGSL for a named config and layout."""
        return generate_matmul_wgsl(CANDIDATES[config], layout)

    def _build(self, config: str, layout: MatmulLayout, a, b, c, params: dict,
               gather: tuple[str, dict] | None = None) -> KernelLaunch:
        cfg = CANDIDATES[config]
        tiles_m, tiles_n = -(-params["M"] // cfg.bm), -(-params["N"] // cfg.bn)
        total = tiles_m * tiles_n * params.pop("batch")
        data = MATMUL_UNIFORMS.pack(tiles_m=tiles_m, tiles_n=tiles_n, total=total, pad0=0, **params)
        pipe = self.pipelines.get(self.source(config, layout))
        resources = [a, b, c, uniform_buffer(self.ctx, data)] + gather_bindings(self.ctx, gather)
        label = f"matmul {config}" + (GATHER_LABEL if gather is not None else "")
        return KernelLaunch(self.ctx, pipe, resources, total, label=label)

    def launch(
        self, a: Any, b: Any, c: Any, M: int, N: int, K: int, *, batch: int = 1,
        trans_a: bool = False, trans_b: bool = False,
        lda: int | None = None, ldb: int | None = None, ldc: int | None = None,
        stride_a: int | None = None, stride_b: int | None = None, stride_c: int | None = None,
        offset_a: int = 0, offset_b: int = 0, offset_c: int = 0,
        inner_batch: int | None = None, outer_strides: tuple[int, int, int] = (0, 0, 0),
        dtype: str = "f32", config: str | None = None, gather: tuple[str, dict] | None = None,
    ) -> KernelLaunch:
        """A launch computing the batched product into ``c`` (see class doc); with
        ``inner_batch``, batch index ``i`` is ``(i // inner_batch, i % inner_batch)`` and
        ``outer_strides`` are the first level's strides of A, B and C. With ``gather`` (a key of
        :data:`~.matmul_wgsl.GATHERS` and the values of :data:`~.nn_conv_geometry.CONV_UNIFORMS`),
        ``b`` is a convolution's input (or output gradient) and B the column matrix gathered from
        it as it is read (``ldb`` is unused; B's batch strides step between images and groups)."""
        lda = lda if lda is not None else (M if trans_a else K)
        ldb = ldb if ldb is not None else (K if trans_b else N)
        ldc = ldc if ldc is not None else N
        sa = stride_a if stride_a is not None else M * K
        sb = stride_b if stride_b is not None else K * N
        sc = stride_c if stride_c is not None else M * N
        levels = batch_params(batch, inner_batch, outer_strides)
        if (dtype == "f16" and self.tensor_cores is not None and config is None
                and self.tensor_cores.runnable(M, N, K, gather is not None)):
            return self.tensor_cores.launch(
                a, b, c, M, N, K, batch=batch, trans_a=trans_a, trans_b=trans_b, lda=lda, ldb=ldb, ldc=ldc,
                stride_a=sa, stride_b=sb, stride_c=sc, offset_a=offset_a, offset_b=offset_b, offset_c=offset_c,
                inner_batch=inner_batch, outer_strides=outer_strides, out_dtype="f16", gather=gather)
        lay = self.layout(M, N, K, batch, trans_a, trans_b, lda, ldb, ldc, sa, sb, sc, offset_a, offset_b, offset_c, dtype,
                          levels, **gather_fields(gather))
        params = dict(M=M, N=N, K=K, batch=batch, lda=lda, ldb=ldb, ldc=ldc, sa=sa, sb=sb, sc=sc,
                      oa=offset_a, ob=offset_b, oc=offset_c, **levels)
        if config is None:
            config = self.choose(M, N, K, batch, lay, a, b, c, params, gather)
        elif config not in CANDIDATES:
            raise KeyError(f"unknown matmul tile config {config!r}; known: {sorted(CANDIDATES)}")
        return self._build(config, lay, a, b, c, dict(params), gather)

    def choose(self, M, N, K, batch, lay, a, b, c, params, gather: tuple[str, dict] | None = None) -> str:
        """Tile config for this problem: tuned (and cached) or heuristic."""
        guess = heuristic_config(M, N, batch)
        if not self.autotune or self.tuner is None:
            return guess if guess in self.candidates() else self.candidates()[0]

        def time_one(name: str) -> float:
            launch = self._build(name, lay, a, b, c, dict(params), gather)
            return time_gpu(self.ctx, launch.encode)

        return self.tuner.choose(shape_class(M, N, K, batch, lay), self.candidates(), time_one)


def matmul_numpy(planner: MatmulPlanner, a: np.ndarray, b: np.ndarray, trans_a: bool = False,
                 trans_b: bool = False, config: str | None = None, pool: BufferPool | None = None) -> np.ndarray:
    """``op(a) @ op(b)`` on the GPU for float32 numpy arrays (tests, benchmarks).

    ``a`` is ``(..., M, K)`` (``(..., K, M)`` with ``trans_a``); a 2-D operand
    broadcasts over the other's batch.

    Example:

        >>> from rustyasg.wgpu.device import get_context
        >>> matmul_numpy(MatmulPlanner(get_context()), np.ones((2, 3), np.float32), np.ones((3, 4), np.float32))
        array([[3., 3., 3., 3.],
               [3., 3., 3., 3.]], dtype=float32)
    """
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    M, K = (a.shape[-1], a.shape[-2]) if trans_a else a.shape[-2:]
    Kb, N = (b.shape[-1], b.shape[-2]) if trans_b else b.shape[-2:]
    if K != Kb:
        raise ValueError(f"matmul: inner sizes differ: a {a.shape} (trans={trans_a}) vs b {b.shape} (trans={trans_b})")
    batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    batch = int(np.prod(batch_shape, dtype=np.int64))
    for name, x in (("a", a), ("b", b)):
        if x.ndim > 2 and x.shape[:-2] != batch_shape:
            raise ValueError(f"matmul_numpy: {name} batch dims {x.shape[:-2]} must equal {batch_shape} or be absent")
    ctx = planner.ctx
    pool = pool or BufferPool(ctx)
    abuf, bbuf = upload(ctx, a, pool), upload(ctx, b, pool)
    cbuf = pool.acquire(max(batch * M * N * 4, 4))
    planner.launch(
        abuf, bbuf, cbuf, M, N, K, batch=batch, trans_a=trans_a, trans_b=trans_b,
        stride_a=M * K if a.ndim > 2 else 0, stride_b=K * N if b.ndim > 2 else 0, config=config,
    ).run()
    out = Readback(ctx).read_array(cbuf, (batch, M, N), np.float32)
    for buf in (abuf, bbuf, cbuf):
        pool.release(buf)
    return out.reshape(*batch_shape, M, N)
