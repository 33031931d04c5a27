"""Fusion grouping and scheduling, shared by every backend.

:func:`plan_units` walks instructions in program order and puts each one a backend
calls fusible into a group: the group of one of its producers (several producers'
groups may merge), else a recent group of the same iteration shape, else a new one.
A *reduction* member joins the group computing its operand as a terminal node: its
value exists only once the whole loop has run, so no member of that group reads it.

Groups are **convex by construction**. Every unit carries the bit set of the units
it depends on, kept transitively closed as groups grow; a join is refused when it
would make a unit depend on itself (an input's producer already depends on the
group being joined, or two merging groups depend on each other). The unit graph
therefore stays acyclic, :func:`schedule` always finds an order, and a valid graph
is never refused: at worst an instruction runs in a unit of its own.

Example:
    >>> shapes = {1: (4,), 2: (4,), 3: (), 4: (4,)}
    >>> inputs = {1: [0], 2: [1], 3: [2], 4: [1, 3]}       # 2 = sum(1) feeds 4 = 1 * 3
    >>> role = {1: ELEMENTWISE, 2: REDUCTION, 3: ELEMENTWISE, 4: ELEMENTWISE}.get
    >>> plan = plan_units([1, 2, 3, 4], inputs.get, role, lambda i: shapes[i if i != 2 else 1], roots=[4])
    >>> [(u.kind, u.members) for u in plan.units]
    [('fused', [1, 2]), ('fused', [3]), ('fused', [4])]
"""

from __future__ import annotations

import heapq
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from .plan import Plan, Unit

#: ``role_of`` answers: computed per element of the group's iteration shape...
ELEMENTWISE = "elementwise"
#: ...or reducing that iteration shape (the operand's shape) to fewer elements.
REDUCTION = "reduction"


def plan_units(order: Sequence[int], inputs_of: Callable[[int], Sequence[int]],
               role_of: Callable[[int], Optional[str]], shape_of: Callable[[int], tuple], *,
               key_of: Optional[Callable[[int], Optional[int]]] = None, roots: Iterable[int] = (),
               max_bindings: Optional[int] = None, recent: int = 0, min_group: int = 1,
               hint_of: Optional[Callable[[int], str]] = None,
               reach_of: Optional[Callable[[int], Optional[int]]] = None) -> Plan:
    """Group and schedule the instructions ``order`` (ids, program order) into a :class:`Plan`.

    ``inputs_of(id)``: the value ids an instruction reads. ``role_of(id)``: ``ELEMENTWISE``,
    ``REDUCTION`` or ``None`` (its own kernel). ``shape_of(id)``: the iteration shape
    (a reduction's is its operand's). ``key_of(value)``: the id in ``order`` whose unit
    computes that value's storage (a backend's aliases map to their source), ``None``
    for values made outside (inputs, variables, constants); by default a value is its
    own key when it is in ``order``. ``roots``: values leaving the program.
    ``max_bindings``: the most operands + results a fused kernel may bind. ``recent``:
    how many recent same-shape groups an instruction may join when none of its
    producers' groups fits. ``min_group``: smaller groups become single units.
    ``hint_of(id)``: an op's declared ``schedule`` (:func:`schedule_hints`): ``"asap"`` units
    go as soon as they are ready, ``"late"`` ones when nothing else is. ``reach_of(id)``: how
    many instructions back the last member of a producer's group may be for the instruction to
    join it (``None``: any distance); a value made long after its operand's group (a widening
    placed right before a late reader) otherwise turns into one more output of that group,
    stored until its reader runs.
    """
    units = _group(order, inputs_of, role_of, shape_of, key_of, max_bindings, recent, min_group, reach_of, roots)
    if hint_of is not None:
        for u in units:
            hint = hint_of(u.head)
            u.order = -1 if hint == "asap" else u.order + len(order) if hint == "late" else u.order
    key = _key_fn(order, key_of)
    _reads_writes(units, inputs_of, key, roots)
    return Plan(schedule(units, key))


def schedule_hints(program) -> Callable[[int], str]:
    """Instruction id -> its op's declared ``schedule`` (``OpDef.schedule``), for ``plan_units``."""
    from ..registry import OPS

    by_id = program.by_id()
    return lambda i: getattr(OPS.get(by_id[i].op), "schedule", "program")


def _key_fn(order, key_of):
    if key_of is not None:
        return key_of
    known = set(order)
    return lambda v: v if v in known else None


