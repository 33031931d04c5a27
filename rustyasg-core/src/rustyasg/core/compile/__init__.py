"""The compiler kit: backend-independent planning between graph passes and kernels.

Every backend compiles a :class:`~rustyasg.core.program.Program` the same way: it
declares which instructions it can fuse (elementwise, reduction, or neither) and
the limits of its kernels, and this kit groups and orders the work
(:func:`plan_units`), writing a typed :class:`Plan` of :class:`Unit` s that the
backend turns into kernels, and decides which variable updates are written in place
(:func:`plan_updates`), and, once the backend knows its steps, computes buffer
lifetimes and places them in an arena or a pool (:func:`plan_memory`, written to
``plan.memory``). The grouping is convex by construction, so a valid graph
always compiles.

Example:
    >>> plan = plan_units([1, 2], {1: [0], 2: [1]}.get, lambda i: ELEMENTWISE, lambda i: (3,), roots=[2])
    >>> [(u.members, u.writes) for u in plan.units]
    [([1, 2], [2])]
"""

from __future__ import annotations

from .fusion import ELEMENTWISE, REDUCTION, plan_units, schedule, schedule_hints
from .memory import (BufferSlot, MemoryLayout, MemoryPlan, Step, last_reads, liveness, plan_memory,
                     planned_peak_bytes)
from .plan import Plan, Unit
from .updates import UpdatePlan, plan_updates

__all__ = ["ELEMENTWISE", "REDUCTION", "Plan", "Unit", "UpdatePlan", "plan_units", "plan_updates", "schedule",
           "schedule_hints",
           "BufferSlot", "MemoryLayout", "MemoryPlan", "Step", "last_reads", "liveness", "plan_memory",
           "planned_peak_bytes"]
