"""The core's own plugin: registers the core op set and passes through the same hooks as any plugin."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def rustyasg_register_ops(registry):
    from . import ops  # noqa: F401  (importing the families registers them in OPS)


@hookimpl
def rustyasg_register_passes(registry):
    from . import passes  # noqa: F401
