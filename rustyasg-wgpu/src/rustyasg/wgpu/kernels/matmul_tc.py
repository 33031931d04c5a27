"""Tensor-core matmul launches (f16 operands, f32 accumulation) on adapters with subgroup matrices.

:class:`TcMatmulPlanner` is the tensor-core counterpart of
:class:`~.matmul.MatmulPlanner`: same problem description (sizes, strides,
offsets, transposes, batch), WGSL from :mod:`.matmul_tc_wgsl`, the tile
config tuned per shape class by the :class:`~.autotune.Autotuner`.
:func:`tensor_core_shape` says whether a context can run it at all (Dawn
with ``chromium-experimental-subgroup-matrix`` and an f16 configuration).

Example (on a GPU under ``RUSTYASG_WEBGPU=dawn``; elsewhere ``for_context`` gives None)::

    planner = TcMatmulPlanner.for_context(get_context())
    planner.launch(a16, b16, c32, 4096, 4096, 4096).run()   # f16 buffers in, f32 out
"""

from __future__ import annotations

import os
from typing import Any

from ..pipelines import KernelLaunch, PipelineCache, uniform_buffer
from ..webgpu import SUBGROUP_MATRIX
from .autotune import Autotuner, autotune_enabled, time_gpu
from .matmul_tc_wgsl import KERNEL_VERSION, FragmentShape, TcConfig, generate_tc_matmul_wgsl
from .matmul_wgsl import MATMUL_UNIFORMS, MatmulLayout, batch_params, shape_class, vec4_ok
from .nn_conv_geometry import GATHER_LABEL, gather_bindings, gather_fields

TENSOR_CORES_ENV = "RUSTYASG_WGPU_TENSOR_CORES"

# Ordered fastest first as measured at 4096^3 through Dawn (f32 out, TFLOP/s). On an H100
# (2026-12-07, benchmarks/results/2026-12-07-h100-tc-trial-4096.json), the single-buffered
# configs first: 256x128x32_4x4_sb 166, 128x256x32_2x4_sb 159, 256x128x32_4x2_sb 152,
# 128x256x16_2x4 136, 256x128x16_4x2 125, 128x128x64_2x4_sb 120, 128x128x32_2x4_sb 88; earlier on
# an H200: 256x128x16_4x2 110, 128x128x32_2x4 105, 64x64x32_2x2 76, 256x128 direct 73,
# 128x128x32_2x2 71. The untuned heuristic takes the first one that gives the GPU enough workgroups.
CANDIDATES: dict[str, TcConfig] = {
    c.name: c
    for c in (
        TcConfig(256, 128, 32, 4, 4, buffers=1),
        TcConfig(128, 256, 32, 2, 4, buffers=1),
        TcConfig(256, 128, 32, 4, 2, buffers=1),
        TcConfig(256, 128, 16, 4, 2),
        TcConfig(128, 128, 32, 2, 4),
        TcConfig(128, 128, 32, 2, 2),
        TcConfig(128, 256, 16, 2, 4),
        TcConfig(128, 128, 64, 2, 4, buffers=1),
        TcConfig(128, 128, 32, 2, 4, buffers=1),
        TcConfig(128, 128, 16, 2, 2),
        TcConfig(128, 64, 32, 2, 2),
        TcConfig(64, 128, 32, 2, 2),
        TcConfig(64, 64, 32, 2, 2),
        TcConfig(64, 64, 16, 2, 2),
        TcConfig(64, 32, 16, 2, 2),
        # Fragments straight from storage: full tiles only (M, N multiples of the tile, K of 16).
        TcConfig(256, 128, 16, 4, 2, staged=False),
        TcConfig(128, 256, 16, 2, 4, staged=False),
        TcConfig(128, 128, 16, 2, 4, staged=False),
        TcConfig(128, 128, 16, 2, 2, staged=False),
        TcConfig(128, 64, 16, 2, 2, staged=False),
        TcConfig(64, 128, 16, 2, 2, staged=False),
        TcConfig(64, 64, 16, 2, 2, staged=False),
    )
}


