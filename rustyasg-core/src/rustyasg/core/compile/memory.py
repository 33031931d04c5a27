"""Liveness and buffer planning, shared by every backend.

A backend hands over its scheduled steps (what each reads and writes, and the scratch
bytes it needs) and declares how it lays memory out (:class:`MemoryLayout`); the planner
computes each buffer's lifetime and gives it a place, writing a typed :class:`MemoryPlan`.

**Lifetimes.** Buffers belong to storage *roots*: ``root_of(value)`` is the value whose
storage holds it. A backend declares what it can alias through that function: a view
(reshape, transpose, slice) maps to its base when views are free, a variable update
written in place maps to the variable. A root is live from the step that first writes it
(inputs from step 0) to the last step reading it or any value stored in it; roots in
``keep`` (results, values copied into variables after the step) live to the end; a
step's scratch lives during that step only. Roots in ``resident`` (variables,
constants: memory the backend holds across calls) are not planned.

**Placement**, by the declared layout:

- *arena* (``pooled=False``, cpu): one allocation, each buffer at a byte offset. Greedy by
  size (TensorFlow Lite's ``GreedyBySizePlanner``): largest first, each at the lowest
  offset that overlaps, in memory *and* time, no buffer placed before it.
- *pool* (``pooled=True``, GPUs, whose bind groups bind whole buffers): buffers of a size
  class; walking the steps, a root takes a free buffer of its class or a new one, and
  gives it back after its last step.

Both keep the **timeline**: ``live_bytes[k]``, the bytes (sizes as placed) of the buffers
live at step ``k``. Its maximum, :attr:`MemoryPlan.peak_bytes`, is the plan's peak (the
profiler's memory timeline shows this timeline; :func:`planned_peak_bytes` reads it from
a compiled program); :attr:`MemoryPlan.total_bytes` is what the placement allocates
(at least the peak: fragmentation, size classes).

Example:
    >>> steps = [Step(reads=("x",), writes=("a",)), Step(reads=("a",), writes=("b",)),
    ...          Step(reads=("b",), writes=("c",))]
    >>> plan = plan_memory(steps, {"x": 256, "a": 256, "b": 256, "c": 256}.get, MemoryLayout(64),
    ...                    inputs=["x"], keep=["c"])
    >>> plan.live_bytes, plan.peak_bytes, plan.total_bytes
    ([512, 512, 512], 512, 512)
    >>> plan.buffers["x"].slot == plan.buffers["b"].slot     # x is dead when b is written
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Callable, Collection, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class MemoryLayout:
    """How a backend lays out memory.

    ``alignment``: buffer sizes (and arena offsets) are multiples of it. ``pooled``: whole
    buffers reused by size class instead of offsets in one arena. ``size_class(nbytes)``:
    the bytes a pooled buffer of ``nbytes`` takes (default: ``nbytes`` rounded up to
    ``alignment``).

    >>> MemoryLayout(64).size_of(100), MemoryLayout(16, pooled=True, size_class=lambda n: 256).size_of(4)
    (128, 256)
    """

    alignment: int = 64
    pooled: bool = False
    size_class: Optional[Callable[[int], int]] = None

    def size_of(self, nbytes: int) -> int:
        """The bytes a buffer of ``nbytes`` takes in this layout."""
        if self.pooled and self.size_class is not None:
            return int(self.size_class(int(nbytes)))
        a = self.alignment
        return (max(int(nbytes), 1) + a - 1) // a * a


@dataclass(frozen=True)
class Step:
    """One scheduled step as the planner sees it: values read, values written, scratch bytes.

    >>> Step(reads=(1, 2), writes=(3,), scratch=(4096,)).scratch
    (4096,)
    """

    reads: Sequence[Hashable] = ()
    writes: Sequence[Hashable] = ()
    scratch: Sequence[int] = ()


@dataclass(frozen=True)
class BufferSlot:
    """A planned buffer: its root ``key``, live steps ``start..end`` (inclusive), the bytes
    asked for and the ``size`` it takes, and its place: the byte offset in the arena, or
    the index of the pooled buffer (``MemoryPlan.pool_sizes``). Scratch keys are
    ``("scratch", step, j)``."""

    key: Hashable
    start: int
    end: int
    nbytes: int
    size: int
    slot: int


@dataclass
class MemoryPlan:
    """Where every buffer of a compiled program lives, and the live bytes per step."""

    layout: MemoryLayout
    buffers: Dict[Hashable, BufferSlot] = field(default_factory=dict)
    live_bytes: List[int] = field(default_factory=list)
    total_bytes: int = 0
    pool_sizes: List[int] = field(default_factory=list)

    @property
    def peak_bytes(self) -> int:
        """Most bytes live at one step (the timeline's peak)."""
        return max(self.live_bytes, default=sum(b.size for b in self.buffers.values()))

    @property
    def peak_step(self) -> int:
        """The first step at which the timeline reaches its peak."""
        return self.live_bytes.index(self.peak_bytes) if self.live_bytes else 0

    @property
    def naive_bytes(self) -> int:
        """What one buffer per root would take (no reuse)."""
        return sum(b.size for b in self.buffers.values())

    def live_at(self, step: int) -> List[BufferSlot]:
        """The buffers live at ``step``, largest first."""
        return sorted((b for b in self.buffers.values() if b.start <= step <= b.end), key=lambda b: -b.size)


def last_reads(steps: Sequence[Step], root_of: Callable[[Any], Hashable] = lambda v: v) -> Dict[Hashable, int]:
    """``{root: the last step reading it or a value stored in it}``.

    >>> last_reads([Step((1,), (2,)), Step((1, 2), (3,))])
    {1: 1, 2: 1}
    """
    last: Dict[Hashable, int] = {}
    for k, step in enumerate(steps):
        for v in step.reads:
            last[root_of(v)] = k
    return last


def liveness(steps: Sequence[Step], root_of: Callable[[Any], Hashable] = lambda v: v, *,
             inputs: Iterable[Hashable] = (), keep: Iterable[Hashable] = (),
             resident: Collection[Hashable] = ()) -> Dict[Hashable, Tuple[int, int]]:
    """``{root: (first step, last step)}`` of every planned root (see the module docstring).

    Roots only read (never written, not inputs) are someone else's memory and not listed;
    an input nothing reads or keeps needs no buffer. Scratch is not included.

    >>> liveness([Step((1,), (2,)), Step((2,), (3,))], inputs=[1], keep=[3])
    {1: (0, 0), 2: (0, 1), 3: (1, 1)}
    """
    end_of_call = max(len(steps) - 1, 0)
    first: Dict[Hashable, int] = {}
    inputs = set(inputs)
    for r in inputs:
        if r not in resident:
            first.setdefault(r, 0)
    for k, step in enumerate(steps):
        for w in step.writes:
            r = root_of(w)
            if r not in resident and r not in first:
                first[r] = k
    last = last_reads(steps, root_of)
    for v in keep:
        r = root_of(v)
        if r in first:
            last[r] = end_of_call
    out: Dict[Hashable, Tuple[int, int]] = {}
    for r, s in first.items():
        if r in last or r not in inputs:
            out[r] = (s, max(s, last.get(r, s)))
    return out


def plan_memory(steps: Sequence[Step], nbytes_of: Callable[[Any], int], layout: MemoryLayout, *,
                root_of: Callable[[Any], Hashable] = lambda v: v, inputs: Iterable[Hashable] = (),
                keep: Iterable[Hashable] = (), resident: Collection[Hashable] = ()) -> MemoryPlan:
    """Lifetimes and places of the buffers ``steps`` need (see the module docstring).

    ``nbytes_of(root)``: the bytes a root's value takes.
    """
    inputs = list(inputs)
    spans = liveness(steps, root_of, inputs=inputs, keep=keep, resident=resident)
    need = [(r, s, e, int(nbytes_of(r))) for r, (s, e) in spans.items()]
    for k, step in enumerate(steps):
        need += [(("scratch", k, j), k, k, int(n)) for j, n in enumerate(step.scratch)]
    plan = MemoryPlan(layout)
    place = _pool if layout.pooled else _arena
    for key, start, end, nbytes, size, slot in place(need, layout, plan):
        plan.buffers[key] = BufferSlot(key, start, end, nbytes, size, slot)
    change = [0] * (len(steps) + 1)  # live bytes: +size where a buffer starts, -size after it ends
    for b in plan.buffers.values():
        change[min(b.start, len(steps))] += b.size
        change[min(b.end + 1, len(steps))] -= b.size
    plan.live_bytes = list(accumulate(change[:-1]))
    return plan


def _arena(need, layout: MemoryLayout, plan: MemoryPlan):
    placed: List[Tuple[int, int, int, int]] = []  # (offset, size, start, end)
    for key, start, end, nbytes in sorted(need, key=lambda b: (-b[3], b[1])):
        size = layout.size_of(nbytes)
        busy = sorted((o, s) for o, s, st, en in placed if st <= end and start <= en)
        offset = 0
        for o, s in busy:
            if o - offset >= size:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, start, end))
        plan.total_bytes = max(plan.total_bytes, offset + size)
        yield key, start, end, nbytes, size, offset


