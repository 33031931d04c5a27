"""The wgpu part's plugin: registers its kernels (and passes) through the core's hooks.

Kernels live in :mod:`rustyasg.wgpu.kernels`; every module there with a module-level
``KERNELS = {op_name: kernel}`` dict contributes (the interface is documented in
:mod:`rustyasg.wgpu.kernels.api`). Importing this module touches no GPU.

Example:
    >>> from rustyasg.core.plugins import load_kernels
    >>> "matmul" in load_kernels("wgpu")
    True
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Dict

from rustyasg.core.hookspecs import hookimpl

BACKEND = "wgpu"


def kernel_table() -> Dict[str, object]:
    """Every ``KERNELS`` entry of the modules in :mod:`rustyasg.wgpu.kernels`, by op name."""
    from . import kernels

    table: Dict[str, object] = {}
    for info in sorted(pkgutil.iter_modules(kernels.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        found = getattr(module, "KERNELS", None)
        if isinstance(found, dict):
            table.update(found)
    return table


@hookimpl
def rustyasg_register_kernels(backend, registry):
    if backend != BACKEND:
        return
    from rustyasg.core.backend_api import subscribe

    from .fusion import float_fusable_op
    from .kernels.ew_ops import INT_TEMPLATES, elementwise

    for op, kernel in kernel_table().items():
        registry.register(BACKEND, op, kernel)
    # Every elementwise table row the generators can compute, including rows added later.
    subscribe(lambda row: (float_fusable_op(row.name) or row.name in INT_TEMPLATES)
              and registry.register(BACKEND, row.name, elementwise))


@hookimpl
def rustyasg_register_passes(registry):
    from .passes import register

    register(registry)
