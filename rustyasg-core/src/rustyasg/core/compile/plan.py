"""The plan types the compiler kit writes onto a :class:`~rustyasg.core.program.Program`.

A backend reads ``program.plan``: the units it must run, in order. A unit is one
kernel launch's worth of work: a single instruction, or a fused group of
instructions computed in one loop nest. Only what a unit *writes* is
materialized; the other members of a fused group live in registers. Once the
backend compiled the program, ``plan.memory`` holds where its buffers live
(:class:`~rustyasg.core.compile.memory.MemoryPlan`: lifetimes, slots, the
live bytes per step).

Example:
    >>> u = Unit("fused", [3, 4], shape=(2, 3), reads=[1, 2], writes=[4])
    >>> Plan([u]).groups[0].members
    [3, 4]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .memory import MemoryPlan


@dataclass
class Unit:
    """One scheduled piece of work.

    ``kind``: ``"fused"`` (members computed in one generated kernel) or ``"single"``
    (one instruction run by its own kernel). ``members``: instruction ids in program
    order. ``shape``: the iteration shape of a fused group. ``reads``: value ids read
    from outside the unit, first use first. ``writes``: member ids whose values are
    needed outside it (by other units, or as results). ``reductions``: members that
    reduce over the iteration shape (their values are not available per element).
    ``order``: program position of the last member (the scheduler's tie-break).
    """

    kind: str
    members: List[int]
    shape: Tuple[int, ...] = ()
    reads: List[int] = field(default_factory=list)
    writes: List[int] = field(default_factory=list)
    reductions: List[int] = field(default_factory=list)
    order: int = 0

    @property
    def head(self) -> int:
        """The last member (where the unit stands in program order)."""
        return self.members[-1]


@dataclass
class Plan:
    """Units in execution order (every unit follows the units it reads from); ``memory``:
    the buffer plan the backend made for them (``None`` until it compiled the program)."""

    units: List[Unit]
    memory: Optional[MemoryPlan] = None

    @property
    def groups(self) -> List[Unit]:
        """The fused units (two or more members)."""
        return [u for u in self.units if u.kind == "fused"]

    def unit_of(self) -> Dict[int, Unit]:
        """Instruction id -> the unit that computes it."""
        return {m: u for u in self.units for m in u.members}

    def dump(self) -> str:
        """One line per unit (``rustyasg`` tools and tests print it)."""
        lines = []
        for u in self.units:
            what = "fused" + str(list(u.members)) if u.kind == "fused" else f"%{u.head}"
            lines.append(f"{what} reads {['%%%s' % r for r in u.reads]} writes {['%%%s' % w for w in u.writes]}")
        return "\n".join(lines)
