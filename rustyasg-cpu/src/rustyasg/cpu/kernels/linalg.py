"""matmul through BLAS (numpy's ``matmul`` with ``out=``); singular values through LAPACK.

A batched left operand times a plain matrix, ``(B, T, K) @ (K, N)``, is one GEMM
of ``(B*T, K) @ (K, N)`` when the left operand is contiguous: numpy would
otherwise call BLAS once per batch entry. Transposed operands are passed as
strided views; BLAS reads them through its transpose flags without a copy. A small product
of two float32/float64 matrices (up to :data:`DOT_MAX_MACS` multiply-adds) goes through
``numpy.dot``, which calls the same GEMM without the ufunc machinery of ``numpy.matmul``:
1.6 us against 3.7 us for a 32 x 32 x 64 product on a 2-vCPU Xeon, most of a tiny model's
step. From about a million multiply-adds on, ``numpy.matmul`` is the faster of the two on
the same machine (W2's eight products, best of 15 interleaved rounds: 2.10 against 2.29 ms;
a transposed-left 512 x 128 x 784 product 500 against 584 us), so larger products keep it.

``svdvals`` and ``svdvals_grad`` run numpy's batched SVD (LAPACK ``gesdd``, one C loop over the
batch, in the operand's own float32 or float64) through the core's ``svdvals_reference`` /
``svdvals_grad_reference``, which also hold the NaN and zero-singular-value conventions.

Example:
    >>> import numpy as np
    >>> from rustyasg.core.program import Instr
    >>> f32 = np.dtype("float32")
    >>> a, b = Instr(0, "input", (), {}, (4, 2, 3), f32), Instr(1, "input", (), {}, (3, 5), f32)
    >>> out = np.empty((4, 2, 5), f32)
    >>> run = KERNELS["matmul"](Instr(2, "matmul", (0, 1), {}, (4, 2, 5), f32), [a, b]).bound(
    ...     [np.ones((4, 2, 3), f32), np.ones((3, 5), f32), out])
    >>> _ = run(); float(out[0, 0, 0])
    3.0
"""

from __future__ import annotations

import functools

import numpy as np

from rustyasg.core.backend_api import svdvals_grad_reference, svdvals_reference

from .protocol import Impl


#: dtypes whose 2-D products ``numpy.dot`` hands straight to BLAS (see the module doc).
_DOT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: The largest product (``M * K * N`` multiply-adds) that goes through ``numpy.dot``.
DOT_MAX_MACS = 1 << 19


def _product(x, y, out):
    """The call computing ``out = x @ y``: ``numpy.dot`` for a BLAS matrix product, else ``numpy.matmul``."""
    if (x.ndim == 2 and y.ndim == 2 and out.flags.c_contiguous and out.size * x.shape[1] <= DOT_MAX_MACS
            and x.dtype == y.dtype == out.dtype and out.dtype in _DOT_DTYPES):
        return functools.partial(np.dot, x, y, out)
    return functools.partial(np.matmul, x, y, out)


def _matmul(ins, args):
    a, b = args

    def bind(x, y, out):
        if x.ndim > 2 and y.ndim == 2 and x.flags.c_contiguous:
            m = x.shape[-1]
            return _product(x.reshape(-1, m), y, out.reshape(-1, y.shape[-1]))
        return _product(x, y, out)

    return Impl(bind=bind, label="blas.matmul")


def _matmul_bf16(ins, args):
    """``cpu.matmul_bf16`` (made by the ``cpu_bf16_gemm`` pass): bfloat16 operands, float32 result, MKL."""
    from .mkl import bind_matmul_bf16

    return Impl(bind=bind_matmul_bf16, label="mkl.matmul_bf16")


def _lapack(reference, label):
    def kernel(ins, args):
        def run(*arrays):
            *operands, out = arrays
            out[...] = reference(*operands)

        return Impl(run=run, label=label)
    return kernel


KERNELS = {"matmul": _matmul,
           "cpu.matmul_bf16": _matmul_bf16,
           "svdvals": _lapack(svdvals_reference, "lapack.svdvals"),
           "svdvals_grad": _lapack(svdvals_grad_reference, "lapack.svdvals_grad")}
