"""bfloat16 GEMM with float32 accumulation through Intel MKL (``cblas_gemm_bf16bf16f32``).

numba and numpy have no bfloat16 arithmetic, so a bfloat16 matmul otherwise widens both
operands to float32 and runs float32 GEMM. On processors with bfloat16 matrix units
(AMX-BF16, Sapphire Rapids and later) or bfloat16 dot products (AVX512-BF16), MKL's
``cblas_gemm_bf16bf16f32`` multiplies the 16-bit words directly: on the 2-core reference
machine (Intel Xeon with AMX) a 1024x128x384 product took 206 us against 306 us for float32
GEMM on both cores, and 64 attention-sized 64x32x64 products 67 us against 200 us. The
products of two bfloat16 numbers are exact in float32 and MKL accumulates in float32, so the
result is the widened float32 GEMM's up to the order of summation.

MKL comes from the optional ``mkl`` wheel (``pip install rustyasg-cpu[mkl]``). It runs on
the calling thread (MKL's sequential layer): the cpu backend splits large products across its
own threads (:mod:`..threads`), which block instead of spinning between kernels.
``RUSTYASG_CPU_BF16_GEMM`` chooses: ``auto`` (default: MKL where the processor has bfloat16
units), ``1`` (MKL whenever it is installed; an error if it is not) or ``0`` (never).

The GEMM is called from numba kernels by symbol, like :mod:`.blas`'s: the library is loaded
into the process (and llvmlite's symbol table) before the first kernel is compiled, so
numba's on-disk cache holds code that links to it by name.

Example:
    >>> import numpy as np, ml_dtypes
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]], ml_dtypes.bfloat16)
    >>> out = np.empty((2, 2), np.float32)
    >>> if library() is not None:
    ...     matmul_bf16(a, a, out)
    ... else:
    ...     out[...] = a.astype(np.float32) @ a.astype(np.float32)
    >>> out.tolist()
    [[7.0, 10.0], [15.0, 22.0]]
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.metadata
import os
from typing import Optional

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..jit import kernel_jit

#: The GEMM entry point with 64-bit sizes (independent of MKL's interface layer).
SYMBOL = "cblas_gemm_bf16bf16f32_64"
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL


class MklMissing(RuntimeError):
    """MKL was asked for (``RUSTYASG_CPU_BF16_GEMM=1``) but is not installed or cannot load."""


def _library_path() -> Optional[str]:
    """Where ``libmkl_rt`` is: the ``mkl`` wheel's file, else the system's (None: nowhere)."""
    try:
        for f in importlib.metadata.distribution("mkl").files or ():
            if f.name.startswith(("libmkl_rt.so", "libmkl_rt.dylib", "mkl_rt")):
                return str(f.locate())
    except importlib.metadata.PackageNotFoundError:
        pass
    return ctypes.util.find_library("mkl_rt")


@functools.lru_cache(maxsize=None)
def library() -> Optional[ctypes.CDLL]:
    """MKL, loaded once with its sequential threading layer (None when it is not installed)."""
    path = _library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        getattr(lib, SYMBOL)
    except (OSError, AttributeError):
        return None
    lib.MKL_Set_Threading_Layer(_SEQUENTIAL)  # before any computation: MKL fixes it on first use
    llvm_binding.load_library_permanently(path)  # numba kernels link to SYMBOL by name
    return lib


@functools.lru_cache(maxsize=None)
def _cpu_flags() -> frozenset:
    """The processor's feature flags (Linux ``/proc/cpuinfo``; read once: every bf16 compile asks)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_bf16_units() -> bool:
    """Whether the processor multiplies bfloat16 in hardware (AMX-BF16 or AVX512-BF16; Linux)."""
    return bool({"amx_bf16", "avx512_bf16"} & _cpu_flags())


def use_bf16_gemm() -> bool:
    """Whether the cpu backend runs bfloat16 matmuls through MKL (``RUSTYASG_CPU_BF16_GEMM``).

    >>> import os; os.environ["RUSTYASG_CPU_BF16_GEMM"] = "0"; use_bf16_gemm()
    False
    >>> del os.environ["RUSTYASG_CPU_BF16_GEMM"]
    """
    mode = os.environ.get("RUSTYASG_CPU_BF16_GEMM", "auto").strip().lower()
    if mode in ("0", "off", "false"):
        return False
    if mode in ("1", "on", "true"):
        if library() is None:
            raise MklMissing("RUSTYASG_CPU_BF16_GEMM=1 asks for MKL's bfloat16 GEMM, but MKL is not installed "
                             "(or libmkl_rt did not load): pip install 'rustyasg-cpu[mkl]', or unset the variable")
        return True
    if mode != "auto":
        raise ValueError(f"RUSTYASG_CPU_BF16_GEMM must be auto, 1 or 0, got {mode!r}")
    return has_bf16_units() and library() is not None


