"""The ``cpu_fusion`` pass: choose groups of instructions that run as one kernel.

Greedy, in program order: an elementwise instruction joins the group of an
operand with the same shape, or merges several such groups, as long as the
result stays *convex* (no path leaves the group and comes back, which would
make it impossible to run the group as one step). A reduction (sum, mean, max,
min, sum_to) whose operand is computed in a group joins it as a terminal node.
Members whose values are needed elsewhere become the group's outputs; the rest
never touch memory.

The pass only annotates the program (``program.cpu_groups``: a list of
``(member ids, output ids)``); the executor generates and binds the kernels.
Disable it with ``rustyasg.function(..., disabled_passes=("cpu_fusion",))``.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4, 3), name="x")
    >>> f = rg.function([x], rg.tanh(x * 2.0 + 1.0).sum(), backend="cpu")
    >>> [len(members) for members, _ in f.lower(np.ones((4, 3), np.float32)).cpu_groups]
    [4]
"""

from __future__ import annotations

from typing import Dict, List, Set

from .kernels.protocol import Elementwise, Reduction


class _Group:
    __slots__ = ("members", "mask", "ext", "shape", "reductions", "consumed")

    def __init__(self, shape):
        self.members: List[int] = []
        self.mask = 0
        self.ext: Set[int] = set()
        self.shape = shape
        self.reductions: Set[int] = set()
        self.consumed: Set[int] = set()  # every operand of every member


def _kernel_table():
    from rustyasg.core.plugins import load_kernels

    return load_kernels("cpu")


def find_groups(program, table=None) -> List[tuple]:
    """``[(member ids in program order, output ids)]`` for groups of two or more."""
    table = _kernel_table() if table is None else table
    by_id = program.by_id()
    pos = {ins.id: k for k, ins in enumerate(program.instrs)}
    anc: Dict[int, int] = {}
    for ins in program.instrs:
        m = 0
        for a in ins.inputs:
            m |= anc[a] | (1 << pos[a])
        anc[ins.id] = m
    group_of: Dict[int, _Group] = {}

    def legal(groups, ins) -> bool:
        members = set().union(*(g.members for g in groups)) | {ins.id}
        mask = 0
        for g in groups:
            mask |= g.mask
        mask |= 1 << pos[ins.id]
        ext = set().union(*(g.ext for g in groups)) | set(ins.inputs)
        ext -= members
        reds = set().union(*(g.reductions for g in groups))
        consumed = set().union(*(g.consumed for g in groups)) | set(ins.inputs)
        if reds & consumed:
            return False  # a reduction's result is not available per element
        return all(not (anc[u] & mask) for u in ext)

    def join(groups, ins, reduction):
        g = groups[0]
        for other in groups[1:]:
            g.members += other.members
            g.mask |= other.mask
            g.ext |= other.ext
            g.reductions |= other.reductions
            g.consumed |= other.consumed
            for mid in other.members:
                group_of[mid] = g
        g.members.append(ins.id)
        g.mask |= 1 << pos[ins.id]
        g.ext = (g.ext | set(ins.inputs)) - set(g.members)
        g.consumed |= set(ins.inputs)
        if reduction:
            g.reductions.add(ins.id)
        group_of[ins.id] = g

    for ins in program.instrs:
        kernel = table.get(ins.op)
        if isinstance(kernel, Elementwise):
            shape, reduction = tuple(ins.shape), False
        elif isinstance(kernel, Reduction) and ins.dtype.kind in "fiu":
            shape, reduction = tuple(by_id[ins.inputs[0]].shape), True
        else:
            continue
        cands = []
        for a in ins.inputs:
            g = group_of.get(a)
            if g is not None and g.shape == shape and a not in g.reductions and all(g is not c for c in cands):
                cands.append(g)
        chosen = None
        if len(cands) > 1 and legal(cands, ins):
            chosen = cands
        else:
            for g in sorted(cands, key=lambda c: -len(c.members)):
                if legal([g], ins):
                    chosen = [g]
                    break
        if chosen is not None:
            join(chosen, ins, reduction)
        elif not reduction:
            g = _Group(shape)
            join([g], ins, False)

    roots = set(program.roots())
    users = program.users()
    result, seen = [], set()
    for ins in program.instrs:
        g = group_of.get(ins.id)
        if g is None or id(g) in seen or len(g.members) < 2:
            continue
        seen.add(id(g))
        members = sorted(g.members, key=pos.__getitem__)
        mset = set(members)
        outputs = [m for m in members if m in roots or any(u not in mset for u in users[m])]
        result.append((members, outputs))
    return result


def cpu_fusion(program):
    """Annotate ``program`` with ``cpu_groups`` (see the module docstring)."""
    program.cpu_groups = find_groups(program)
    return program
