"""Adapter and device acquisition for the wgpu backend.

One process shares one :class:`GpuContext` per adapter choice: creating a
wgpu device is slow (tens of milliseconds, more on software adapters) and
buffers cannot move between devices, so every part of the backend asks
:func:`get_context` instead of creating its own.

The adapter is chosen by the ``RUSTYASG_WGPU_ADAPTER`` environment variable
(or the ``spec`` argument): ``high-performance`` or ``low-power`` pick by power
preference; any other text picks the first adapter whose name, vendor,
description, backend or type contains it (case-insensitive). The WebGPU
implementation (wgpu-native or Dawn) is chosen by ``RUSTYASG_WEBGPU``
(see :mod:`.webgpu`).

Example::

    >>> from rustyasg.wgpu.device import get_context
    >>> ctx = get_context()
    >>> isinstance(ctx.name, str), isinstance(ctx.has("shader-f16"), bool)   # e.g. 'NVIDIA H100 80GB HBM3', True
    (True, True)
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from . import webgpu

ADAPTER_ENV = "RUSTYASG_WGPU_ADAPTER"

# Features the backend uses when the adapter offers them. shader-f16 and
# subgroup change which kernels can be generated; timestamp queries let the
# autotuner time kernels on the GPU clock. cooperative-matrix is experimental
# in wgpu and is asked for separately (see ``_request_device``).
WANTED_FEATURES = (
    "shader-f16",
    "subgroup",
    "subgroup-barrier",
    "timestamp-query",
    "timestamp-query-inside-encoders",
    "timestamp-query-inside-passes",
    # Dawn's names: its subgroups, and subgroup matrices (tensor cores).
    "subgroups",
    webgpu.SUBGROUP_MATRIX,
)
EXPERIMENTAL_FEATURES = ("cooperative-matrix",)

# Higher rank is preferred for "high-performance"; a software rasterizer
# (adapter_type CPU) is the last resort but keeps CI working.
_TYPE_RANK_FAST = {"DiscreteGPU": 4, "IntegratedGPU": 3, "VirtualGPU": 2, "CPU": 1}
_TYPE_RANK_LOW_POWER = {"IntegratedGPU": 4, "DiscreteGPU": 3, "VirtualGPU": 2, "CPU": 1}
# Vulkan/Metal/D3D12 expose compute features (f16, subgroups, large limits)
# that the OpenGL backend lacks, so they win ties.
_BACKEND_RANK = {"Vulkan": 3, "Metal": 3, "D3D12": 3, "OpenGL": 1, "OpenGLES": 1}

INSTALL_HINT = (
    "no GPU adapter is available to wgpu. Install a Vulkan driver: on "
    "Debian/Ubuntu `apt-get install mesa-vulkan-drivers` gives the lavapipe "
    "software adapter (slow, but correct); for speed install your GPU vendor's "
    "driver (NVIDIA, AMD or Intel) with Vulkan support. Check with "
    "`python -c \"import wgpu; print(wgpu.gpu.enumerate_adapters_sync())\"`."
)


_SYNC_BUFFERS: dict[int, tuple] = {}


class NoGpuAdapterError(RuntimeError):
    """No usable wgpu adapter, or none matching ``RUSTYASG_WGPU_ADAPTER``.

    Example:

        >>> raise NoGpuAdapterError("no adapter")
        Traceback (most recent call last):
        ...
        rustyasg.wgpu.device.NoGpuAdapterError: no adapter
    """


def adapter_summary(info: dict) -> str:
    """One line naming an adapter, for errors and benchmark reports.

    Example::

        >>> adapter_summary({"device": "llvmpipe", "adapter_type": "CPU",
        ...                  "backend_type": "Vulkan"})
        'llvmpipe (CPU) via Vulkan'
    """
    return f"{info.get('device', '?')} ({info.get('adapter_type', '?')}) via {info.get('backend_type', '?')}"


def _rank(info: dict, power: str) -> tuple:
    table = _TYPE_RANK_LOW_POWER if power == "low-power" else _TYPE_RANK_FAST
    return (table.get(info.get("adapter_type", ""), 0), _BACKEND_RANK.get(info.get("backend_type", ""), 2))


def _haystack(info: dict) -> str:
    keys = ("device", "vendor", "description", "backend_type", "adapter_type", "architecture")
    return " ".join(str(info.get(k, "")) for k in keys).lower()


def select_adapter_index(infos: Sequence[dict], spec: str | None) -> int:
    """Index of the adapter to use among ``infos`` (adapter ``info`` dicts).

    ``spec`` is ``None``/empty/``high-performance`` (fastest kind first),
    ``low-power`` (integrated first), or a case-insensitive substring.

    Example::

        >>> infos = [{"device": "llvmpipe", "adapter_type": "CPU", "backend_type": "Vulkan"},
        ...          {"device": "RTX 4090", "adapter_type": "DiscreteGPU", "backend_type": "Vulkan"}]
        >>> select_adapter_index(infos, None), select_adapter_index(infos, "llvm")
        (1, 0)
    """
    if not infos:
        raise NoGpuAdapterError(INSTALL_HINT)
    spec = (spec or "").strip()
    power = spec.lower() if spec.lower() in ("high-performance", "low-power") else "high-performance"
    order = sorted(range(len(infos)), key=lambda i: _rank(infos[i], power), reverse=True)
    if not spec or spec.lower() in ("high-performance", "low-power"):
        return order[0]
    needle = spec.lower()
    for i in order:
        if needle in _haystack(infos[i]):
            return i
    listing = "; ".join(adapter_summary(info) for info in infos)
    raise NoGpuAdapterError(
        f"{ADAPTER_ENV}={spec!r} matches no adapter. Available: {listing}. "
        "Use a substring of one of these names, 'high-performance' or 'low-power'."
    )


@dataclass(frozen=True)
class GpuContext:
    """A wgpu adapter + device + queue with the features and limits granted.

    Example::

        >>> ctx = get_context()
        >>> ctx.limits["max-compute-workgroups-per-dimension"] >= 65535   # WebGPU's guaranteed minimum
        True
    """

    adapter: Any
    device: Any
    queue: Any
    info: dict
    features: frozenset
    limits: dict = field(hash=False)
    refused: dict = field(default_factory=dict, hash=False)  # feature -> why the device refused it
    implementation: str = "native"  # WebGPU implementation: "native" (wgpu-native) or "dawn"
    # Dawn's subgroup-matrix shapes, e.g. {"component_type": "f16", "m": 16, "n": 16, "k": 16, ...}
    subgroup_matrix_configs: tuple = field(default=(), hash=False)

    @property
    def name(self) -> str:
        """The adapter's device name, e.g. ``'NVIDIA H100 80GB HBM3'``."""
        return str(self.info.get("device", "unknown"))

    @property
    def summary(self) -> str:
        """Name, type and backend in one line (see :func:`adapter_summary`)."""
        return adapter_summary(self.info)

    @property
    def cache_key(self) -> str:
        """Identifies adapter + driver, so tuned choices are not reused on other hardware."""
        parts = (self.info.get("device"), self.info.get("backend_type"), self.info.get("description"))
        key = "|".join(str(p or "") for p in parts)
        return key if self.implementation == "native" else f"{key}|{self.implementation}"

    @property
    def api(self) -> Any:
        """The wgpu-py-API module of this context's implementation (flags, enums)."""
        return webgpu.load(self.implementation)

    @property
    def is_software(self) -> bool:
        """True on CPU rasterizers (lavapipe/llvmpipe): right answers, no speed."""
        return self.info.get("adapter_type") == "CPU"

    def has(self, feature: str) -> bool:
        """Whether ``feature`` (a wgpu feature name) was granted on this device."""
        return feature in self.features

    def synchronize(self) -> None:
        """Block until all submitted GPU work has finished.

        wgpu-py 0.32's ``queue.on_submitted_work_done_sync`` is broken
        against its bundled wgpu-native, so this maps a tiny buffer after an
        empty copy: mapping completes only once the queue has drained.
        """
        wgpu = self.api
        bufs = _SYNC_BUFFERS.get(id(self.device))
        if bufs is None:
            src = self.device.create_buffer(size=16, usage=wgpu.BufferUsage.COPY_SRC)
            dst = self.device.create_buffer(size=16, usage=wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.MAP_READ)
            bufs = _SYNC_BUFFERS[id(self.device)] = (src, dst)
        src, dst = bufs
        enc = self.device.create_command_encoder()
        enc.copy_buffer_to_buffer(src, 0, dst, 0, 16)
        self.queue.submit([enc.finish()])
        dst.map_sync(wgpu.MapMode.READ)
        dst.unmap()

    def limit(self, name: str) -> int:
        """A granted limit by its wgpu name, e.g. ``'max-storage-buffers-per-shader-stage'``."""
        return int(self.limits[name])


