"""The wgpu backend (driver ``wgpu`` in the ``rustyasg.backends`` entry-point group)."""

from __future__ import annotations

from rustyasg.core.executor import Backend


class WgpuBackend(Backend):
    """Placeholder while the executor is written."""

    name = "wgpu"

    def compile(self, program):
        raise NotImplementedError("the wgpu executor is being written")

    def to_device(self, array):
        raise NotImplementedError

    def to_host(self, handle):
        raise NotImplementedError
