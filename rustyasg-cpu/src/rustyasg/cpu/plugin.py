"""The cpu backend's plugin: registers its kernels and passes through the core hooks.

Importing this module is cheap (no numba); kernels are imported when the cpu
backend first asks for its table.

Example:
    >>> from rustyasg.core.plugins import load_kernels
    >>> "matmul" in load_kernels("cpu")
    True
"""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_register_kernels(backend, registry):
    if backend != "cpu":
        return
    from rustyasg.core.backend_api import subscribe

    from .kernels import families
    from .kernels.elementwise import render

    for module in families():
        for op, kernel in module.KERNELS.items():
            registry.register("cpu", op, kernel)
    # Every elementwise table row, including those added later (a plugin's, a test's).
    subscribe(lambda row: row.numba is not None and registry.register("cpu", row.name, render(row)))


@hookimpl
def rustyasg_register_passes(registry):
    from .attention_share import attention_share
    from .bf16_gemm import bf16_gemm
    from .fusion import cpu_fusion
    from .rewrites import (batch_norm_stats, broadcast_elim, conv_im2col, float16_compute, gelu_gate, matmul_batch_fold,
                           moments, slice_assemble)

    registry.register("cpu_float16", float16_compute, 99, backends=("cpu",))
    registry.register("cpu_matmul_batch_fold", matmul_batch_fold, 100, backends=("cpu",))
    registry.register("cpu_bf16_gemm", bf16_gemm, 100.5, backends=("cpu",))
    registry.register("cpu_attention_share", attention_share, 101, backends=("cpu",))
    registry.register("cpu_conv_im2col", conv_im2col, 102, backends=("cpu",))
    registry.register("cpu_slice_assemble", slice_assemble, 103, backends=("cpu",))
    registry.register("cpu_moments", moments, 104, backends=("cpu",))
    registry.register("cpu_batch_norm_stats", batch_norm_stats, 104.5, backends=("cpu",))
    registry.register("cpu_gelu_gate", gelu_gate, 104.7, backends=("cpu",))
    registry.register("cpu_broadcast_elim", broadcast_elim, 105, backends=("cpu",))
    registry.register("cpu_fusion", cpu_fusion, 110, backends=("cpu",))