def _request_device(adapter: Any, extra: Iterable[str]) -> tuple[Any, dict]:
    """(device, {feature: why it was refused}) with the wanted features and max limits."""
    available = set(adapter.features)
    features = [f for f in WANTED_FEATURES if f in available]
    # Ask for every limit at the adapter's maximum: the WebGPU defaults (e.g.
    # 128 MiB storage bindings, 8 storage buffers per stage) are far below
    # what real GPUs allow. Zero-valued entries are "not applicable" markers.
    limits = {k: v for k, v in adapter.limits.items() if v}
    experimental = [f for f in extra if f in available]
    refused = {}
    if experimental:
        try:
            device = adapter.request_device_sync(
                required_features=features + experimental, required_limits=limits
            )
            return device, refused
        except Exception as exc:  # experimental features may be refused; go on without them
            refused = {f: f"{type(exc).__name__}: {exc}" for f in experimental}
    return adapter.request_device_sync(required_features=features, required_limits=limits), refused


class SoftwareAdapterWarning(UserWarning):
    """The wgpu backend runs on a software (CPU) adapter such as llvmpipe/lavapipe."""


_software_noted = False


def _ensure_runtime_dir() -> None:
    """Give Mesa a valid ``XDG_RUNTIME_DIR`` when the environment has none.

    Mesa's window-system code prints "XDG_RUNTIME_DIR is invalid or not set" four times per
    process on headless machines and in containers; compute needs no display, so a private
    directory (mode 0700, as the XDG spec requires) silences it without hiding other errors.
    """
    current = os.environ.get("XDG_RUNTIME_DIR")
    if not sys.platform.startswith("linux") or (current and os.path.isdir(current) and os.access(current, os.W_OK)):
        return
    path = os.path.join(tempfile.gettempdir(), f"rustyasg-runtime-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = path


def _note_software(info: dict) -> None:
    """Say once per process that the adapter is a software one (a GPU driver is missing)."""
    global _software_noted
    if info.get("adapter_type") == "CPU" and not _software_noted:
        _software_noted = True
        warnings.warn(f"wgpu adapter {adapter_summary(info)} -- software: expect CPU speeds (install your GPU's "
                      f"Vulkan driver for speed, or use backend='cpu')",
                      SoftwareAdapterWarning, stacklevel=4)


def _subgroup_matrix_configs(wgpu: Any, adapter: Any) -> tuple:
    """Dawn's subgroup-matrix shapes of ``adapter`` (empty elsewhere)."""
    if webgpu.SUBGROUP_MATRIX not in adapter.features:
        return ()
    try:
        extras = importlib.import_module(wgpu.__name__ + ".backends.dawn.extras")
        return tuple(extras.get_adapter_properties(adapter).get("subgroup_matrix_configs", ()))
    except Exception:  # an older wgpudawn without adapter properties: no tensor-core kernels
        return ()


@functools.lru_cache(maxsize=None)
def _context_for(spec: str, experimental: bool, implementation: str = "native") -> GpuContext:
    _ensure_runtime_dir()
    wgpu = webgpu.load(implementation)  # imported here so `import rustyasg.wgpu` works without a GPU stack

    adapters = [a for a in wgpu.gpu.enumerate_adapters_sync() if a.info.get("backend_type") != "Null"]
    if not adapters and implementation == "dawn":
        raise NoGpuAdapterError(
            "Dawn (RUSTYASG_WEBGPU=dawn) found no GPU adapter: it refuses software adapters such as "
            "lavapipe, so it needs a GPU with a Vulkan (or Metal/D3D12) driver. Set RUSTYASG_WEBGPU=native "
            "(wgpu-native) to run on a software adapter.")
    infos = [dict(a.info) for a in adapters]
    adapter = adapters[select_adapter_index(infos, spec)]
    device, refused = _request_device(adapter, EXPERIMENTAL_FEATURES if experimental else ())
    _note_software(dict(adapter.info))
    return GpuContext(
        adapter=adapter,
        device=device,
        queue=device.queue,
        info=dict(adapter.info),
        features=webgpu.canonical_features(device.features),
        limits=dict(device.limits),
        refused=refused,
        implementation=implementation,
        subgroup_matrix_configs=_subgroup_matrix_configs(wgpu, adapter),
    )


def get_context(spec: str | None = None, *, experimental: bool = False) -> GpuContext:
    """The shared :class:`GpuContext` for ``spec`` (default: ``$RUSTYASG_WGPU_ADAPTER``).

    ``experimental=True`` also asks for wgpu's experimental features
    (cooperative matrices) when the adapter lists them.

    Example::

        >>> ctx = get_context("llvmpipe")             # Mesa's software adapter (scripts/test.sh installs it)
        >>> ctx.is_software
        True
    """
    if spec is None:
        spec = os.environ.get(ADAPTER_ENV, "")
    _ensure_runtime_dir()  # before any implementation looks for adapters
    return _context_for(spec, experimental, webgpu.implementation())
