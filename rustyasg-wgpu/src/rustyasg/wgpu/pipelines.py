"""Compute pipelines: a cache keyed by WGSL source, uniforms, and dispatch.

Kernels are generated as WGSL text. Compiling WGSL (naga, then the driver)
takes milliseconds to seconds, so :class:`PipelineCache` keys pipelines by
the source's hash: two call sites that generate the same text share one
pipeline. Generators keep sizes, strides and per-step scalars out of the
text and in a uniform block (:class:`UniformLayout`), so one pipeline serves
every shape and every training step.

Large tensors need more than 65535 workgroups, the per-dimension dispatch
limit; :func:`split_workgroups` spreads a linear count over x, y and z, and
kernels rebuild the linear index with :data:`LINEAR_WORKGROUP_WGSL`.

Example::

    >>> split_workgroups(100_000)
    (50000, 2, 1)
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from typing import Any, Sequence

from .webgpu import adapt_wgsl

MAX_WORKGROUPS_PER_DIM = 65535

# WGSL helpers every generated kernel includes: the linear workgroup index of a
# dispatch made by `split_workgroups` (kernels return early when it is past the
# real count: the split may round up by less than one row), and NaN or infinity
# from their bits read at run time (Tint, in Chrome and Dawn, refuses a constant
# expression whose value is not finite, such as bitcast<f32>(0x7fc00000u)).
LINEAR_WORKGROUP_WGSL = """
fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + nwg.x * (wid.y + nwg.y * wid.z);
}
fn f32_from_bits(b: u32) -> f32 {
    var bits = b;
    return bitcast<f32>(bits);
}
"""


# A float constant made from its bits: bitcast<f32>(123u) or bitcast<f32>(0x7f800000u).
_BITCAST_CONSTANT = re.compile(r"bitcast<f32>\(\s*(0x[0-9a-fA-F]+|[0-9]+)u\s*\)")


def nonfinite_constants(wgsl: str) -> list[str]:
    """The ``bitcast<f32>(<bits>u)`` constant expressions of ``wgsl`` whose value is NaN or infinite.

    Tint (Dawn, Chrome) refuses them; naga (wgpu-native) accepts them, so the
    pipeline cache checks every kernel on both, and software-adapter CI catches
    what would only fail in a browser or on Dawn. ``f32_from_bits`` is the way.

    Example::

        >>> nonfinite_constants("let a = bitcast<f32>(4286578688u); let b = bitcast<f32>(0x3f800000u);")
        ['bitcast<f32>(4286578688u)']
        >>> nonfinite_constants("return f32_from_bits(0x7fc00000u);")
        []
    """
    return [m.group(0) for m in _BITCAST_CONSTANT.finditer(wgsl)
            if (int(m.group(1), 0) >> 23) & 0xFF == 0xFF]


def split_workgroups(count: int, max_per_dim: int = MAX_WORKGROUPS_PER_DIM) -> tuple[int, int, int]:
    """Spread ``count`` workgroups over (x, y, z), each at most ``max_per_dim``.

    The product is at least ``count`` and exceeds it by less than ``x*y``
    rounding (kernels skip the extra ones with :data:`LINEAR_WORKGROUP_WGSL`).

    Example::

        >>> split_workgroups(10), split_workgroups(65536)
        ((10, 1, 1), (32768, 2, 1))
    """
    count = max(int(count), 1)
    if count > max_per_dim**3:
        raise ValueError(f"{count} workgroups exceed {max_per_dim}^3, the most a dispatch can address")
    z = -(-count // (max_per_dim * max_per_dim))
    per_z = -(-count // z)
    y = -(-per_z // max_per_dim)
    x = -(-per_z // y)
    return x, y, z


_FORMATS = {"u32": "I", "i32": "i", "f32": "f"}


class UniformLayout:
    """A uniform block of 4-byte scalars, shared by a generator and its caller.

    The WGSL struct and the packed bytes come from one field list, so they
    cannot disagree. Scalar-only structs have 4-byte members; the size is
    padded to 16 bytes as uniform buffers require.

    Example::

        >>> lay = UniformLayout([("n", "u32"), ("alpha", "f32")])
        >>> print(lay.wgsl_struct("Params"))
        struct Params { n: u32, alpha: f32, }
        >>> len(lay.pack(n=3, alpha=0.5))
        16
    """

    def __init__(self, fields: Sequence[tuple[str, str]]):
        for name, kind in fields:
            if kind not in _FORMATS:
                raise ValueError(f"uniform field {name!r}: type {kind!r} is not one of {sorted(_FORMATS)}")
        self.fields = list(fields)
        self._fmt = "<" + "".join(_FORMATS[k] for _, k in self.fields)
        self.nbytes = -(-max(4 * len(self.fields), 4) // 16) * 16

    def wgsl_struct(self, name: str) -> str:
        """WGSL declaration of the block as struct ``name``."""
        body = " ".join(f"{n}: {k}," for n, k in self.fields)
        return f"struct {name} {{ {body} }}"

    def pack(self, **values: float) -> bytes:
        """The block's bytes; every field must be given."""
        missing = [n for n, _ in self.fields if n not in values]
        extra = sorted(set(values) - {n for n, _ in self.fields})
        if missing or extra:
            raise KeyError(f"uniform values: missing {missing}, unknown {extra}")
        vals = [values[n] if k == "f32" else int(values[n]) for n, k in self.fields]
        data = struct.pack(self._fmt, *vals)
        return data + b"\0" * (self.nbytes - len(data))

    def offset_of(self, name: str) -> int:
        """Byte offset of field ``name`` (to update one scalar with write_buffer)."""
        return 4 * [n for n, _ in self.fields].index(name)


