"""The part's plugin: the ``rustyasg view`` command (see :mod:`.cli`)."""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_add_commands(subparsers) -> None:
    from .cli import add_view_command

    add_view_command(subparsers)
