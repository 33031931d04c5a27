"""matmul through BLAS (numpy's ``matmul`` with ``out=``).

A batched left operand times a plain matrix, ``(B, T, K) @ (K, N)``, is one GEMM
of ``(B*T, K) @ (K, N)`` when the left operand is contiguous: numpy would
otherwise call BLAS once per batch entry. Transposed operands are passed as
strided views; BLAS reads them through its transpose flags without a copy.

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

from .protocol import Impl


def _matmul(ins, args):
    a, b = args

    def bind(x, y, out):
        if x.ndim > 2 and y.ndim == 2 and x.flags.c_contiguous:
            m = x.shape[-1]
            return functools.partial(np.matmul, x.reshape(-1, m), y, out.reshape(-1, y.shape[-1]))
        return functools.partial(np.matmul, x, y, out)

    return Impl(bind=bind, label="blas.matmul")


KERNELS = {"matmul": _matmul}