def wgsl_hash(source: str) -> str:
    """Stable key of a WGSL source text (sha256 hex, first 16 bytes)."""
    return hashlib.sha256(source.encode()).hexdigest()[:32]


class PipelineCache:
    """Compute pipelines keyed by the hash of their WGSL source.

    Example:

        >>> from rustyasg.wgpu.device import get_context
        >>> src = ("@group(0) @binding(0) var<storage, read_write> v: array<f32>;"
        ...        "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3<u32>) {"
        ...        "    if (i.x < arrayLength(&v)) { v[i.x] = 2.0 * v[i.x]; } }")
        >>> cache = PipelineCache(get_context())
        >>> p1 = cache.get(src); p2 = cache.get(src)
        >>> p1 is p2, cache.misses
        (True, 1)
    """

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self._pipelines: dict[tuple[str, str], Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, wgsl: str, entry: str = "main") -> Any:
        """The compute pipeline for ``wgsl`` (compiled on first request)."""
        key = (wgsl_hash(wgsl), entry)
        pipe = self._pipelines.get(key)
        if pipe is not None:
            self.hits += 1
            return pipe
        self.misses += 1
        device = self.ctx.device
        bad = nonfinite_constants(wgsl)
        if bad:
            raise RuntimeError(f"WGSL kernel has non-finite constant expressions {sorted(set(bad))}, which Dawn and "
                               "browsers refuse: build them with f32_from_bits(bits) (pipelines.LINEAR_WORKGROUP_WGSL)")
        wgsl = adapt_wgsl(wgsl, getattr(self.ctx, "implementation", "native"))
        _dump(wgsl, key[0])
        try:
            module = device.create_shader_module(code=wgsl, label=f"k{key[0][:8]}")
            pipe = device.create_compute_pipeline(
                layout="auto", compute={"module": module, "entry_point": entry}
            )
        except Exception as exc:
            numbered = "\n".join(f"{i + 1:4d} | {line}" for i, line in enumerate(wgsl.splitlines()))
            raise RuntimeError(f"WGSL kernel failed to compile: {exc}\n{numbered}") from exc
        self._pipelines[key] = pipe
        return pipe

    def __len__(self) -> int:
        return len(self._pipelines)


DUMP_ENV = "RUSTYASG_WGSL_DUMP"


def _dump(wgsl: str, digest: str) -> None:
    """Write ``wgsl`` to ``$RUSTYASG_WGSL_DUMP/<digest>.wgsl`` when that variable names a folder
    (to read generated kernels, or to check them with another WebGPU implementation's compiler)."""
    folder = os.environ.get(DUMP_ENV)
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{digest}.wgsl"), "w") as f:
            f.write(wgsl)


def uniform_buffer(ctx: Any, data: bytes) -> Any:
    """A uniform buffer holding ``data`` (writable later with ``queue.write_buffer``)."""
    usage = ctx.api.BufferUsage.UNIFORM | ctx.api.BufferUsage.COPY_DST
    buf = ctx.device.create_buffer(size=max(len(data), 16), usage=usage)
    ctx.queue.write_buffer(buf, 0, data)
    return buf


def bind_group(ctx: Any, pipeline: Any, resources: Sequence[Any]) -> Any:
    """Bind group 0 of ``pipeline`` with ``resources`` at bindings 0, 1, ...

    Each resource is a buffer, or ``(buffer, offset, size)`` for a range.
    """
    entries = []
    for i, res in enumerate(resources):
        if isinstance(res, tuple):
            buf, offset, size = res
            entries.append({"binding": i, "resource": {"buffer": buf, "offset": offset, "size": size}})
        else:
            entries.append({"binding": i, "resource": {"buffer": res, "offset": 0, "size": res.size}})
    return ctx.device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)