@intrinsic
def _gemm(typingctx, transa, transb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
    """Row-major ``C[c_off:] = op(A[a_off:]) @ op(B[b_off:])``: A, B uint16 (bfloat16 words), C float32."""
    if a.dtype != types.uint16 or b.dtype != types.uint16 or c.dtype != types.float32:
        return None
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, a, types.intp, types.intp,
                     b, types.intp, types.intp, c, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        ta, tb, m_, n_, k_, a_, ao, lda_, b_, bo, ldb_, c_, co, ldc_ = args
        i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
        voidp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, f32, voidp, i64, voidp, i64, f32,
                                               voidp, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, SYMBOL)
        sigs = signature.args

        def block(aty, arr, off):
            data = context.make_array(aty)(context, builder, arr).data
            return builder.bitcast(builder.gep(data, [off]), voidp)

        def i64_(v):
            return builder.sext(v, i64) if v.type.width < 64 else v

        builder.call(fn, [ir.Constant(i32, ROW_MAJOR), builder.trunc(ta, i32), builder.trunc(tb, i32),
                          i64_(m_), i64_(n_), i64_(k_), ir.Constant(f32, 1.0), block(sigs[5], a_, ao), i64_(lda_),
                          block(sigs[8], b_, bo), i64_(ldb_), ir.Constant(f32, 0.0), block(sigs[11], c_, co),
                          i64_(ldc_)])
        return context.get_dummy_value()

    return sig, codegen


@kernel_jit
def gemm_tasks(transa, transb, n, k, a, lda, b, ldb, c, ldc, a_off, b_off, c_off, rows, lo, hi):
    """Tasks ``lo..hi`` of a (batched, row-blocked) product: task ``t`` is ``rows[t]`` rows of
    ``op(A)`` at ``a_off[t]`` times ``op(B)`` at ``b_off[t]`` into C at ``c_off[t]``."""
    for t in range(lo, hi):
        _gemm(transa, transb, rows[t], n, k, a, a_off[t], lda, b, b_off[t], ldb, c, c_off[t], ldc)


def layout(x: np.ndarray):
    """``(transpose flag, leading dimension)`` of the last two axes of ``x`` as BLAS reads them
    (element strides), or None when neither axis is unit-stride (the operand needs a copy)."""
    rows, cols = x.shape[-2:]
    s_row, s_col = (s // x.itemsize for s in x.strides[-2:])
    if (s_col == 1 or cols == 1) and s_row >= max(cols, 1):
        return NO_TRANS, max(s_row, cols, 1)
    if (s_row == 1 or rows == 1) and s_col >= max(rows, 1):
        return TRANS, max(s_col, rows, 1)
    if rows <= 1 and cols <= 1:
        return NO_TRANS, 1
    return None


def _batch_offsets(x: np.ndarray, batch: tuple) -> np.ndarray:
    """Element offset of each batch entry of ``x`` (its batch axes broadcast to ``batch``), flat."""
    nb = x.ndim - 2
    offs = np.zeros(x.shape[:nb], np.int64)
    for axis in range(nb):
        shape = [1] * nb
        shape[axis] = x.shape[axis]
        step = 0 if x.shape[axis] == 1 else x.strides[axis] // x.itemsize
        offs = offs + (np.arange(x.shape[axis], dtype=np.int64) * step).reshape(shape)
    return np.broadcast_to(offs, batch).reshape(-1).copy()


def bind_matmul_bf16(x: np.ndarray, y: np.ndarray, out: np.ndarray):
    """A call computing ``out = x @ y`` (bfloat16 operands of rank >= 2, float32 ``out``) on these
    buffers: one GEMM for a stacked left operand times a matrix, else one per batch entry, split
    across the backend's threads (:func:`..threads.splitter`; one large GEMM is cut into row
    blocks). Operands whose last two axes have no unit stride are copied into scratch first."""
    from .. import threads

    library()
    if out.size == 0 or x.shape[-1] == 0:  # nothing to compute, or a sum over no terms: zeros
        return functools.partial(out.fill, 0)
    parts = threads.threads()
    pre = []
    xw, yw = x.view(np.uint16), y.view(np.uint16)
    if layout(xw) is None:
        xs = np.empty(xw.shape, np.uint16)
        pre.append(functools.partial(np.copyto, xs, xw))
        xw = xs
    if layout(yw) is None:
        ys = np.empty(yw.shape, np.uint16)
        pre.append(functools.partial(np.copyto, ys, yw))
        yw = ys
    target = out if out.flags.c_contiguous else np.empty(out.shape, np.float32)
    m, k, n = xw.shape[-2], xw.shape[-1], yw.shape[-1]
    batch = tuple(target.shape[:-2])
    if yw.ndim == 2 and xw.ndim > 2 and xw.flags.c_contiguous:  # (B, T, K) @ (K, N): one GEMM
        xw, m, batch = xw.reshape(-1, k), m * int(np.prod(batch, dtype=np.int64)), ()
    (ta, lda), (tb, ldb) = layout(xw), layout(yw)
    a_off = _batch_offsets(xw, batch)
    b_off = _batch_offsets(yw, batch)
    c_off = np.arange(a_off.size, dtype=np.int64) * (m * n)
    rows = np.full(a_off.size, m, np.int64)
    if a_off.size == 1 and parts > 1 and m >= 64 * parts:  # split one GEMM's rows
        starts = (np.arange(parts + 1, dtype=np.int64) * m) // parts
        rows = np.diff(starts)
        row_step = lda if ta == NO_TRANS else 1
        a_off = a_off[0] + starts[:-1] * row_step
        b_off = np.repeat(b_off, parts)
        c_off = starts[:-1] * n
    args = (ta, tb, n, k, xw, lda, yw, ldb, target.reshape(-1), n, a_off, b_off, c_off, rows)
    run = threads.splitter(gemm_tasks, int(rows.size), int(rows.sum()) * n * max(k, 1), *args)
    if not pre and target is out:
        return run

    def call():
        for p in pre:
            p()
        run()
        if target is not out:
            np.copyto(out, target)
    return call


def matmul_bf16(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = x @ y`` for bfloat16 ``x``, ``y`` (rank >= 2) into float32 ``out`` (one call)."""
    bind_matmul_bf16(x, y, out)()
