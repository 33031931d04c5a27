"""RustyASG's CPU backend: numba kernels, elementwise fusion and memory planning.

It is the default backend (``rustyasg.core.get_backend()`` with no argument).
Generated kernels are cached on disk (:mod:`rustyasg.cpu.cache`), so a second
process reuses them without compiling.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None, 3), name="x")
    >>> f = rg.function([x], rg.relu(x).sum(axis=1), backend="cpu")
    >>> f(np.array([[1, -2, 3]], np.float32))
    array([4.], dtype=float32)
"""

from __future__ import annotations

from .backend import CpuBackend
from .cache import cache_root, kernel_dir

__all__ = ["CpuBackend", "cache_root", "kernel_dir"]

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-cpu")  # from the package metadata
