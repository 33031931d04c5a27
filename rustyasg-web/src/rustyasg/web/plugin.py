"""The web part's plugin: the ``rustyasg serve-web`` and ``rustyasg web-demo`` commands."""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_add_commands(subparsers):
    from .cli import add_commands

    add_commands(subparsers)
