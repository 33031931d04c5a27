"""Elementwise fusion: maximal groups of same-shape float elementwise instructions, one kernel each.

Which instructions fuse (:func:`fusable`): core ops of kind ``elementwise`` that the
fused generator knows (:data:`~rustyasg.wgpu.kernels.elementwise.OPS`, via
:func:`ew_step`) and that compute in the *float domain*: every value is carried as
f32 inside the kernel (bool as 0/1, ints converted on load or store). Integer
arithmetic and comparisons stay exact in their own kernels (:mod:`.kernels.ew_ops`).

Grouping walks the program in order and puts an instruction into the group of one
of its producers (else into a recent group of the same shape) when the shapes agree
and joining cannot create a cycle between kernels: every unit carries the set of
units it depends on, kept transitively closed as groups grow, and an instruction may
not join group ``G`` if the producer of one of its other inputs already depends on
``G`` (PyTensor's "convex group" rule). The unit graph is then acyclic and
:func:`schedule` orders the kernels.

Example::

    >>> shapes = {1: (4,), 2: (4,), 3: (4,)}          # 1 = exp(x), 2 = 1 * 2, 3 = 2 + y
    >>> inputs = {1: [0], 2: [1], 3: [2, 9]}
    >>> units = group_elementwise([1, 2, 3], inputs.get, lambda i: True, shapes.get,
    ...                           lambda v: v if v in shapes else None, max_bindings=8)
    >>> [(u.kind, u.members) for u in units]
    [('fused', [1, 2, 3])]
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rustyasg.core.registry import OPS as CORE_OPS

from .kernels.elementwise import OPS as EW_OPS

F32_MAX = 3.4028234663852886e38
#: Ops computed exactly on integers when an operand or the result is int32/int64.
INT_OPS = frozenset({
    "add", "sub", "mul", "neg", "abs", "sign", "square", "maximum", "minimum", "relu", "clamp",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "where", "identity",
    "stop_gradient", "cast", "floor_divide", "mod", "floor", "ceil", "round",
    "logical_not", "logical_and", "logical_or",
})
#: How many recent same-shape groups an instruction without a producer group may join.
RECENT_GROUPS = 4
#: Ops the fused float kernel computes (the generator's table plus those lowered onto it).
FLOAT_EW_OPS = frozenset(EW_OPS) | {"cast", "stop_gradient", "identity", "leaky_relu", "elu", "softplus", "clamp"}


def _is_int(dt) -> bool:
    return np.dtype(dt).kind in "iu"


def int_domain(instr, in_dtypes: Sequence[np.dtype]) -> bool:
    """True when ``instr`` must compute on exact integers (see module doc)."""
    if instr.op == "cast":
        return not any(np.dtype(d).kind == "f" for d in list(in_dtypes) + [instr.dtype])
    if instr.op not in INT_OPS:
        return False
    return any(_is_int(d) for d in list(in_dtypes) + [instr.dtype])


def ew_step(instr) -> Tuple[List[Tuple[str, tuple]], int]:
    """The fused-generator steps for one instruction: ``[(op, literal args)], arity``.

    Attributes become literal arguments appended after the operands; a step's
    operand ``None`` stands for the previous step's result.

    Example::

        >>> class I: op, attrs = "clamp", {"min": None, "max": 1.0}
        >>> ew_step(I())
        ([('minimum', (1.0,))], 1)
    """
    op, a = instr.op, instr.attrs
    if op in ("cast", "stop_gradient", "identity"):
        return [("identity", ())], 1
    if op == "leaky_relu":
        return [("leaky_relu", (a["negative_slope"],))], 1
    if op == "elu":
        return [("elu", (a["alpha"],))], 1
    if op == "softplus":
        return [("softplus", (a["beta"], a["threshold"]))], 1
    if op == "clamp":
        steps = []
        if a["min"] is not None:
            steps.append(("maximum", (a["min"],)))
        if a["max"] is not None:
            steps.append(("minimum", (a["max"],)))
        return steps or [("identity", ())], 1
    return [(op, ())], EW_OPS[op][0]


def fusable(instr, in_dtypes: Sequence[np.dtype]) -> bool:
    """Whether ``instr`` can be part of a fused float elementwise kernel."""
    opdef = CORE_OPS.get(instr.op)
    if opdef is None or opdef.kind != "elementwise" or instr.op == "one_hot":
        return False
    if instr.op not in FLOAT_EW_OPS:
        return False
    return not int_domain(instr, in_dtypes)


@dataclass
class Unit:
    """One scheduled piece of work: a fused group or a single instruction's kernel.

    ``members`` are instruction ids (in program order); ``reads`` the value ids it
    reads from outside; ``writes`` the member ids whose values are materialized.
    """

    kind: str  # "fused" or "kernel"
    members: List[int]
    shape: Tuple[int, ...] = ()
    reads: List[int] = field(default_factory=list)
    writes: List[int] = field(default_factory=list)
    order: int = 0  # program position of the last member

    @property
    def head(self) -> int:
        return self.members[-1]


def group_elementwise(order: Sequence, inputs_of: Callable[[int], Sequence[int]], is_fusable: Callable,
                      shape_of: Callable[[int], tuple], group_key: Callable[[int], object],
                      max_bindings: int) -> List[Unit]:
    """Units for the instructions in ``order`` (ids, program order).

    ``inputs_of(id)`` the value ids an instruction reads (aliases resolved or not, as
    long as ``group_key`` maps a value to the unit that computes it, or ``None``);
    ``is_fusable(id)``; ``max_bindings`` bounds a group's inputs + outputs.
    """
    units: List[Unit] = []
    unit_of: Dict[int, int] = {}
    # anc[u]: bit set of the units u depends on, itself included, kept transitively closed
    # as groups grow (a join adds the new member's dependencies to every unit below it).
    anc: List[int] = []
    ext_count: List[int] = []
    recent: Dict[tuple, List[int]] = {}

    def unit_anc(v):
        k = group_key(v)
        return anc[unit_of[k]] if k is not None and k in unit_of else 0

    def direct_member(w, g):
        k = group_key(w)
        return k is not None and k == w and unit_of.get(k) == g

    for pos, iid in enumerate(order):
        ins = list(inputs_of(iid))
        deps = 0
        for v in ins:
            deps |= unit_anc(v)
        chosen = None
        if is_fusable(iid):
            shape = shape_of(iid)
            # Producers' groups first; then recent groups of the same shape (independent work
            # sharing one kernel, e.g. sigmoid(x) next to exp(x)).
            candidates = [unit_of[group_key(v)] for v in ins
                          if group_key(v) is not None and group_key(v) == v and v in unit_of]
            candidates += list(reversed(recent.get(shape, [])))
            for g in dict.fromkeys(candidates):
                u = units[g]
                if u.kind != "fused" or u.shape != shape:
                    continue
                # Joining g adds edges (producer of w) -> g: a cycle iff that producer depends on g.
                if any(not direct_member(w, g) and (unit_anc(w) >> g) & 1 for w in ins):
                    continue
                new_ext = sum(1 for w in ins if not direct_member(w, g))
                if ext_count[g] + new_ext + len(u.members) + 1 > max_bindings:
                    continue
                chosen = g
                break
            if chosen is None:
                chosen = len(units)
                units.append(Unit("fused", [], shape))
                anc.append(1 << chosen)
                ext_count.append(0)
                recent.setdefault(shape, []).append(chosen)
                del recent[shape][:-RECENT_GROUPS]
            u = units[chosen]
            ext_count[chosen] += sum(1 for w in ins if not direct_member(w, chosen))
            u.members.append(iid)
            u.order = pos
        else:
            chosen = len(units)
            units.append(Unit("kernel", [iid], shape_of(iid), order=pos))
            anc.append(1 << chosen)
            ext_count.append(0)
        unit_of[iid] = chosen
        grown = anc[chosen] | deps
        if grown != anc[chosen]:
            bit = 1 << chosen
            anc[chosen] = grown
            for d in range(len(anc)):
                if d != chosen and anc[d] & bit:
                    anc[d] |= grown
    return units


def schedule(units: List[Unit], unit_deps: Callable[[int], Sequence[int]]) -> List[Unit]:
    """Units in an order where every unit follows the units it reads from.

    Among ready units the one whose last member came first in the program goes first,
    which keeps the program's (memory-friendly) order where fusion did not move work.
    """
    n = len(units)
    indeg = [0] * n
    users: List[List[int]] = [[] for _ in range(n)]
    for i in range(n):
        deps = set(d for d in unit_deps(i) if d != i)
        indeg[i] = len(deps)
        for d in deps:
            users[d].append(i)
    ready = [(units[i].order, i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(ready)
    out: List[Unit] = []
    while ready:
        _, i = heapq.heappop(ready)
        out.append(units[i])
        for j in users[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, (units[j].order, j))
    if len(out) != n:
        raise RuntimeError("wgpu fusion produced a cyclic kernel graph (a bug in the grouping rule)")
    return out


def scalar_constant(instr) -> Optional[float]:
    """The value of a 0-d float/bool constant instruction (passed to fused kernels as a uniform)."""
    if instr.op != "constant" or instr.shape != ():
        return None
    value = np.asarray(instr.attrs["value"])
    if value.dtype.kind in "iu" and abs(int(value)) >= (1 << 24):
        return None  # not exact in f32: keep it a buffer
    with np.errstate(over="ignore"):  # beyond the f32 range is +-inf in the kernel, as a cast would give
        return float(np.float32(value))
