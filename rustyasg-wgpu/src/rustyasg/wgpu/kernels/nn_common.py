"""What the nn-primitive kernel planners share: the device environment and launch building.

The nn ops (convolution, pooling, normalization) are planned when a program is
compiled: a *planner* turns one op with concrete shapes and attributes into a
list of :class:`~rustyasg.wgpu.pipelines.KernelLaunch` that a compiled step
replays in order. Planners get an :class:`NnEnv`: the device, the shared
pipeline cache, the matmul planner (convolutions are GEMMs) and a ``scratch``
allocator for intermediate buffers (im2col columns, argmax indices, partial
sums). Scratch buffers belong to the launches that use them; they stay alive
as long as the compiled step, and :meth:`NnEnv.release` gives them back.

Kernels here use one thread per output element in 256-thread workgroups,
dispatched through :func:`~rustyasg.wgpu.pipelines.split_workgroups` so any
size fits the 65535-per-dimension limit.

Example::

    >>> env = NnEnv.create(get_context())                               # doctest: +SKIP
    >>> launch = env.launch(src, layout, {"n": 10}, [x, y], 1, "demo")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..pipelines import KernelLaunch, PipelineCache, UniformLayout, uniform_buffer

# Threads per workgroup of the one-thread-per-element kernels (im2col, pooling).
THREADS = 256

# WGSL prelude of the one-thread-per-element kernels: the element this thread
# owns, from a dispatch split over x/y/z by `split_workgroups`.
ELEMENT_INDEX_WGSL = f"""
fn element_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {{
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * {THREADS}u + lid;
}}
"""

ELEMENT_MAIN_WGSL = (f"@compute @workgroup_size({THREADS})\n"
                     "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
                     "        @builtin(local_invocation_index) lid: u32) {\n"
                     "    let id = element_index(wid, nwg, lid);\n"
                     "    if (id >= p.total) { return; }\n")


def storage_decls(names: Sequence[str], writable: Sequence[str] = (), types: dict | None = None) -> str:
    """``@binding`` declarations of f32 storage arrays ``names`` (in order), then the uniform ``p``.

    Example::

        >>> print(storage_decls(["x", "y"], writable=["y"]))
        @group(0) @binding(0) var<storage, read> x: array<f32>;
        @group(0) @binding(1) var<storage, read_write> y: array<f32>;
        @group(0) @binding(2) var<uniform> p: Params;
    """
    types = types or {}
    lines = []
    for i, name in enumerate(names):
        access = "read_write" if name in writable else "read"
        lines.append(f"@group(0) @binding({i}) var<storage, {access}> {name}: array<{types.get(name, 'f32')}>;")
    lines.append(f"@group(0) @binding({len(names)}) var<uniform> p: Params;")
    return "\n".join(lines)


def require_float32(op: str, *dtypes: Any) -> None:
    """The nn kernels are written for float32; say so clearly for anything else.

    Example::

        >>> require_float32("conv2d", np.float32)
        >>> require_float32("conv2d", np.float64)
        Traceback (most recent call last):
        ...
        TypeError: wgpu conv2d kernels support float32 tensors, got float64
    """
    for dt in dtypes:
        if np.dtype(dt) != np.float32:
            raise TypeError(f"wgpu {op} kernels support float32 tensors, got {np.dtype(dt)}")


def numel(shape: Sequence[int]) -> int:
    """Number of elements of ``shape`` (1 for a scalar).

    Example::

        >>> numel((2, 3, 4)), numel(())
        (24, 1)
    """
    return int(np.prod(tuple(shape), dtype=np.int64))


@dataclass
class NnEnv:
    """Device environment of the nn planners.

    ``scratch(nbytes)`` returns a storage buffer the planner may use freely
    within its launches; ``release()`` returns every scratch buffer handed
    out (call it when the compiled step that holds the launches is dropped).

    Example::

        >>> env = NnEnv.create(get_context())          # doctest: +SKIP
        >>> buf = env.scratch(1024); env.release()     # doctest: +SKIP
    """

    ctx: Any
    pipelines: PipelineCache
    matmul: Any  # MatmulPlanner (imported lazily: the autotuner touches the disk)
    acquire: Callable[[int], Any]
    give_back: Callable[[Any], None] | None = None
    held: list = field(default_factory=list)

    @classmethod
    def create(cls, ctx: Any, pipelines: PipelineCache | None = None, matmul: Any = None, pool: Any = None,
               autotune: bool | None = None) -> "NnEnv":
        """An environment on ``ctx``; scratch comes from ``pool`` (a ``BufferPool``) when given."""
        from .matmul import MatmulPlanner
        from ..buffers import BufferPool

        pipelines = pipelines or PipelineCache(ctx)
        matmul = matmul or MatmulPlanner(ctx, pipelines, autotune=autotune)
        pool = pool or BufferPool(ctx)
        return cls(ctx, pipelines, matmul, pool.acquire, pool.release)

    def scratch(self, nbytes: int) -> Any:
        """A scratch storage buffer of at least ``nbytes`` (kept until :meth:`release`)."""
        buf = self.acquire(max(int(nbytes), 16))
        self.held.append(buf)
        return buf

    def release(self) -> None:
        """Give back every scratch buffer handed out so far."""
        if self.give_back is not None:
            for buf in self.held:
                self.give_back(buf)
        self.held.clear()

    @property
    def max_binding(self) -> int:
        """Largest storage buffer binding, in bytes."""
        return int(self.ctx.limits.get("max-storage-buffer-binding-size", 1 << 27))

    @property
    def has_subgroups(self) -> bool:
        """Whether WGSL subgroup operations may be used."""
        return self.ctx.has("subgroup")

    def launch(self, wgsl: str, layout: UniformLayout, values: dict, buffers: Sequence[Any], workgroups: int,
               label: str) -> KernelLaunch:
        """A launch of ``wgsl`` on ``buffers`` with the uniform block ``layout`` filled from ``values``."""
        pipe = self.pipelines.get(wgsl)
        ubuf = uniform_buffer(self.ctx, layout.pack(**values))
        return KernelLaunch(self.ctx, pipe, list(buffers) + [ubuf], max(int(workgroups), 1), label=label,
                            uniforms=(layout, dict(values)))

    def elementwise_launch(self, wgsl: str, layout: UniformLayout, values: dict, buffers: Sequence[Any],
                           label: str) -> KernelLaunch:
        """A launch of a one-thread-per-element kernel over ``values['total']`` elements."""
        return self.launch(wgsl, layout, values, buffers, -(-int(values["total"]) // THREADS), label)