#: Configs not yet checked and timed on a GPU, or not worth the tuner's time: it sees them only
#: when asked (``TcMatmulPlanner(trial=True)``, ``benchmarks/gpu/tensor_cores.py --trial``). One
#: staged k-tile (two barriers per k-tile, ``_sb``) fits deeper k-tiles or 16-subgroup workgroups
#: in 48 KiB; 256x256x16_4x4_sb was correct on an H100 but ran at 54 TFLOP/s.
TRIAL_CANDIDATES: dict[str, TcConfig] = {
    c.name: c
    for c in (
        TcConfig(256, 256, 16, 4, 4, buffers=1),
    )
}
ALL_CONFIGS: dict[str, TcConfig] = {**CANDIDATES, **TRIAL_CANDIDATES}


def tensor_core_shape(ctx: Any) -> FragmentShape | None:
    """The f16 fragment shape ``ctx`` offers, or None (no subgroup matrices, or
    ``RUSTYASG_WGPU_TENSOR_CORES=0``).

    Example::

        >>> tensor_core_shape(type("Ctx", (), {"features": frozenset(), "subgroup_matrix_configs": ()})())
    """
    if os.environ.get(TENSOR_CORES_ENV, "1").strip() == "0":
        return None
    if SUBGROUP_MATRIX not in getattr(ctx, "features", ()) or "shader-f16" not in ctx.features:
        return None
    return FragmentShape.from_configs(getattr(ctx, "subgroup_matrix_configs", ()))


