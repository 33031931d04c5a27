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
- :func:`inlined_jit`: helpers inlined into their callers before they compile.

``RUSTYASG_CPU_VECTOR_WIDTH=512`` has kernels vectorized with 512-bit registers on
processors with AVX-512 (:func:`prefer_wide_vectors`); LLVM's default there is 256.

Example (kernels are defined in modules, so numba can cache them by file):
    >>> import numpy as np
    >>> from rustyasg.cpu.kernels.conv import col2im   # defined with @kernel_jit
    >>> dxp = np.empty((1, 1, 2, 2)); col2im(np.ones((1, 1, 4)), dxp, 1, 1, 1, 1, 1, 1, 2, 2, 0, 1); float(dxp.sum())
    4.0
"""

from __future__ import annotations

import os
import weakref
from typing import Dict, Tuple

from numba import config as numba_config
from numba import njit
from numba.core import registry
from numba.core.codegen import get_host_cpu_features
from numba.core.compiler import Compiler

from rustyasg.core import observe

#: Fast-math flags of the kernels: fused multiply-add, no signed zeros, and reassociation so
#: float reductions vectorize. Not 'nnan'/'ninf': masks use -inf, isnan must keep working and
#: NaN/inf propagate as in numpy. Not 'arcp': with it LLVM turns ``1 / sqrt(x)`` into an
#: rsqrt estimate whose Newton step gives NaN at 0 and inf (numpy: inf and 0) and loses ulps.
FASTMATH = frozenset({"contract", "nsz", "reassoc"})
#: Helpers keep exact association: the range reductions of exp/tanh rely on it.
HELPER_FASTMATH = frozenset({"contract"})
#: No C-callable wrapper: kernels are called from Python (or inlined into each other), never
#: through a C function pointer, and the wrapper is one more function for LLVM to compile.
#: Generated loops also go without numba's reference-counting runtime (``_nrt=False``): they
#: only index the arrays they are given. Together 10-20% of a small kernel's compile (a fused
#: SGD update 0.11-0.12 -> 0.095-0.10 s, W1's tanh layer 0.33-0.35 -> 0.29-0.30 s; AMD EPYC).
LEAN = {"no_cfunc_wrapper": True}


def prefer_wide_vectors() -> bool:
    """With ``RUSTYASG_CPU_VECTOR_WIDTH=512``, let LLVM vectorize with 512-bit registers where
    the processor has AVX-512; True if it was set.

    For AVX-512 processors LLVM prefers 256-bit vectors (``prefer-256-bit``). Measured on the
    2-core Xeon (``benchmarks/cpu/NOTES.md``): compute-bound loops gain (GELU, tanh form, on
    1024x512 float32 437 -> 329 us, its gradient 561 -> 403 us, sigmoid 344 -> 282 us; the
    GPT-mini step 25.0 -> 23.9 ms), but loops shorter than 16 lanes no longer vectorize
    (LeNet's 2x2 max pooling over rows of 14 and 5: forward 0.12 -> 0.21 ms, backward 0.30 ->
    0.60 ms; its step 4.86 -> 5.45 ms). So it is not the default.

    numba fixes its target machine when it first compiles or loads a function, so this runs
    when the backend's kernels are defined (this module's import); it changes nothing where
    numba is already running, or where ``NUMBA_CPU_FEATURES`` is given. numba's on-disk cache
    keys machine code by these features, so code built either way is never mixed up.
    """
    width = os.environ.get("RUSTYASG_CPU_VECTOR_WIDTH", "").strip()
    if width not in ("", "256", "512"):
        raise ValueError(f"RUSTYASG_CPU_VECTOR_WIDTH must be 256 or 512, got {width!r}")
    if width != "512" or numba_config.CPU_FEATURES:
        return False
    if "_toplevel_target_context" in vars(registry.cpu_target):  # numba's target machine exists
        return False
    features = get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    numba_config.CPU_FEATURES = features + ",-prefer-256-bit"
    return True


WIDE_VECTORS = prefer_wide_vectors()


class NoAliasCompiler(Compiler):
    """Numba's standard pipeline with ``noalias`` on the pointer arguments."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


#: Every dispatcher made by the decorators below, for the disk-cache counters.
DISPATCHERS: "weakref.WeakSet" = weakref.WeakSet()


def _tracked(dispatcher):
    DISPATCHERS.add(dispatcher)
    return dispatcher


def cache_counts() -> Dict[str, Tuple[int, int]]:
    """``{kernel: (disk-cache hits, misses)}`` of the backend's numba kernels so far in this process.

    A miss is a compilation (nothing usable on disk); a hit loaded machine code that an
    earlier process compiled. Registered as ``observe.KERNEL_CACHES["numba"]``, so
    ``rg.profile()``'s compile table shows them.
    """
    out: Dict[str, Tuple[int, int]] = {}
    for d in list(DISPATCHERS):
        stats = d.stats
        hits, misses = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
        if hits or misses:
            name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
            h, m = out.get(name, (0, 0))
            out[name] = (h + hits, m + misses)
    return out


observe.KERNEL_CACHES["numba"] = cache_counts


def kernel_jit(fn):
    """``numba.njit`` with the backend's kernel options (cached, noalias, fast-math, no GIL).

    Kernels release the GIL so :mod:`.threads` can run chunks of one on several cores.
    """
    return _tracked(njit(cache=True, fastmath=set(FASTMATH), error_model="numpy", nogil=True,
                         pipeline_class=NoAliasCompiler, **LEAN)(fn))


def elementwise_jit(fn):
    """:func:`kernel_jit` without reassociation, for loops that only map elements.

    Such loops vectorize without it, and with it LLVM may cancel ``a + (-a)`` to 0 where
    ``a`` is inf (numpy: NaN). Hand-written reductions keep :func:`kernel_jit`; generated fused
    reductions add their elements through :func:`accumulate`.
    """
    return _tracked(njit(cache=True, fastmath=set(FASTMATH - {"reassoc"}), error_model="numpy", nogil=True,
                         pipeline_class=NoAliasCompiler, **LEAN, _nrt=False)(fn))


def inlined_jit(fn):
    """``numba.njit(inline="always")``: a helper whose numba IR each caller takes in before it is
    compiled (with the caller's flags), so it is never a compilation of its own.

    For loops shared by several kernels where a helper of its own would be one more compile in
    each process that needs it, and where calling it as a compiled function would change what the
    caller's loops compile to (:func:`.kernels.norm._channel_moments`).
    """
    return njit(inline="always", error_model="numpy")(fn)


def helper_jit(fn):
    """``numba.njit`` for scalar helpers that kernels call (and LLVM inlines)."""
    return _tracked(njit(cache=True, fastmath=set(HELPER_FASTMATH), error_model="numpy", **LEAN)(fn))


@_tracked
@njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def accumulate(total, value):
    """``total + value`` where only this addition may be reassociated.

    A fused reduction kernel is compiled with :func:`elementwise_jit` and adds each element
    through this helper: once inlined, the accumulating add alone carries the reassociation
    flag (so the loop still vectorizes), while the element's own arithmetic keeps numpy's
    IEEE semantics (``sum(x - x)`` is NaN where ``x`` is inf or NaN, not 0). Not 'nsz': with
    reassociation and no-signed-zeros on the add, LLVM cancels ``total + (a - a)`` to ``total``.
    """
    return total + value
