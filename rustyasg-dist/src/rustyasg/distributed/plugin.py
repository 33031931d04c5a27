"""The plugin of ``rustyasg-dist``: collective ops, their cpu and wgpu kernels, ``rustyasg launch``.

Importing it is cheap: MPI starts only when a collective is first built or run.

Example:
    >>> import rustyasg.core as rg
    >>> rg.OPS["all_reduce"].plugin
    'rustyasg-dist'
"""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_register_ops(registry):
    from .ops import OPDEFS

    for opdef in OPDEFS:
        registry.register(opdef, replace=True)


@hookimpl
def rustyasg_register_kernels(backend, registry):
    if backend == "cpu":
        from .kernels_cpu import KERNELS
    elif backend == "wgpu":
        from .kernels_wgpu import KERNELS
    else:
        return
    for op, kernel in KERNELS.items():
        registry.register(backend, op, kernel)


@hookimpl
def rustyasg_add_commands(subparsers):
    from .launch import add_command

    add_command(subparsers)
