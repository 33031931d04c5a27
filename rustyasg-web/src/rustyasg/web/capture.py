"""Compile a program with the wgpu backend while recording what a browser must replay.

The wgpu backend generates WGSL text, creates buffers, writes uniform blocks and constants
and builds launches, all through its context's ``device`` and ``queue``. A browser needs
exactly those facts: which shader text each pipeline was made from, and which bytes were
written into which buffer before the first run. :class:`RecordingDevice` and
:class:`RecordingQueue` wrap the real wgpu objects, pass every call through and note those
facts, so the export reuses the backend's own kernel generation unchanged.

The recording context also narrows the adapter to what every WebGPU browser guarantees
(:data:`WEB_LIMITS`, no optional features): the generated kernels then fit the browser,
whatever the machine that exports them.

Example::

    captured = compile_for_web(program)
    captured.shader_of(captured.executable.launches[0].pipeline)[:20]
    # 'struct P { n: u32, }'
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional

from rustyasg.core.program import Program

#: WebGPU's default limits (https://www.w3.org/TR/webgpu/#limit-default), the ones a page gets
#: without asking and that every implementation supports, under the wgpu-native names the
#: backend reads. An export keeps the smaller of these and the exporting adapter's limits.
WEB_LIMITS: Dict[str, int] = {
    "max-storage-buffers-per-shader-stage": 8,
    "max-uniform-buffers-per-shader-stage": 12,
    "max-storage-buffer-binding-size": 134217728,
    "max-uniform-buffer-binding-size": 65536,
    "max-buffer-size": 268435456,
    "max-bind-groups": 4,
    "max-bindings-per-bind-group": 1000,
    "max-compute-workgroup-storage-size": 16384,
    "max-compute-invocations-per-workgroup": 256,
    "max-compute-workgroup-size-x": 256,
    "max-compute-workgroup-size-y": 256,
    "max-compute-workgroup-size-z": 64,
    "max-compute-workgroups-per-dimension": 65535,
    "min-storage-buffer-offset-alignment": 256,
    "min-uniform-buffer-offset-alignment": 256,
}

# Alignments are minimums: a larger value is the stricter one.
_ALIGNMENTS = ("min-storage-buffer-offset-alignment", "min-uniform-buffer-offset-alignment")


def web_limits(native: Mapping[str, int], overrides: Optional[Mapping[str, int]] = None) -> Dict[str, int]:
    """The limits an export is compiled for: :data:`WEB_LIMITS` (or ``overrides``) within ``native``.

    Example::

        >>> web_limits({"max-storage-buffers-per-shader-stage": 16})["max-storage-buffers-per-shader-stage"]
        8
        >>> web_limits({}, {"max-storage-buffers-per-shader-stage": 10})["max-storage-buffers-per-shader-stage"]
        10
    """
    wanted = {**WEB_LIMITS, **dict(overrides or {})}
    out = dict(native)
    for name, value in wanted.items():
        have = native.get(name)
        if have is None:
            out[name] = int(value)
        elif name in _ALIGNMENTS:
            out[name] = max(int(have), int(value))
        else:
            out[name] = min(int(have), int(value))
    return out


class RecordingQueue:
    """A wgpu queue that remembers the bytes last written into every buffer."""

    def __init__(self, queue: Any, device: "RecordingDevice"):
        self._queue = queue
        self._device = device

    def write_buffer(self, buffer: Any, buffer_offset: int, data: Any, data_offset: int = 0, size: Any = None):
        raw = bytes(memoryview(data).cast("B"))
        raw = raw[data_offset: None if size is None else data_offset + size]
        self._device.note_write(buffer, int(buffer_offset), raw)
        return self._queue.write_buffer(buffer, buffer_offset, data, data_offset, size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


class RecordingDevice:
    """A wgpu device that remembers shader sources and buffer contents.

    ``contents(buffer)`` is the bytes written into a buffer through the recording queue
    (``None`` if nothing was), ``shader_of(pipeline)`` the WGSL a pipeline was built from.
    """

    def __init__(self, device: Any):
        self._device = device
        self.queue = RecordingQueue(device.queue, self)
        self._modules: Dict[int, tuple] = {}      # id(module) -> (module, code)
        self._pipelines: Dict[int, tuple] = {}    # id(pipeline) -> (pipeline, code, entry)
        self._contents: Dict[int, tuple] = {}     # id(buffer) -> (buffer, bytearray)

    # -- recorded calls ------------------------------------------------------------------
    def create_shader_module(self, *, code: str, **kw: Any) -> Any:
        module = self._device.create_shader_module(code=code, **kw)
        self._modules[id(module)] = (module, code)
        return module

    def create_compute_pipeline(self, *, layout: Any, compute: Mapping[str, Any], **kw: Any) -> Any:
        pipeline = self._device.create_compute_pipeline(layout=layout, compute=compute, **kw)
        module = compute["module"]
        self._pipelines[id(pipeline)] = (pipeline, self._modules[id(module)][1], compute.get("entry_point", "main"))
        return pipeline

    def note_write(self, buffer: Any, offset: int, raw: bytes) -> None:
        _, content = self._contents.setdefault(id(buffer), (buffer, bytearray(int(buffer.size))))
        content[offset: offset + len(raw)] = raw

    # -- queries ---------------------------------------------------------------------------
    def shader_of(self, pipeline: Any) -> tuple:
        """``(wgsl, entry_point)`` of a pipeline made through this device."""
        try:
            _, code, entry = self._pipelines[id(pipeline)]
        except KeyError:
            raise KeyError("pipeline was not created through the recording device (a cache outside the "
                           "export's backend?)") from None
        return code, entry

    def contents(self, buffer: Any) -> Optional[bytes]:
        entry = self._contents.get(id(buffer))
        return None if entry is None else bytes(entry[1])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)


@dataclasses.dataclass
class CapturedProgram:
    """A program compiled for the web: the wgpu executable and the recording device."""

    program: Program
    executable: Any
    device: RecordingDevice
    limits: Dict[str, int]
    backend: Any

    def shader_of(self, pipeline: Any) -> tuple:
        return self.device.shader_of(pipeline)


def web_backend(limits: Optional[Mapping[str, int]] = None, adapter: Optional[str] = None):
    """A fresh wgpu backend whose context records, with the browser's limits and no optional features.

    Matmul tile choice uses the size heuristic, not the autotuner: timings on the exporting
    machine say nothing about the browser's GPU. Convolutions write their columns (im2col)
    rather than gather them inside the GEMM: the gathered kernels were chosen by timings on an
    H100, and Chrome's software WebGPU (SwiftShader) took minutes on a small CNN's instead of
    seconds.
    """
    from rustyasg.wgpu.backend import WgpuBackend
    from rustyasg.wgpu.buffers import BufferPool, Readback
    from rustyasg.wgpu.kernels.api import KernelBuilder
    from rustyasg.wgpu.kernels.matmul import MatmulPlanner
    from rustyasg.wgpu.pipelines import PipelineCache

    backend = WgpuBackend(adapter)
    real = backend.ctx
    device = RecordingDevice(real.device)
    ctx = dataclasses.replace(real, device=device, queue=device.queue, features=frozenset(),
                              limits=web_limits(real.limits, limits))
    backend.ctx = ctx
    backend.pipelines = PipelineCache(ctx)
    backend.pool = BufferPool(ctx)
    backend.readback = Readback(ctx)
    backend.kernel_builder = KernelBuilder(ctx, backend.pipelines,
                                           matmul=MatmulPlanner(ctx, backend.pipelines, autotune=False),
                                           conv_lowering="im2col")
    return backend


def compile_for_web(program: Program, limits: Optional[Mapping[str, int]] = None,
                    adapter: Optional[str] = None) -> CapturedProgram:
    """Compile ``program`` (already through the passes) with a recording :func:`web_backend`."""
    backend = web_backend(limits, adapter)
    exe = backend.compile(program)
    return CapturedProgram(program, exe, backend.ctx.device, dict(backend.ctx.limits), backend)
