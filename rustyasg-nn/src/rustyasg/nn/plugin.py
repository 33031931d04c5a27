"""rustyasg-nn's plugin: the ``rustyasg convert`` subcommand (registered in the ``rustyasg.plugins`` group).

Example:
    >>> from rustyasg.nn import plugin
    >>> callable(plugin.rustyasg_add_commands)
    True
"""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_add_commands(subparsers) -> None:
    from .convert import add_convert_command

    add_convert_command(subparsers)