def heuristic_config(M: int, N: int, batch: int, names: list[str]) -> str:
    """Untuned choice: the fastest-measured config that still gives the GPU enough workgroups.

    Example::

        >>> heuristic_config(4096, 4096, 1, list(CANDIDATES))
        'tc256x128x32_4x4_sb'
        >>> heuristic_config(100, 100, 1, list(CANDIDATES))
        'tc64x32x16_2x2'
    """
    for name in names:  # CANDIDATES' order: fastest first
        cfg = ALL_CONFIGS[name]
        if -(-M // cfg.bm) * -(-N // cfg.bn) * batch >= 64:
            return name
    return min(names, key=lambda n: ALL_CONFIGS[n].bm * ALL_CONFIGS[n].bn)


class TcMatmulPlanner:
    """Builds batched f16 tensor-core matmul launches on one device (see :class:`~.matmul.MatmulPlanner`).

    Example::

        >>> TcMatmulPlanner.for_context(type("Ctx", (), {"features": frozenset()})()) is None
        True
    """

    def __init__(self, ctx: Any, frag: FragmentShape, pipelines: PipelineCache | None = None,
                 autotune: bool | None = None, trial: bool = False):
        self.ctx = ctx
        self.frag = frag
        self.pipelines = pipelines if pipelines is not None else PipelineCache(ctx)
        self.autotune = autotune_enabled(ctx) if autotune is None else autotune
        # The kernel version is part of the cache's name: a pick timed on an older generator is not reused.
        self.tuner = Autotuner(ctx, f"matmul_tc_v{KERNEL_VERSION}") if self.autotune else None
        max_threads = int(ctx.limits.get("max-compute-invocations-per-workgroup", 256))
        max_shared = int(ctx.limits.get("max-compute-workgroup-storage-size", 16384))
        configs = ALL_CONFIGS if trial else CANDIDATES
        self.names = [n for n, c in configs.items() if not c.problems(frag, max_threads, max_shared)]

    @classmethod
    def for_context(cls, ctx: Any, pipelines: PipelineCache | None = None,
                    autotune: bool | None = None, trial: bool = False) -> "TcMatmulPlanner | None":
        """A planner when ``ctx`` has tensor cores and some config fits its limits, else None
        (``trial``: :data:`TRIAL_CANDIDATES` too)."""
        frag = tensor_core_shape(ctx)
        if frag is None:
            return None
        planner = cls(ctx, frag, pipelines, autotune, trial)
        return planner if planner.names else None

    def runnable(self, M: int, N: int, K: int, gathered: bool = False) -> list[str]:
        """Configs that can compute an ``M x N x K`` problem (direct ones need full tiles, and
        cannot gather B)."""
        out = []
        for name in self.names:
            cfg = ALL_CONFIGS[name]
            if cfg.staged or (not gathered and M % cfg.bm == 0 and N % cfg.bn == 0 and K % self.frag.k == 0):
                out.append(name)
        return out

    def source(self, config: str, layout: MatmulLayout, out_dtype: str) -> str:
        """WGSL of a named config."""
        return generate_tc_matmul_wgsl(ALL_CONFIGS[config], layout, self.frag, out_dtype)

    def _build(self, config: str, lay: MatmulLayout, out_dtype: str, a, b, c, params: dict,
               gather: tuple[str, dict] | None = None) -> KernelLaunch:
        cfg = ALL_CONFIGS[config]
        tiles_m, tiles_n = -(-params["M"] // cfg.bm), -(-params["N"] // cfg.bn)
        total = tiles_m * tiles_n * params.pop("batch")
        data = MATMUL_UNIFORMS.pack(tiles_m=tiles_m, tiles_n=tiles_n, total=total, pad0=0, **params)
        pipe = self.pipelines.get(self.source(config, lay, out_dtype))
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
        out_dtype: str = "f32", config: str | None = None, gather: tuple[str, dict] | None = None,
    ) -> KernelLaunch:
        """A launch computing the batched f16 product into ``c`` (``out_dtype`` f32 or f16);
        ``gather`` as for :meth:`~.matmul.MatmulPlanner.launch` (B gathered from a convolution's
        input or output gradient)."""
        lda = lda if lda is not None else (M if trans_a else K)
        ldb = ldb if ldb is not None else (K if trans_b else N)
        ldc = ldc if ldc is not None else N
        sa = stride_a if stride_a is not None else M * K
        sb = stride_b if stride_b is not None else K * N
        sc = stride_c if stride_c is not None else M * N
        multi = batch > 1
        levels = batch_params(batch, inner_batch, outer_strides)
        lay = MatmulLayout(trans_a=trans_a, trans_b=trans_b,
                           vec_a=vec4_ok(M if trans_a else K, lda, sa if multi else 0, offset_a, levels["sa_outer"]),
                           vec_b=gather is None and vec4_ok(K if trans_b else N, ldb, sb if multi else 0, offset_b,
                                                            levels["sb_outer"]),
                           vec_c=False, dtype="f16", **gather_fields(gather))
        params = dict(M=M, N=N, K=K, batch=batch, lda=lda, ldb=ldb, ldc=ldc, sa=sa, sb=sb, sc=sc,
                      oa=offset_a, ob=offset_b, oc=offset_c, **levels)
        if config is None:
            config = self.choose(M, N, K, batch, lay, out_dtype, a, b, c, params, gather)
        elif config not in self.runnable(M, N, K, gather is not None):
            raise KeyError(f"tensor-core config {config!r} does not run here; these do: {self.names}")
        return self._build(config, lay, out_dtype, a, b, c, dict(params), gather)

    def choose(self, M, N, K, batch, lay, out_dtype, a, b, c, params, gather=None) -> str:
        """Config for this problem: tuned and cached per shape class, or the heuristic."""
        names = self.runnable(M, N, K, gather is not None)
        if not names:
            raise ValueError(f"no tensor-core config computes a {M}x{N}x{K} product here")
        if self.tuner is None:
            return heuristic_config(M, N, batch, names)

        def time_one(name: str) -> float:
            return time_gpu(self.ctx, self._build(name, lay, out_dtype, a, b, c, dict(params), gather).encode)

        aligned = "".join("1" if v % 128 == 0 else "0" for v in (M, N)) + ("1" if K % 16 == 0 else "0")
        cls = f"{shape_class(M, N, K, batch, lay)}_{out_dtype}_a{aligned}"
        return self.tuner.choose(cls, names, time_one)
