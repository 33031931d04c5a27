"""The serve part's plugin: the ``rustyasg serve`` command."""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_add_commands(subparsers):
    from .cli import add_commands

    add_commands(subparsers)
