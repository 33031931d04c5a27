"""Graph passes the wgpu backend adds (positions >= 100, ``backends=("wgpu",)``).

None are needed yet: fusion and memory planning happen when the program is
compiled (:mod:`rustyasg.wgpu.fusion`, :mod:`rustyasg.wgpu.memory`), where the
device's limits are known.

Example:
    >>> from rustyasg.core.registry import PassRegistry
    >>> reg = PassRegistry(); register(reg); sorted(reg)
    []
"""

from __future__ import annotations


def register(registry) -> None:
    """Add the wgpu passes to ``registry`` (a :class:`~rustyasg.core.registry.PassRegistry`)."""
    return None