def _group(order, inputs_of, role_of, shape_of, key_of, max_bindings, recent, min_group, reach_of=None,
           roots: Iterable[int] = ()) -> List[Unit]:
    key = _key_fn(order, key_of)
    units: List[Unit] = []
    unit_of: Dict[int, int] = {}
    anc: List[int] = []       # anc[u]: bits of the units u depends on (itself included), transitively closed
    reduced: List[set] = []   # reduction members per unit
    ext: List[set] = []       # values each unit reads from outside (distinct: each is bound once)
    latest: Dict[tuple, List[int]] = {}
    readers: Dict[int, set] = {}  # value key -> the instructions reading it
    if max_bindings is not None:
        for iid in order:
            for v in inputs_of(iid):
                k = key(v)
                if k is not None:
                    readers.setdefault(k, set()).add(iid)
    root_keys = {key(r) for r in roots} - {None}

    def bindings(cands: List[int], iid: int, ins: Sequence[int]) -> int:
        """Storage buffers the group ``cands`` + ``iid`` binds: the distinct values it reads from
        outside and the members read outside it (readers not placed yet count as outside)."""
        members = {iid}
        reads = set()
        for g in cands:
            members.update(units[g].members)
            reads |= ext[g]
        reads.update(v for v in ins if not (producer(v) in cands and key(v) == v))
        reads -= members
        writes = sum(1 for m in members if m in root_keys or not readers.get(m, set()) <= members)
        return len(reads) + writes

    def producer(v) -> Optional[int]:
        k = key(v)
        return unit_of.get(k) if k is not None else None

    def legal(cands: List[int], iid: int, ins: Sequence[int]) -> bool:
        bits = 0
        for g in cands:
            bits |= 1 << g
        for g in cands:
            if anc[g] & (bits & ~(1 << g)):
                return False  # one merging group depends on another: a path leaves and re-enters
        for v in ins:
            g = producer(v)
            if g is not None and g in cands and key(v) == v:
                if v in reduced[g]:
                    return False  # a reduction's value does not exist per element inside its loop
                continue
            if g is not None and anc[g] & bits:
                return False  # the producer of this operand already depends on the group
        return max_bindings is None or bindings(cands, iid, ins) <= max_bindings

    for pos, iid in enumerate(order):
        ins = list(inputs_of(iid))
        deps = 0
        for v in ins:
            g = producer(v)
            if g is not None:
                deps |= anc[g]
        role = role_of(iid)
        chosen: List[int] = []
        if role is not None:
            shape = tuple(shape_of(iid))
            reach = reach_of(iid) if reach_of is not None else None
            cands: List[int] = []
            for v in ins:
                g = producer(v)
                if (g is not None and key(v) == v and units[g].kind == "fused" and units[g].shape == shape
                        and v not in reduced[g] and g not in cands and (reach is None or pos - units[g].order <= reach)):
                    cands.append(g)
            cands.sort(key=lambda g: -len(units[g].members))
            options = [cands] if len(cands) > 1 else []
            options += [[g] for g in cands]
            options += [[g] for g in reversed(latest.get(shape, [])[-recent:] if recent else [])
                        if units[g].kind == "fused" and g not in cands]
            chosen = next((opt for opt in options if legal(opt, iid, ins)), [])
        if chosen:
            target = min(chosen)
            for g in chosen:
                if g == target:
                    continue
                other = units[g]
                units[target].members += other.members
                reduced[target] |= reduced[g]
                ext[target] |= ext[g]
                for m in other.members:
                    unit_of[m] = target
                other.kind, other.members = "merged", []
        else:
            target = len(units)
            kind = "fused" if role == ELEMENTWISE else "single"
            units.append(Unit(kind, [], tuple(shape_of(iid)) if role else ()))
            anc.append(1 << target)
            reduced.append(set())
            ext.append(set())
            if kind == "fused":
                latest.setdefault(units[target].shape, []).append(target)
            chosen = [target]
        u = units[target]
        ext[target].update(v for v in ins if not (producer(v) == target and key(v) == v))
        u.members.append(iid)
        u.order = pos
        if role == REDUCTION:
            reduced[target].add(iid)
        unit_of[iid] = target
        mask = 0
        grown = deps
        for g in chosen:
            mask |= 1 << g
            grown |= anc[g]
        for d in range(len(anc)):
            if anc[d] & mask:
                anc[d] |= grown
    pos_of = {v: k for k, v in enumerate(order)}
    out = []
    for k, u in enumerate(units):
        if u.kind == "merged":
            continue
        u.members.sort(key=pos_of.__getitem__)
        u.order = pos_of[u.members[-1]]
        if u.kind == "fused" and len(u.members) < min_group:
            out.extend(Unit("single", [m], order=pos_of[m]) for m in u.members)
            continue
        u.reductions = sorted(reduced[k], key=pos_of.__getitem__)
        out.append(u)
    return out


def _reads_writes(units: List[Unit], inputs_of, key, roots) -> None:
    root_keys = {key(r) for r in roots} - {None}
    readers: Dict[int, set] = {}
    for k, u in enumerate(units):
        for m in u.members:
            for v in inputs_of(m):
                rk = key(v)
                if rk is not None:
                    readers.setdefault(rk, set()).add(k)
    for k, u in enumerate(units):
        members = set(u.members)
        reads: List[int] = []
        for m in u.members:
            for v in inputs_of(m):
                if v not in members and v not in reads:
                    reads.append(v)
        u.reads = reads
        u.writes = [m for m in u.members
                    if u.kind != "fused" or m in root_keys or any(r != k for r in readers.get(m, ()))]


def schedule(units: List[Unit], key_of: Callable[[int], Optional[int]]) -> List[Unit]:
    """``units`` in an order where each follows the units it reads from.

    Among ready units the one whose last member came first in the program goes first,
    which keeps the program's (memory-friendly) order where fusion moved nothing.

    >>> a, b = Unit("single", [5], reads=[9], order=1), Unit("single", [9], order=0)
    >>> [u.head for u in schedule([a, b], lambda v: v if v in (5, 9) else None)]
    [9, 5]
    """
    producer = {m: k for k, u in enumerate(units) for m in u.members}
    n = len(units)
    indeg = [0] * n
    users: List[List[int]] = [[] for _ in range(n)]
    for k, u in enumerate(units):
        deps = {producer[key_of(v)] for v in u.reads if key_of(v) in producer} - {k}
        indeg[k] = len(deps)
        for d in deps:
            users[d].append(k)
    ready = [(u.order, k) for k, u in enumerate(units) if not indeg[k]]
    heapq.heapify(ready)
    out: List[Unit] = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(units[k])
        for j in users[k]:
            indeg[j] -= 1
            if not indeg[j]:
                heapq.heappush(ready, (units[j].order, j))
    if len(out) != n:  # grouping keeps the unit graph acyclic; this is an internal error
        raise AssertionError("compiler kit: the unit graph has a cycle")
    return out
