"""``with rg.profile() as prof:``: per-kernel times, compile phases and the memory timeline.

Inside the block every call of a compiled function is run with its backend's per-kernel
instrumentation (:mod:`rustyasg.core.observe`): on cpu each prebound kernel is timed with
``perf_counter``; on wgpu each launch gets GPU timestamps where the adapter offers them,
else it is submitted alone and timed (``prof.notes`` says which). Compile phases (lowering,
each pass, backend compile, the first run that JITs kernels, cache hits and misses) are
recorded too.

- :meth:`Profile.table` — totals per op or per module, like ``torch.profiler``'s ``key_averages``;
- :meth:`Profile.export_chrome_trace` — Chrome Trace Event JSON (Perfetto, ``chrome://tracing``):
  op slices with node ids, shapes, module and fused group; a live-bytes counter; compile slices;
- :meth:`Profile.memory_timeline` — live bytes per schedule step of a compiled program, its
  peak and the values that make it, next to the process's measured memory;
- :meth:`Profile.compile_table` — where the compile time of a first call went.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None, 8), name="x")
    >>> w = rg.variable(np.ones((8, 4), np.float32), name="w")
    >>> f = rg.function([x], rg.tanh(x @ w).sum(), backend="cpu")
    >>> with profile() as prof:
    ...     _ = f(np.ones((16, 8), np.float32))
    >>> [e.op for e in prof.kernels]
    ['matmul', 'fused2[tanh,sum]']
    >>> prof.memory_timeline().peak_bytes > 0
    True
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from rustyasg.core import observe
from rustyasg.core.graph import toposort
from rustyasg.core.shapes import format_shape

from .graphs import common_module_path

LEAVES = ("input", "variable", "constant")


@dataclass
class KernelEvent:
    """One executed kernel: what it computed and when (seconds since the profile started)."""

    label: str
    op: str
    nodes: Tuple[int, ...]
    module: str
    start: float
    seconds: float
    function: str
    run: int
    step: int
    shapes: str = ""


@dataclass
class RunEvent:
    function: str
    start: float
    seconds: float
    first: bool
    rss_bytes: int


@dataclass
class CompileEvent:
    name: str
    start: float
    seconds: float
    info: Dict[str, Any] = field(default_factory=dict)


@dataclass
class MemoryTimeline:
    """Live bytes at each schedule step of one compiled program.

    Read from the compiler kit's buffer planner (``program.plan.memory``, one timeline for
    every backend): a buffer is live from the step that writes it to the last step that reads
    it (inputs from the start, outputs to the end), its size as placed (aligned, size class),
    scratch during its step; views and in-place updates share their base's buffer. Variables
    and constants are resident state, counted in ``resident_bytes``. ``peak_bytes`` equals
    :func:`rustyasg.core.backend_api.planned_peak_bytes`; ``allocated_bytes`` is what the
    placement allocates (the arena, or the pooled buffers). ``planner`` is the backend's
    memory report, ``rss_bytes`` the process's resident memory measured after the last run.
    """

    function: str
    labels: List[str]
    live_bytes: List[int]
    peak_bytes: int
    peak_step: int
    peak_values: List[Tuple[int, str, int, str]]   # (node id, op, bytes, module)
    resident_bytes: int
    planner: Dict[str, Any]
    rss_bytes: int
    allocated_bytes: int = 0

    def plot(self, path: Optional[str] = None):
        """A matplotlib figure of the timeline (saved to ``path`` when given)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 3.5))
        mib = [b / 2**20 for b in self.live_bytes]
        ax.step(range(len(mib)), mib, where="post", label="live buffers")
        ax.axhline(self.peak_bytes / 2**20, color="#e4572e", ls="--", lw=1,
                   label=f"peak {self.peak_bytes / 2**20:.2f} MiB at step {self.peak_step}")
        if self.allocated_bytes:
            ax.axhline(self.allocated_bytes / 2**20, color="#555", ls=":", lw=1,
                       label=f"planned allocation {self.allocated_bytes / 2**20:.2f} MiB")
        ax.set_xlabel("schedule step")
        ax.set_ylabel("MiB")
        ax.set_title(f"{self.function}: memory timeline (process RSS {self.rss_bytes / 2**20:.0f} MiB)")
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        if path:
            fig.savefig(path, dpi=110)
        return fig


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or restricted: report 0 rather than fail a profile
        return 0


