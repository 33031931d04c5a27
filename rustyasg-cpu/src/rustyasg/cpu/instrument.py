"""Per-kernel instrumentation of cpu executables for profilers and debuggers.

:meth:`CpuBackend.instrument` swaps an executable's prebound step callables for the ones
an observer returns from :meth:`~rustyasg.core.observe.Observer.wrap_steps` for one run,
and restores them afterwards, so an uninstrumented run pays nothing. Each step is
described by a :class:`~rustyasg.core.observe.StepInfo`: its label, the program nodes it
computes (every member of a fused group), and the values it reads and writes.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.core.observe import Observer, observing
    >>> class Labels(Observer):
    ...     seen = []
    ...     def wrap_steps(self, exe, steps, infos):
    ...         self.seen += [i.label.split("(")[0] for i in infos]
    ...         return steps
    >>> x = rg.input((4,), name="x")
    >>> f = rg.function([x], rg.tanh(x * 2.0).sum(), backend="cpu")
    >>> with observing(Labels()) as obs:
    ...     _ = f(np.ones(4, np.float32))
    >>> obs.seen
    ['fused[mul,tanh,sum]']
"""

from __future__ import annotations

import contextlib
import re
from typing import Dict, List, Tuple

from rustyasg.core.observe import StepInfo

_IDS = re.compile(r"%(\d+)")


def _group_members(program) -> Dict[int, Tuple[int, ...]]:
    """Written value id -> all member ids of the fused group that writes it."""
    out = {}
    for u in program.plan.groups:
        for w in u.writes:
            out[w] = tuple(u.members)
    return out


def step_infos(exe) -> List[StepInfo]:
    """One :class:`StepInfo` per prebound step of ``exe`` (computed once, then cached on it)."""
    cached = exe.__dict__.get("_step_infos")
    if cached is not None:
        return cached
    members = _group_members(exe.program)
    infos = []
    for label in exe._labels:
        head, _, tail = label.rpartition(" -> ")
        reads = tuple(int(i) for i in _IDS.findall(head))
        writes = tuple(int(i) for i in _IDS.findall(tail))
        nodes = members.get(writes[0], writes) if writes else ()
        infos.append(StepInfo(label, tuple(nodes), reads, writes))
    exe._step_infos = infos
    return infos


@contextlib.contextmanager
def instrumented(exe, observer):
    """Run ``exe`` with the observer's wrapped steps inside the block."""
    original = exe._steps
    wrapped = list(observer.wrap_steps(exe, original, step_infos(exe)))
    if len(wrapped) != len(original):
        raise RuntimeError(f"observer {type(observer).__name__}.wrap_steps returned {len(wrapped)} steps "
                           f"for {len(original)}")
    exe._steps = wrapped
    try:
        yield
    finally:
        exe._steps = original