def _pool(need, layout: MemoryLayout, plan: MemoryPlan):
    free: Dict[int, List[int]] = {}
    ending: Dict[int, List[Tuple[int, int]]] = {}
    for key, start, end, nbytes in sorted(need, key=lambda b: b[1]):  # stable: the steps' own order
        for done in sorted(k for k in ending if k < start):
            for size, slot in ending.pop(done):
                free.setdefault(size, []).append(slot)
        size = layout.size_of(nbytes)
        if free.get(size):
            slot = free[size].pop()
        else:
            slot = len(plan.pool_sizes)
            plan.pool_sizes.append(size)
            plan.total_bytes += size
        ending.setdefault(end, []).append((size, slot))
        yield key, start, end, nbytes, size, slot


def planned_peak_bytes(program: Any) -> int:
    """The planned peak of a compiled program: most bytes its buffers take at one step.

    ``program``: a :class:`~rustyasg.core.program.Program` a backend compiled, or the
    executable (``function.compile(*args)``). Counts inputs' copies, intermediates and
    scratch as placed (aligned, size classes); variables and constants, which the backend
    holds across calls, are not counted. The same number as the profiler's memory timeline.

    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((256,), name="x")
    >>> f = rg.function([x], rg.exp(x).sum(), backend="cpu")
    >>> planned_peak_bytes(f.compile(np.zeros(256, np.float32)))    # x (1 KiB) and the scalar sum
    1088
    """
    prog = getattr(program, "program", program)
    memory = getattr(getattr(prog, "plan", None), "memory", None)
    if memory is None:
        from ..errors import RustyASGError

        raise RustyASGError(f"{type(program).__name__} has no memory plan: pass a program compiled by a backend "
                            f"that plans its buffers with rustyasg.core.compile.plan_memory (cpu, wgpu), e.g. "
                            f"planned_peak_bytes(function.compile(*args))")
    return memory.peak_bytes
