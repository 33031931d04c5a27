"""Per-launch timing of wgpu executables for profilers.

:meth:`WgpuBackend.instrument` swaps an executable's launches for one run:

- with the ``timestamp-query-inside-passes`` feature, each launch is bracketed by two
  GPU timestamps written inside the one compute pass (the run is otherwise unchanged);
  the times are read back after the run;
- without it, each launch is submitted alone and waited for (per-dispatch wall time,
  which includes submission overhead); the observer is told so in the ``note``.

Each launch is described by a :class:`~rustyasg.core.observe.StepInfo` naming the program
nodes of the unit it belongs to.

Example::

    >>> with rg.profile() as prof:           # doctest: +SKIP
    ...     step(x)                          # on the wgpu backend
"""

from __future__ import annotations

import contextlib
import time
from typing import List

import wgpu

from rustyasg.core.observe import StepInfo

TIMESTAMPS = "GPU timestamps (timestamp-query-inside-passes)"
PER_DISPATCH = ("per-dispatch wall time: this adapter offers no timestamp queries inside passes, so each "
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
    def __init__(self, launch, query_set, index):
        self.launch, self.query_set, self.index = launch, query_set, index
        self.label = launch.label

    def encode(self, cpass):
        cpass.write_timestamp(self.query_set, 2 * self.index)
        self.launch.encode(cpass)
        cpass.write_timestamp(self.query_set, 2 * self.index + 1)


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
    resolved = ctx.device.create_buffer(size=size, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
    enc = ctx.device.create_command_encoder()
    enc.resolve_query_set(query_set, 0, count, resolved, 0)
    ctx.queue.submit([enc.finish()])
    ticks = ctx.queue.read_buffer(resolved).cast("Q").tolist()
    period_ns = ctx.queue.get_timestamp_period() if hasattr(ctx.queue, "get_timestamp_period") else 1.0
    return [max(0, int(ticks[2 * i + 1]) - int(ticks[2 * i])) * period_ns * 1e-9 for i in range(count // 2)]


@contextlib.contextmanager
def instrumented(exe, observer):
    """Run ``exe`` with timed launches inside the block; report to ``observer`` afterwards."""
    original = exe.launches
    infos = launch_infos(exe)
    n = len(original)
    ctx = exe.ctx
    if n and ctx.has("timestamp-query-inside-passes"):
        query_set = ctx.device.create_query_set(type=wgpu.QueryType.timestamp, count=2 * n)
        exe.launches = [_Timestamped(l, query_set, i) for i, l in enumerate(original)]
        try:
            yield
        finally:
            exe.launches = original
        observer.on_launches(exe, infos, _read_timestamps(ctx, query_set, 2 * n), note=TIMESTAMPS)
        return
    seconds = [0.0] * n
    exe.launches = [_Alone(l, ctx, seconds, i) for i, l in enumerate(original)]
    try:
        yield
    finally:
        exe.launches = original
    observer.on_launches(exe, infos, seconds, note=PER_DISPATCH)
