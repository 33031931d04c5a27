"""How every numba kernel of the CPU backend is compiled.

Two decorators, both with ``cache=True`` so compiled machine code is reused
across processes:

- :func:`kernel_jit`: the default for kernels. It also marks the array
  arguments *noalias*. Numba cannot express ``restrict``; without it LLVM
  guards every loop with runtime overlap checks, and an optimizer update that
  writes a parameter in place (``w[i] = w[i] - lr * g[i]``) always fails them
  and runs the scalar fallback loop (6x slower, measured). The executor only
  ever aliases an output with an input read at exactly the same index, which
  stays correct under noalias.
- :func:`helper_jit`: small scalar functions inlined by LLVM into kernels.

Example:
    >>> import numpy as np
    >>> @kernel_jit
    ... def axpy(a, x, y):
    ...     for i in range(x.shape[0]):
    ...         y[i] += a * x[i]
    >>> y = np.zeros(3); axpy(2.0, np.ones(3), y); y
    array([2., 2., 2.])
"""

from __future__ import annotations

import os

from numba import njit
from numba.core.compiler import Compiler

#: Fast-math flags of the kernels: fused multiply-add, reciprocal, no signed zeros, and
#: reassociation so float reductions vectorize. Not 'nnan'/'ninf': masks use -inf and
#: isnan must keep working.
FASTMATH = frozenset({"contract", "arcp", "nsz", "reassoc"})
#: Helpers keep exact association: the range reductions of exp/tanh rely on it.
HELPER_FASTMATH = frozenset({"contract"})


class NoAliasCompiler(Compiler):
    """Numba's standard pipeline with ``noalias`` on the pointer arguments."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


def _options(parallel: bool = False, fastmath=FASTMATH) -> dict:
    opts = dict(cache=True, fastmath=set(fastmath), error_model="numpy", nogil=True)
    if parallel:
        opts["parallel"] = True
    else:
        opts["pipeline_class"] = NoAliasCompiler
    return opts


def kernel_jit(fn=None, *, parallel: bool = False):
    """``numba.njit`` with the backend's kernel options (cached, noalias, fast-math)."""
    if fn is None:
        return lambda f: njit(**_options(parallel))(f)
    return njit(**_options(parallel))(fn)


def helper_jit(fn):
    """``numba.njit`` for scalar helpers that kernels call (and LLVM inlines)."""
    return njit(cache=True, fastmath=set(HELPER_FASTMATH), error_model="numpy")(fn)


def num_threads() -> int:
    """Threads numba kernels may use (``numba.get_num_threads``)."""
    import numba

    return numba.get_num_threads()


#: Fused kernels with at least this many elements get a multi-threaded variant. Off by
#: default: numba's OpenMP pool and the BLAS pool both spin-wait between calls, and on a
#: machine with few cores they take turns at scheduler-tick granularity (a 2-core run
#: measured 16 ms steps instead of 3 ms). BLAS alone uses the cores; set
#: RUSTYASG_CPU_PARALLEL_MIN (elements) to opt in.
PARALLEL_MIN = int(os.environ.get("RUSTYASG_CPU_PARALLEL_MIN", 1 << 62))
