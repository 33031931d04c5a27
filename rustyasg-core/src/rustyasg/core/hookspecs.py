"""Plugin hooks (pluggy). Every hook name starts with ``rustyasg_``.

A plugin is a module or object with functions marked ``@hookimpl`` and named
like the specs below; it is found through the ``rustyasg.plugins`` entry-point
group (``[project.entry-points."rustyasg.plugins"] myplugin = "my_pkg.plugin"``).

Example plugin module:
    >>> from rustyasg.core.hookspecs import hookimpl
    >>> @hookimpl
    ... def rustyasg_register_ops(registry):
    ...     pass
"""

from __future__ import annotations

import pluggy

PROJECT = "rustyasg"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rustyasg_register_ops(registry) -> None:
    """Add ops: call ``registry.register(OpDef(...))`` or use ``rustyasg.core.defop(..., registry=registry)``.

    :param registry: the :class:`~rustyasg.core.registry.OpRegistry` (a dict of name -> OpDef).
    """


@hookspec
def rustyasg_register_kernels(backend: str, registry) -> None:
    """Add kernels for ``backend``: ``registry.register(backend, op_name, kernel)``.

    Called once per backend when it is first created; the kernel object is whatever that
    backend documents (for ``cpu``: see ``rustyasg.cpu.kernels``).

    :param backend: the backend's driver name (``"cpu"``, ``"wgpu"``, ...).
    :param registry: the :class:`~rustyasg.core.registry.KernelRegistry`.
    """


@hookspec
def rustyasg_register_passes(registry) -> None:
    """Add graph passes: ``registry.register(name, fn, position, backends=None)``.

    ``fn(program) -> program``; positions below 100 run for every backend before
    backend passes (fusion, memory planning) at 100 and above.
    """


@hookspec
def rustyasg_add_commands(subparsers) -> None:
    """Add subcommands to the ``rustyasg`` console command.

    ``subparsers`` is the :mod:`argparse` sub-parser action; add a parser and set its
    handler with ``set_defaults(handler=fn)``, where ``fn(args) -> int`` is the exit code.

    Example:
        >>> @hookimpl
        ... def rustyasg_add_commands(subparsers):
        ...     p = subparsers.add_parser("hello", help="say hello")
        ...     p.set_defaults(handler=lambda args: print("hello") or 0)
    """


@hookspec
def rustyasg_register_exporters(format: str, registry) -> None:
    """Add op translators for an export ``format`` (``"onnx"``, ...): ``registry.register(format, op, fn)``.

    Called each time an exporter for ``format`` starts; the translator is whatever that
    exporter documents (for ``"onnx"``: see ``rustyasg.onnx``), so a plugin that adds an op
    can ship its translator next to its kernels.

    :param format: the export format's name.
    :param registry: the :class:`~rustyasg.core.exporters.ExporterRegistry`.
    """