def encode_dispatch(cpass: Any, pipeline: Any, group: Any, workgroups: int | tuple[int, int, int], ctx: Any = None) -> None:
    """Record one dispatch into an open compute pass.

    An int ``workgroups`` is a linear count, split over x/y/z within the
    adapter's ``max-compute-workgroups-per-dimension``.
    """
    if isinstance(workgroups, int):
        limit = MAX_WORKGROUPS_PER_DIM
        if ctx is not None:
            limit = int(ctx.limits.get("max-compute-workgroups-per-dimension", limit))
        workgroups = split_workgroups(workgroups, limit)
    cpass.set_pipeline(pipeline)
    cpass.set_bind_group(0, group)
    cpass.dispatch_workgroups(*workgroups)


def run_kernel(ctx: Any, pipeline: Any, resources: Sequence[Any], workgroups: int | tuple[int, int, int]) -> None:
    """Encode and submit a single dispatch (tests and one-off work).

    Example (a kernel doubling a buffer in place):

        >>> import numpy as np
        >>> from rustyasg.wgpu.buffers import Readback, upload
        >>> from rustyasg.wgpu.device import get_context
        >>> src = ("@group(0) @binding(0) var<storage, read_write> v: array<f32>;"
        ...        "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3<u32>) {"
        ...        "    if (i.x < arrayLength(&v)) { v[i.x] = 2.0 * v[i.x]; } }")
        >>> ctx = get_context()
        >>> buf = upload(ctx, np.arange(4, dtype=np.float32))
        >>> run_kernel(ctx, PipelineCache(ctx).get(src), [buf], 1)
        >>> Readback(ctx).read_array(buf, (4,), np.float32)
        array([0., 2., 4., 6.], dtype=float32)
    """
    enc = ctx.device.create_command_encoder()
    cpass = enc.begin_compute_pass()
    encode_dispatch(cpass, pipeline, bind_group(ctx, pipeline, resources), workgroups, ctx)
    cpass.end()
    ctx.queue.submit([enc.finish()])


class KernelLaunch:
    """A ready-to-record dispatch: pipeline, bound resources, workgroup count.

    Built once when a graph is compiled; recording it into a pass costs three
    calls, so a compiled step is a list of launches replayed into one encoder.

    Example (prepared once, run twice: the buffer is doubled twice):

        >>> import numpy as np
        >>> from rustyasg.wgpu.buffers import Readback, upload
        >>> from rustyasg.wgpu.device import get_context
        >>> src = ("@group(0) @binding(0) var<storage, read_write> v: array<f32>;"
        ...        "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3<u32>) {"
        ...        "    if (i.x < arrayLength(&v)) { v[i.x] = 2.0 * v[i.x]; } }")
        >>> ctx = get_context()
        >>> buf = upload(ctx, np.ones(3, np.float32))
        >>> launch = KernelLaunch(ctx, PipelineCache(ctx).get(src), [buf], 1)
        >>> launch.run(); launch.run()
        >>> Readback(ctx).read_array(buf, (3,), np.float32)
        array([4., 4., 4.], dtype=float32)
    """

    def __init__(self, ctx: Any, pipeline: Any, resources: Sequence[Any], workgroups: int | tuple[int, int, int],
                 label: str = "", uniforms: tuple[UniformLayout, dict] | None = None):
        self.ctx = ctx
        # (layout, values) of the uniform block bound last, so per-step
        # scalars can be rewritten without rebuilding the launch.
        self.uniforms = uniforms
        self.pipeline = pipeline
        self.resources = list(resources)
        self.group = bind_group(ctx, pipeline, resources)
        if isinstance(workgroups, int):
            limit = int(ctx.limits.get("max-compute-workgroups-per-dimension", MAX_WORKGROUPS_PER_DIM))
            workgroups = split_workgroups(workgroups, limit)
        self.workgroups = workgroups
        self.label = label

    def update_uniforms(self, **values: float) -> None:
        """Rewrite some uniform fields (e.g. a learning rate) before the next submit."""
        if self.uniforms is None:
            raise ValueError(f"launch {self.label!r} has no uniform block")
        layout, current = self.uniforms
        current.update(values)
        self.ctx.queue.write_buffer(self.resources[-1], 0, layout.pack(**current))

    def encode(self, cpass: Any) -> None:
        """Record the dispatch into an open compute pass."""
        cpass.set_pipeline(self.pipeline)
        cpass.set_bind_group(0, self.group)
        cpass.dispatch_workgroups(*self.workgroups)

    def run(self, repeat: int = 1) -> None:
        """Submit ``repeat`` copies of this dispatch in one command buffer."""
        enc = self.ctx.device.create_command_encoder()
        cpass = enc.begin_compute_pass()
        for _ in range(repeat):
            self.encode(cpass)
        cpass.end()
        self.ctx.queue.submit([enc.finish()])
