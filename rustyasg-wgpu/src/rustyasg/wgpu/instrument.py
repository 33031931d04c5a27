"""Per-launch timing of wgpu executables for profilers.

:meth:`WgpuBackend.instrument` swaps an executable's launches for one run:

- with the ``timestamp-query`` feature, each launch is encoded in a compute pass of its
  own whose beginning and end write GPU timestamps (submitted in order, without waiting);
  the times are read back after the run;
- without it, each launch is submitted alone and waited for (per-dispatch wall time,
  which includes submission overhead); the observer is told so in the ``note``.

Each launch is described by a :class:`~rustyasg.core.observe.StepInfo` naming the program
nodes of the unit it belongs to.

Example::

    with rg.profile() as prof:
        step(x)                          # on the wgpu backend
"""

from __future__ import annotations

import contextlib
import time
from typing import List

from rustyasg.core.observe import StepInfo

TIMESTAMPS = "GPU timestamps (timestamp-query): each launch ran in a compute pass of its own"
PER_DISPATCH = ("per-dispatch wall time: this adapter offers no timestamp queries, so each "
                "launch was submitted and waited for alone (includes submission overhead)")


def _unit_label(exe, u) -> str:
    by_id = exe.program.by_id()
    if u.kind == "fused":
        return f"fused[{len(u.members)}] {u.shape}"
    head = by_id[u.head]
    return f"{head.op} {head.shape}"


def launch_infos(exe) -> List[StepInfo]:
    """One :class:`StepInfo` per launch, matched to the unit that made it (cached on ``exe``)."""
    cached = exe.__dict__.get("_launch_infos")
    if cached is not None:
        return cached
    units = list(getattr(exe.plan, "units", []))
    prefixes = [_unit_label(exe, u) + ":" for u in units]
    infos, k = [], 0
    for j, launch in enumerate(exe.launches):
        # A unit may make several launches; move on when the label leaves its prefix, or when
        # the launches left are needed one per remaining unit.
        if infos and (not launch.label.startswith(prefixes[k]) or len(exe.launches) - j <= len(units) - k - 1):
            k = min(k + 1, len(units) - 1)
        u = units[k] if units else None
        nodes = tuple(u.members) if u is not None else ()
        infos.append(StepInfo(launch.label, nodes, tuple(getattr(u, "reads", ()) or ()),
                              tuple(getattr(u, "writes", ()) or ())))
    exe._launch_infos = infos
    return infos


class _Timestamped:
    """Encodes its launch in a compute pass of its own whose start and end write GPU timestamps."""

    def __init__(self, launch, ctx, query_set, index):
        self.launch, self.ctx, self.query_set, self.index = launch, ctx, query_set, index
        self.label = launch.label

    def encode(self, cpass):  # the shared pass stays empty; queue order keeps the launches in order
        enc = self.ctx.device.create_command_encoder()
        own = enc.begin_compute_pass(timestamp_writes={"query_set": self.query_set,
                                                       "beginning_of_pass_write_index": 2 * self.index,
                                                       "end_of_pass_write_index": 2 * self.index + 1})
        self.launch.encode(own)
        own.end()
        self.ctx.queue.submit([enc.finish()])


class _Alone:
    def __init__(self, launch, ctx, seconds, index):
        self.launch, self.ctx, self.seconds, self.index = launch, ctx, seconds, index
        self.label = launch.label

    def encode(self, cpass):  # the shared pass stays empty: this launch runs in its own submission
        enc = self.ctx.device.create_command_encoder()
        own = enc.begin_compute_pass()
        self.launch.encode(own)
        own.end()
        t0 = time.perf_counter()
        self.ctx.queue.submit([enc.finish()])
        self.ctx.synchronize()
        self.seconds[self.index] = time.perf_counter() - t0


def _read_timestamps(ctx, query_set, count: int) -> List[float]:
    size = 8 * count
    resolved = ctx.device.create_buffer(size=size, usage=ctx.api.BufferUsage.QUERY_RESOLVE | ctx.api.BufferUsage.COPY_SRC)
    enc = ctx.device.create_command_encoder()
    enc.resolve_query_set(query_set, 0, count, resolved, 0)
    ctx.queue.submit([enc.finish()])
    ticks = ctx.queue.read_buffer(resolved).cast("Q").tolist()
    # WebGPU timestamps are nanoseconds (wgpu applies the adapter's period when resolving).
    return [max(0, int(ticks[2 * i + 1]) - int(ticks[2 * i])) * 1e-9 for i in range(count // 2)]


def _swap(exe, wrapped: dict) -> None:
    """Point ``exe`` at the wrappers (``{id(launch): wrapper}``), in ``launches`` and its pass segments."""
    exe.launches = [wrapped.get(id(l), l) for l in exe.launches]
    if hasattr(exe, "segments"):
        exe.segments = [([wrapped.get(id(l), l) for l in ls], host) for ls, host in exe.segments]


@contextlib.contextmanager
def instrumented(exe, observer):
    """Run ``exe`` with timed launches inside the block; report to ``observer`` afterwards."""
    original = (exe.launches, getattr(exe, "segments", None))
    timed = [l for ls, _ in exe.segments for l in ls] if hasattr(exe, "segments") else list(exe.launches)
    by_launch = {id(l): info for l, info in zip(exe.launches, launch_infos(exe))}
    infos = [by_launch[id(l)] for l in timed]
    n = len(timed)
    ctx = exe.ctx

    def restore():
        exe.launches = original[0]
        if original[1] is not None:
            exe.segments = original[1]

    if n and ctx.has("timestamp-query"):
        query_set = ctx.device.create_query_set(type=ctx.api.QueryType.timestamp, count=2 * n)
        _swap(exe, {id(l): _Timestamped(l, ctx, query_set, i) for i, l in enumerate(timed)})
        try:
            yield
        finally:
            restore()
        observer.on_launches(exe, infos, _read_timestamps(ctx, query_set, 2 * n), note=TIMESTAMPS)
        return
    seconds = [0.0] * n
    _swap(exe, {id(l): _Alone(l, ctx, seconds, i) for i, l in enumerate(timed)})
    try:
        yield
    finally:
        restore()
    observer.on_launches(exe, infos, seconds, note=PER_DISPATCH)
