"""Execution observers: how profilers and debuggers see compiled runs kernel by kernel.

A backend's executable describes its schedule once, at compile time, as a list of
:class:`StepInfo` (one per kernel launch: which program nodes it computes, which it reads
and writes) and, on every run, checks :data:`ACTIVE`. With no observer installed that is
one attribute read per call; with one, :meth:`Observer.run` runs the executable inside
its backend's :meth:`~rustyasg.core.executor.Backend.instrument`, which hands the step
callables to :meth:`Observer.wrap_steps` (host backends) or reports measured launch times
to :meth:`Observer.on_launches` (device backends).
Compilation reports its phases (lowering, each pass, backend compile, kernel JIT, cache
hits) through :func:`compile_event`.

Observers are installed with :func:`observing` (the profiler and ``debug_nans`` do this).

Example:
    >>> class Count(Observer):
    ...     def __init__(self):
    ...         self.events = []
    ...     def on_compile_event(self, name, seconds, **info):
    ...         self.events.append(name)
    >>> with observing(Count()) as c:
    ...     compile_event("cache_hit", 0.0)
    >>> c.events
    ['cache_hit']
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

#: The installed observer; executables read this on every run (None: no observer, nothing to do).
ACTIVE: Optional["Observer"] = None

#: Backends' on-disk kernel caches: cache name -> a callable giving ``{kernel: (hits, misses)}``
#: counted so far in this process (the cpu backend registers numba's). Profilers diff them
#: around a first run to say which kernels were loaded from disk and which were compiled.
KERNEL_CACHES: Dict[str, Callable[[], Mapping[str, Tuple[int, int]]]] = {}


def kernel_cache_counts() -> Dict[Tuple[str, str], Tuple[int, int]]:
    """Every registered kernel cache's counters, keyed by ``(cache, kernel)``.

    >>> KERNEL_CACHES["demo"] = lambda: {"k": (2, 1)}
    >>> kernel_cache_counts()[("demo", "k")]
    (2, 1)
    >>> del KERNEL_CACHES["demo"]
    """
    return {(cache, kernel): counts for cache, probe in list(KERNEL_CACHES.items())
            for kernel, counts in probe().items()}


@dataclass(frozen=True)
class StepInfo:
    """One kernel launch of a compiled program.

    ``nodes``: program instruction ids computed by the launch (all members of a fused group);
    ``reads`` / ``writes``: instruction ids of the values it reads and materialises;
    ``values``: for host backends, ``{instruction id: array}`` of the buffers it reads and writes
    (valid right after the step ran), else empty.
    """

    label: str
    nodes: Tuple[int, ...]
    reads: Tuple[int, ...] = ()
    writes: Tuple[int, ...] = ()
    values: Mapping[int, Any] = field(default_factory=dict)


class Observer:
    """Base class: override what you need. Every method is optional."""

    def run(self, function, executable, arrays, first: bool = False):
        """Run ``executable`` for ``function`` (``first``: the first run of a new signature).

        The default runs it with the backend's per-kernel instrumentation (see
        :meth:`~rustyasg.core.executor.Backend.instrument`) and waits for the device.
        """
        t0 = time.perf_counter()
        with function.backend.instrument(executable, self):
            handles = executable.run(arrays)
            function.backend.synchronize()
        self.on_run(function, executable, time.perf_counter() - t0, first)
        return handles

    def on_run(self, function, executable, seconds: float, first: bool) -> None:
        """A whole run finished after ``seconds`` of wall time."""

    def wrap_steps(self, executable, steps: Sequence[Callable[[], Any]],
                   infos: Sequence[StepInfo]) -> Sequence[Callable[[], Any]]:
        """The callables the executable runs instead of ``steps`` (same order and length)."""
        return steps

    def on_launches(self, executable, infos: Sequence[StepInfo], seconds: Sequence[float], note: str = "") -> None:
        """Device backends report measured per-launch times here (``note`` says how they were measured)."""

    def on_compile_event(self, name: str, seconds: float, **info) -> None:
        """A compile phase finished (``lower``, ``pass:<name>``, ``backend_compile``, ``first_run``,
        ``cache_hit``, ``cache_miss``)."""


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[Observer]:
    """Install ``observer`` for the duration of the block (observers nest; the innermost wins)."""
    global ACTIVE
    previous, ACTIVE = ACTIVE, observer
    try:
        yield observer
    finally:
        ACTIVE = previous


def compile_event(name: str, seconds: float, **info) -> None:
    """Report a compile phase to the active observer, if any."""
    if ACTIVE is not None:
        ACTIVE.on_compile_event(name, seconds, **info)


def step_infos(labels: Sequence[str], members: Sequence[Sequence[int]], reads: Sequence[Sequence[Any]],
               writes: Sequence[Sequence[Any]], values: Optional[Mapping[Any, Any]] = None) -> List[StepInfo]:
    """Build :class:`StepInfo` rows from parallel lists (keys that are not instruction ids are dropped)."""
    def ids(keys):
        return tuple(k for k in keys if isinstance(k, int))

    out = []
    for label, m, r, w in zip(labels, members, reads, writes):
        vals = {k: values[k] for k in (*ids(r), *ids(w)) if k in values} if values is not None else {}
        out.append(StepInfo(label, ids(m), ids(r), ids(w), vals))
    return out
