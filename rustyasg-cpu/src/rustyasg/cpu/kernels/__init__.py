"""Kernels of the cpu backend, one module per op family (see :mod:`.protocol`).

Each family module has a ``KERNELS`` dict of op name -> kernel; the plugin
registers them all through ``rustyasg_register_kernels``.

Example:
    >>> sorted(m.__name__.rsplit(".", 1)[-1] for m in families())[:3]
    ['attention', 'bits', 'conv']
"""

from __future__ import annotations

import importlib

FAMILIES = ("elementwise", "reduce", "movement", "linalg", "random", "misc", "conv", "pool", "norm", "scatter", "scan", "bits", "attention")


def families():
    """The imported family modules."""
    return [importlib.import_module(f"{__name__}.{name}") for name in FAMILIES]