class Profile(observe.Observer):
    """The profiler; use :func:`profile`."""

    def __init__(self):
        self.kernels: List[KernelEvent] = []
        self.runs: List[RunEvent] = []
        self.compiles: List[CompileEvent] = []
        self.notes: List[str] = []
        self._t0 = time.perf_counter()
        self._timelines: Dict[int, MemoryTimeline] = {}
        self._graph_info: Dict[int, Dict[int, Any]] = {}
        self._current: Optional[Tuple[Any, Any, int]] = None
        self._ctx = None
        self._cache_counts = observe.kernel_cache_counts()

    # -- context -------------------------------------------------------------------------------
    def __enter__(self) -> "Profile":
        self._ctx = observe.observing(self)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        self._ctx = None
        return False

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    # -- observer ------------------------------------------------------------------------------
    def run(self, function, executable, arrays, first: bool = False):
        self._current = (function, executable, len(self.runs))
        try:
            return super().run(function, executable, arrays, first)
        finally:
            self._current = None

    def on_run(self, function, executable, seconds: float, first: bool) -> None:
        name = function.name or "function"
        self.runs.append(RunEvent(name, self._now() - seconds, seconds, first, _rss()))
        if first:
            self.compiles.append(CompileEvent("first_run", self._now() - seconds, seconds, {"function": name}))
            self._kernel_cache_events(name)
        self._timeline(function, executable)

    def on_compile_event(self, name: str, seconds: float, **info) -> None:
        self.compiles.append(CompileEvent(name, self._now() - seconds, seconds, dict(info)))

    def _kernel_cache_events(self, function: str) -> None:
        """One ``kernel_cache`` event per backend kernel loaded from disk or compiled since the last look."""
        now = observe.kernel_cache_counts()
        for (cache, kernel), (hits, misses) in sorted(now.items()):
            h0, m0 = self._cache_counts.get((cache, kernel), (0, 0))
            if hits > h0 or misses > m0:
                self.compiles.append(CompileEvent("kernel_cache", self._now(), 0.0, {
                    "function": function, "cache": cache, "kernel": kernel, "hits": hits - h0,
                    "misses": misses - m0}))
        self._cache_counts = now

    def kernel_cache(self) -> List[Tuple[str, int, int]]:
        """``(kernel, loaded from disk, compiled)`` per backend kernel that the profiled first runs needed."""
        rows: Dict[str, List[int]] = {}
        for c in self.compiles:
            if c.name == "kernel_cache":
                r = rows.setdefault(c.info["kernel"], [0, 0])
                r[0] += c.info["hits"]
                r[1] += c.info["misses"]
        return [(k, h, m) for k, (h, m) in sorted(rows.items())]

    def wrap_steps(self, executable, steps, infos):
        function, exe, run = self._current
        meta = self._node_meta(function, exe)
        name = function.name or "function"

        def timed(step, k, info):
            op, module, shapes = self._describe(info, meta)

            def call():
                t0 = time.perf_counter()
                step()
                t1 = time.perf_counter()
                self.kernels.append(KernelEvent(info.label, op, info.nodes, module, t0 - self._t0, t1 - t0,
                                                name, run, k, shapes))
            return call

        return [timed(s, k, i) for k, (s, i) in enumerate(zip(steps, infos))]

    def on_launches(self, executable, infos, seconds, note: str = "") -> None:
        function, exe, run = self._current
        meta = self._node_meta(function, exe)
        if note and note not in self.notes:
            self.notes.append(note)
        t = self._now() - sum(seconds)
        for k, (info, s) in enumerate(zip(infos, seconds)):
            op, module, shapes = self._describe(info, meta)
            self.kernels.append(KernelEvent(info.label, op, info.nodes, module, t, s, function.name or "function",
                                            run, k, shapes))
            t += s

    # -- helpers -------------------------------------------------------------------------------
    def _node_meta(self, function, exe) -> Dict[int, Any]:
        """Node id -> (op, module path, shape text) for the program and its graph."""
        key = id(exe)
        meta = self._graph_info.get(key)
        if meta is None:
            scopes = {t.id: (t.scope.path if t.scope is not None else "")
                      for t in toposort(list(function.outputs) + [v for _, v in function.updates])}
            meta = {i.id: (i.op, scopes.get(i.id, ""), f"{i.dtype}{format_shape(i.shape)}", i.nbytes)
                    for i in exe.program.instrs}
            self._graph_info[key] = meta
        return meta

    @staticmethod
    def _describe(info, meta) -> Tuple[str, str, str]:
        ops = [meta[n][0] for n in info.nodes if n in meta]
        label = info.label.split("(")[0]
        if len(ops) == 1:
            op = ops[0]
        elif ops:  # a fused kernel: its size and first distinct ops keep tables readable
            distinct = list(dict.fromkeys(ops))
            op = f"fused{len(ops)}[{','.join(distinct[:3])}{',...' if len(distinct) > 3 else ''}]"
        else:
            op = label or "copy"
        modules = [meta[n][1] for n in info.nodes if n in meta]
        module = common_module_path(modules)
        shapes = ", ".join(meta[n][2] for n in info.writes if n in meta)
        return op, module, shapes

    def _timeline(self, function, exe) -> None:
        key = id(exe)
        if key in self._timelines:
            self._timelines[key].rss_bytes = _rss()
            return
        infos = _infos_of(exe)
        memory = getattr(getattr(exe.program, "plan", None), "memory", None)
        if infos is None or memory is None:
            return
        meta = self._node_meta(function, exe)
        # The planner's own timeline (rustyasg.core.compile.plan_memory), one entry per planned
        # step; a step that makes several launches shows its live bytes at each of them.
        steps = _planned_steps(infos, exe.program.plan, len(memory.live_bytes))
        live = [memory.live_bytes[k] for k in steps]
        peak_step = max(range(len(live)), key=live.__getitem__) if live else 0
        peak = live[peak_step] if live else 0
        at_peak = [(b.key, meta[b.key][0], b.size, meta[b.key][1]) if b.key in meta
                   else (-1, str(b.key[0]), b.size, "")  # scratch, copies made by the backend
                   for b in (memory.live_at(steps[peak_step]) if live else ())]
        resident = sum(i.nbytes for i in exe.program.instrs if i.op in ("variable", "constant"))
        self._timelines[key] = MemoryTimeline(function.name or "function", [i.label for i in infos], live, peak,
                                              peak_step, at_peak, resident, dict(exe.memory_report()), _rss(),
                                              memory.total_bytes)

    # -- results -------------------------------------------------------------------------------
    def memory_timeline(self, function: Optional[str] = None) -> MemoryTimeline:
        """The timeline of the profiled program (``function``: its name, when several ran)."""
        for tl in reversed(list(self._timelines.values())):
            if function is None or tl.function == function:
                return tl
        raise LookupError(f"no memory timeline recorded{' for ' + repr(function) if function else ''}: run a "
                          f"compiled function inside `with rg.profile()` on a backend with per-kernel instrumentation")

    def warm_kernels(self) -> List[KernelEvent]:
        """Kernel events of runs that were not a signature's first (which JIT-compiles kernels and
        is reported as ``first_run`` in :meth:`compile_table`); all events when every run was a first."""
        first = {k for k, r in enumerate(self.runs) if r.first}
        warm = [e for e in self.kernels if e.run not in first]
        return warm or list(self.kernels)

    def table(self, by: str = "op", sort: str = "total", limit: Optional[int] = None) -> str:
        """Kernel time per ``op`` or per ``module`` (calls, total ms, mean us, share), largest first.

        Counts warm runs only (see :meth:`warm_kernels`)."""
        if by not in ("op", "module", "kernel"):
            raise ValueError(f"table(by=...) takes 'op', 'module' or 'kernel', got {by!r}")
        rows: Dict[str, List[float]] = {}
        for e in self.warm_kernels():
            key = {"op": e.op, "module": e.module or "(top level)", "kernel": e.label}[by]
            r = rows.setdefault(key, [0, 0.0])
            r[0] += 1
            r[1] += e.seconds
        total = sum(r[1] for r in rows.values()) or 1.0
        ordered = sorted(rows.items(), key=lambda kv: -kv[1][1] if sort == "total" else -kv[1][0])
        if limit:
            ordered = ordered[:limit]
        width = max([len(by)] + [len(k) for k, _ in ordered])
        lines = [f"{by:<{width}}  {'calls':>6}  {'total ms':>10}  {'mean us':>10}  {'share':>6}"]
        for key, (calls, secs) in ordered:
            lines.append(f"{key:<{width}}  {calls:>6d}  {secs * 1e3:>10.3f}  {secs / calls * 1e6:>10.1f}  "
                         f"{100 * secs / total:>5.1f}%")
        lines.append(f"{'total':<{width}}  {sum(r[0] for r in rows.values()):>6d}  {total * 1e3:>10.3f}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def compile_table(self, limit: int = 10) -> str:
        """Compile time per phase, cache hits/misses, and the kernels whose first call cost most."""
        rows: Dict[str, List[float]] = {}
        for c in self.compiles:
            r = rows.setdefault(c.name, [0, 0.0])
            r[0] += 1
            r[1] += c.seconds
        lines = [f"{'phase':<28}  {'count':>5}  {'total ms':>10}"]
        for name, (count, secs) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
            if name != "kernel_cache":
                lines.append(f"{name:<28}  {count:>5d}  {secs * 1e3:>10.3f}")
        cache = self.kernel_cache()
        if cache:
            compiled = [k for k, _, m in cache if m]
            lines.append("")
            lines.append(f"kernel disk cache: {sum(h for _, h, _ in cache)} loaded, {sum(m for _, _, m in cache)} "
                         f"compiled ({len(cache)} kernels)")
            for kernel in compiled[:limit]:
                lines.append(f"  compiled: {kernel}")
        jit = self.kernel_compile_times()
        if jit:
            lines.append("")
            lines.append(f"{'kernel (first call - warm mean)':<60}  {'ms':>10}")
            for label, secs in jit[:limit]:
                lines.append(f"{label[:60]:<60}  {secs * 1e3:>10.3f}")
        return "\n".join(lines)

    def kernel_compile_times(self) -> List[Tuple[str, float]]:
        """Per kernel, its first call's time minus its warm mean: what JIT compiling (or loading
        from the kernel cache) it cost. Needs a first run and warm runs of the same function."""
        first = {k for k, r in enumerate(self.runs) if r.first}
        cold: Dict[Tuple[str, int], KernelEvent] = {}
        warm: Dict[Tuple[str, int], List[float]] = {}
        for e in self.kernels:
            key = (e.function, e.step)
            if e.run in first:
                cold.setdefault(key, e)
            else:
                warm.setdefault(key, []).append(e.seconds)
        out = [(e.label, e.seconds - sum(warm[k]) / len(warm[k])) for k, e in cold.items() if k in warm]
        return sorted(out, key=lambda r: -r[1])

    def node_time_overlay(self, graphs) -> Dict[str, Dict[str, float]]:
        """Microseconds per graph node and warm run (a fused kernel's time is split evenly over its members)."""
        per_node: Dict[str, float] = {}
        kernels = self.warm_kernels()
        for e in kernels:
            if not e.nodes:
                continue
            share = e.seconds * 1e6 / len(e.nodes)
            for nid in e.nodes:
                per_node[str(nid)] = per_node.get(str(nid), 0.0) + share
        runs = max(1, len({(e.function, e.run) for e in kernels}))
        out = {}
        for gid, g in graphs.items():
            vals = {n.id: per_node[n.id] / runs for n in g.nodes if n.id in per_node}
            if vals:
                out[gid] = vals
        return out

    def peak_live_overlay(self, graphs) -> Dict[str, Dict[str, float]]:
        """Live bytes at the step each node ran in (the memory pressure around it)."""
        per_node: Dict[str, float] = {}
        for tl_key, tl in self._timelines.items():
            for e in self.kernels:
                if e.step < len(tl.live_bytes) and tl.function == e.function:
                    for nid in e.nodes:
                        per_node[str(nid)] = float(tl.live_bytes[e.step])
        out = {}
        for gid, g in graphs.items():
            vals = {n.id: per_node[n.id] for n in g.nodes if n.id in per_node}
            if vals:
                out[gid] = vals
        return out

    def chrome_trace(self) -> Dict[str, Any]:
        """The trace as a dict in Chrome's Trace Event format."""
        pid = os.getpid()
        events: List[Dict[str, Any]] = [
            {"ph": "M", "name": "process_name", "pid": pid, "args": {"name": "rustyasg"}},
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": 1, "args": {"name": "runs"}},
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": 2, "args": {"name": "kernels"}},
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": 3, "args": {"name": "compile"}},
        ]
        for r in self.runs:
            events.append({"ph": "X", "name": r.function + (" (first run)" if r.first else ""), "cat": "run",
                           "pid": pid, "tid": 1, "ts": r.start * 1e6, "dur": r.seconds * 1e6,
                           "args": {"rss_bytes": r.rss_bytes}})
        timelines = {tl.function: tl for tl in self._timelines.values()}
        for e in self.kernels:
            events.append({"ph": "X", "name": e.op, "cat": "kernel", "pid": pid, "tid": 2, "ts": e.start * 1e6,
                           "dur": e.seconds * 1e6,
                           "args": {"nodes": [f"%{n}" for n in e.nodes], "kernel": e.label, "module": e.module,
                                    "outputs": e.shapes, "fused": e.label.startswith("fused"),
                                    "function": e.function, "step": e.step}})
            tl = timelines.get(e.function)
            if tl is not None and e.step < len(tl.live_bytes):
                events.append({"ph": "C", "name": "live bytes", "pid": pid, "ts": e.start * 1e6,
                               "args": {"bytes": tl.live_bytes[e.step]}})
        for c in self.compiles:
            events.append({"ph": "X", "name": c.name, "cat": "compile", "pid": pid, "tid": 3, "ts": c.start * 1e6,
                           "dur": c.seconds * 1e6, "args": {k: str(v) for k, v in c.info.items()}})
        return {"traceEvents": events, "displayTimeUnit": "ms",
                "otherData": {"producer": "rustyasg-viz", "notes": self.notes}}

    def export_chrome_trace(self, path: str) -> str:
        """Write the Chrome trace JSON to ``path`` (atomically); returns the path."""
        import tempfile

        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(self.chrome_trace(), f)
        os.replace(tmp, path)
        return path


def _planned_steps(infos, plan, n: int) -> List[int]:
    """The planner's step of each executed kernel: its unit's position in the plan, found by the
    unit's members; one step per kernel when the backend runs exactly the planned steps."""
    unit_of = {tuple(u.members): k for k, u in enumerate(plan.units)} if len(plan.units) == n else {}
    steps = [unit_of.get(tuple(i.nodes)) for i in infos]
    if None in steps:
        if len(infos) != n:
            raise RuntimeError(f"memory timeline: {len(infos)} kernels do not match the {n} planned steps")
        return list(range(n))
    return steps


def _infos_of(exe) -> Optional[list]:
    infos = exe.__dict__.get("_step_infos")
    if infos is None:
        infos = exe.__dict__.get("_launch_infos")
    return infos


def profile() -> Profile:
    """A profiler to use as ``with rg.profile() as prof:`` (see the module docstring)."""
    return Profile()
