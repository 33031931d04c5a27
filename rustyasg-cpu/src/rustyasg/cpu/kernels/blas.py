"""GEMM on sub-blocks of arrays, callable from numba kernels (BLAS ``?gemm`` with alpha, beta and leading dims).

numba's own ``np.dot(a, b, out)`` inside a kernel copies any operand whose layout it cannot
prove contiguous (every slice of a 3-d array), always overwrites ``out`` and has no scale:
a tiled kernel (attention's blocks of queries against tiles of keys) then pays a copy and an
extra pass per tile. :func:`gemm` instead computes, in row-major terms,

    ``C[c0:] (M x N, row stride ldc) = alpha * op(A) @ op(B) + beta * C``

with ``A``, ``B``, ``C`` given as an array plus the flat offset of the block's first element
(``op`` transposes when asked), through the BLAS that numba itself links (scipy's, through
``numba_xxgemm``; the GIL is not needed). Keep ``M * N * K`` at most 2**18 per call where
several threads call it at once: OpenBLAS runs such products on the calling thread alone
instead of starting its own workers.

Example:
    >>> import numba, numpy as np
    >>> @numba.njit
    ... def a_bt(a, b, out):   # out = a @ b.T, both (2, 3)
    ...     gemm(False, True, 2, 2, 3, 1.0, a, 0, 3, b, 0, 3, 0.0, out, 0, 2)
    >>> a = np.arange(6.0).reshape(2, 3); out = np.empty((2, 2)); a_bt(a, a, out); out.tolist()
    [[5.0, 14.0], [14.0, 50.0]]
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..jit import helper_jit

_KIND = {types.float32: "s", types.float64: "d"}


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """Column-major ``?gemm`` on raw blocks of arrays ``a``, ``b``, ``c`` (numba's ``numba_xxgemm``)."""
    dtype = c.dtype
    if dtype not in _KIND or a.dtype != dtype or b.dtype != dtype:
        return None
    sig = types.int32(types.int8, types.int8, types.intp, types.intp, types.intp, dtype, a, types.intp, types.intp,
                      b, types.intp, types.intp, dtype, c, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        ta, tb, m_, n_, k_, alpha_, a_, ao, lda_, b_, bo, ldb_, beta_, c_, co, ldc_ = args
        byte, intp = ir.IntType(8), context.get_value_type(types.intp)
        voidp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [byte, byte, byte, intp, intp, intp, voidp, voidp, intp,
                                                voidp, intp, voidp, voidp, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

        def block(aty, arr, off):
            data = context.make_array(aty)(context, builder, arr).data
            return builder.bitcast(builder.gep(data, [off]), voidp)

        alpha_slot = cgutils.alloca_once_value(builder, alpha_)
        beta_slot = cgutils.alloca_once_value(builder, beta_)
        kind = ir.Constant(byte, ord(_KIND[dtype]))
        return builder.call(fn, (kind, ta, tb, m_, n_, k_, builder.bitcast(alpha_slot, voidp), block(a, a_, ao), lda_,
                                 block(b, b_, bo), ldb_, builder.bitcast(beta_slot, voidp), block(c, c_, co), ldc_))

    return sig, codegen


@helper_jit
def gemm(trans_a, trans_b, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    """Row-major ``C = alpha * op(A) @ op(B) + beta * C`` on blocks (see the module docstring).

    ``op(A)`` is ``M x K`` (``A`` stored ``K x M`` when ``trans_a``), ``op(B)`` is ``K x N``.
    Empty products are handled here (BLAS rejects a leading dimension of 0).
    """
    if M <= 0 or N <= 0:
        return
    if K <= 0:
        for r in range(M):
            for col in range(N):
                C.flat[c_off + r * ldc + col] = 0.0 if beta == 0 else beta * C.flat[c_off + r * ldc + col]
        return
    dtype = C.dtype.type
    # Row-major C is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
    _xxgemm(ord("t") if trans_b else ord("n"), ord("t") if trans_a else ord("n"), N, M, K, dtype(alpha),
            B, b_off, max(ldb, 1), A, a_off, max(lda, 1), dtype(beta), C, c_off, max(ldc, 1))
