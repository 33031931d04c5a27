"""Rematerialization (gradient checkpointing) as a whole-step pass.

A training step computes activations in the forward pass and reads many of them again in
the backward pass; between the two they hold memory. Recomputing such a value right before
its first backward use frees it in between, for the cost of computing it twice.

:func:`rematerialize` (the ``rematerialize`` pass, after CSE so the copies stay distinct)
does it for the values ``program.options['remat']`` names:

- ``recompute``: ids chosen by ``rg.checkpoint`` regions and their policies
  (:mod:`rustyasg.core.checkpoint`);
- ``budget`` (bytes): :func:`choose_for_budget` picks the values itself so that the
  modelled peak (:func:`live_bytes`) fits the budget at the least recompute cost, with an
  exact 0/1 program (``scipy.optimize.milp``, HiGHS), or ``solver="greedy"``: most bytes
  freed at the peak per unit of cost, one value at a time, until it fits. Each answer is
  checked on the rewritten step and tightened if the model's approximations missed.

Each clone is placed right before the earliest backward instruction that needs it (the
schedulers keep program order where nothing forces otherwise), and only backward readers
are redirected to it, so the original value dies after its last forward reader. Random ops
are never recomputed (a second draw would differ). The step is then scheduled for memory
(:func:`memory_order`). ``program.report['remat']`` says what was chosen: the modelled peaks
before, after reordering and after recomputation, the solver, how many values were copied and
their cost.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((512, 32), name="x")
    >>> ws = [rg.variable(np.eye(32, dtype=np.float32), name=f"w{i}") for i in range(6)]
    >>> h = x
    >>> for w in ws:
    ...     h = rg.tanh(h @ w)
    >>> grads = rg.grad(rg.sum(h), ws)
    >>> x0 = np.ones((512, 32), np.float32)
    >>> peak = live_bytes(rg.function([x], grads, backend="reference").lower(x0))[1]
    >>> f = rg.function([x], grads, backend="reference", memory_budget=int(peak * 0.45))
    >>> r = f.lower(x0).report["remat"]
    >>> r["fits"], r["peak_after"] <= int(peak * 0.45), r["recomputed"] > 0
    (True, True, True)

The schedule alone (:func:`memory_order`) already lowers the peak (``peak_reordered``);
values are recomputed only where that is not enough.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Set, Tuple

import numpy as np

from ..program import Instr, Program
from ..registry import OPS

ALIGN = 64
#: Ops whose result a backend keeps as a view of the operand's storage (the model's aliases).
VIEW_OPS = frozenset({"reshape", "identity", "stop_gradient", "broadcast_to", "transpose"})
_SOURCES = frozenset({"input", "variable", "constant"})


def _size(ins: Instr) -> int:
    return -(-max(ins.nbytes, 1) // ALIGN) * ALIGN


def backward_ids(program: Program) -> Set[int]:
    """Instructions a ``grad`` call built, and what depends on them (the backward pass and the updates)."""
    from ..autograd import gradient_calls_building

    calls = gradient_calls_building(i.id for i in program.instrs)
    out: Set[int] = set()
    for ins in program.instrs:
        if any(c.built(ins.id) for c in calls) or any(a in out for a in ins.inputs):
            out.add(ins.id)
    return out


def recompute_cost(ins: Instr, by_id: Dict[int, Instr]) -> float:
    """Work to compute ``ins`` again (multiply-adds for products, elements otherwise)."""
    if ins.op in VIEW_OPS:
        return 0.0
    if ins.op == "matmul":
        return 2.0 * ins.size * by_id[ins.inputs[0]].shape[-1]
    if ins.op == "conv2d":
        w = by_id[ins.inputs[1]]
        return 2.0 * ins.size * int(np.prod(w.shape[1:]))
    return float(ins.size + sum(by_id[a].size for a in ins.inputs))


def _roots(program: Program) -> Dict[int, int]:
    by_id = program.by_id()
    root: Dict[int, int] = {}
    for ins in program.instrs:
        root[ins.id] = root.get(ins.inputs[0], ins.inputs[0]) if ins.op in VIEW_OPS and ins.inputs else ins.id
    del by_id
    return root


def intervals(program: Program) -> Tuple[Dict[int, Tuple[int, int, int]], int]:
    """Per storage root: ``(first step, last step, bytes)`` in program order; and the step count.

    Inputs live from step 0, outputs and update values to the end; variables and
    constants (resident) are not counted.
    """
    by_id = program.by_id()
    root = _roots(program)
    pos = {ins.id: k for k, ins in enumerate(program.instrs)}
    n = len(program.instrs)
    spans: Dict[int, List[int]] = {}
    for ins in program.instrs:
        r = root[ins.id]
        if by_id[r].op in ("variable", "constant"):
            continue
        start = 0 if by_id[r].op == "input" else pos[r]
        spans.setdefault(r, [start, start])
        for a in ins.inputs:
            ra = root[a]
            if ra in spans:
                spans[ra][1] = max(spans[ra][1], pos[ins.id])
    for v in program.roots():
        if root.get(v) in spans:
            spans[root[v]][1] = n - 1
    return {r: (s, e, _size(by_id[r])) for r, (s, e) in spans.items()}, n


def live_bytes(program: Program) -> Tuple[List[int], int]:
    """The model's timeline: bytes live at each step of program order, and its peak.

    It counts every value as its own buffer (views share their base's), so it is an upper
    bound of a backend's plan, which also keeps fused intermediates in registers.
    """
    spans, n = intervals(program)
    diff = np.zeros(n + 1, np.int64)
    for s, e, b in spans.values():
        diff[s] += b
        diff[e + 1] -= b
    live = np.cumsum(diff)[:n]
    return live.tolist(), int(live.max()) if n else 0


def apply_recompute(program: Program, ids: Iterable[int]) -> List[int]:
    """Recompute the forward values ``ids`` for their backward readers; returns the copies' ids."""
    back = backward_ids(program)
    by_id = program.by_id()
    users = program.users()
    pos = {ins.id: k for k, ins in enumerate(program.instrs)}
    wanted = {v for v in ids if v in by_id and v not in back and by_id[v].op not in _SOURCES
              and OPS.get(by_id[v].op) is not None and OPS[by_id[v].op].kind != "random"}
    todo: Set[int] = set()
    stack = [v for v in wanted if any(u in back for u in users[v])]
    while stack:
        v = stack.pop()
        if v in todo:
            continue
        todo.add(v)
        stack += [a for a in by_id[v].inputs if a in wanted]
    if not todo:
        return []
    def first_use(u):  # a backward view is only an alias: its readers say when the value is needed
        if by_id[u].op in VIEW_OPS and users[u]:
            return min(first_use(w) for w in users[u])
        return pos[u]

    need: Dict[int, int] = {}
    for v in sorted(todo, key=pos.__getitem__, reverse=True):
        need[v] = min([first_use(u) for u in users[v] if u in back] + [need[w] for w in users[v] if w in todo])
    from .emit import first_free_id

    next_id = first_free_id(program)
    clones: Dict[int, Instr] = {}
    for v in sorted(todo, key=pos.__getitem__):
        ins = by_id[v]
        next_id += 1
        clones[v] = Instr(next_id - 1, ins.op, tuple(clones[a].id if a in clones else a for a in ins.inputs),
                          dict(ins.attrs), ins.shape, ins.dtype, ins.source, ins.name)
    at: Dict[int, List[Instr]] = {}
    for v in sorted(todo, key=pos.__getitem__):
        at.setdefault(need[v], []).append(clones[v])
    out: List[Instr] = []
    for k, ins in enumerate(program.instrs):
        out += at.get(k, [])
        if ins.id in back:
            ins.inputs = tuple(clones[a].id if a in clones else a for a in ins.inputs)
        out.append(ins)
    program.instrs = out
    return [c.id for c in clones.values()]


def memory_order(program: Program) -> Program:
    """Reorder instructions (topologically) so that values die early: a greedy list schedule.

    Among the instructions whose operands are ready, one that frees at least as many bytes
    as it allocates (a weight gradient that is the last reader of an activation) runs first;
    otherwise program order decides. Autograd emits each parameter's gradient after the whole
    input-gradient chain, which keeps every activation alive to the end; this schedule runs
    it as soon as it can, which is what makes recomputation pay.
    """
    import heapq

    by_id = program.by_id()
    root = _roots(program)
    pos = {ins.id: k for k, ins in enumerate(program.instrs)}
    kept = {root.get(v) for v in program.roots()}
    readers: Dict[int, int] = {}
    reader_ids: Dict[int, Set[int]] = {}
    for ins in program.instrs:
        for a in set(root[x] for x in ins.inputs):
            readers[a] = readers.get(a, 0) + 1
            reader_ids.setdefault(a, set()).add(ins.id)
    waiting = {ins.id: len(set(ins.inputs)) for ins in program.instrs}
    users = program.users()

    def gain(ins):
        freed = sum(_size(by_id[r]) for r in set(root[x] for x in ins.inputs)
                    if readers.get(r) == 1 and r not in kept and by_id[r].op not in _SOURCES)
        alloc = 0 if ins.op in VIEW_OPS or ins.op in _SOURCES else _size(ins)
        return freed - alloc

    ready = [(0 if gain(i) >= 0 else 1, pos[i.id], i.id) for i in program.instrs if not waiting[i.id]]
    heapq.heapify(ready)
    out: List[Instr] = []
    done: Set[int] = set()
    while ready:
        _, _, v = heapq.heappop(ready)
        if v in done:
            continue
        done.add(v)
        ins = by_id[v]
        out.append(ins)
        for r in set(root[x] for x in ins.inputs):
            readers[r] -= 1
            reader_ids[r].discard(v)
            if readers[r] == 1:  # its last reader now frees it: look at that reader again
                (u,) = reader_ids[r]
                if not waiting[u] and u not in done:
                    heapq.heappush(ready, (0 if gain(by_id[u]) >= 0 else 1, pos[u], u))
        for u in set(users[v]):
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, (0 if gain(by_id[u]) >= 0 else 1, pos[u], u))
    if len(out) != len(program.instrs):  # only a malformed program has a cycle
        raise AssertionError("memory_order: the program has a cycle")
    program.instrs = out
    return program


def _candidates(program: Program):
    """Forward storage roots that a recomputation could free for a while, with what that needs."""
    back = backward_ids(program)
    by_id = program.by_id()
    root = _roots(program)
    pos = {ins.id: k for k, ins in enumerate(program.instrs)}
    spans, n = intervals(program)
    aliases: Dict[int, List[int]] = {}
    for v, r in root.items():
        aliases.setdefault(r, []).append(v)
    kept = {root.get(v) for v in program.roots()}
    users = program.users()
    out = {}
    for r, (s, e, b) in spans.items():
        ins = by_id[r]
        if r in back or r in kept or ins.op in _SOURCES or OPS.get(ins.op) is None or OPS[ins.op].kind == "random":
            continue
        real = [u for a in aliases[r] for u in users[a] if root[u] != r]  # a view's readers, not the view
        fwd = [pos[u] for u in real if u not in back]
        bwd = [pos[u] for u in real if u in back]
        last_fwd = max(fwd + [s])
        # a value no backward step reads frees nothing itself, but recomputing it lets a value
        # computed from it be recomputed without keeping it alive (chains are recomputed whole)
        free = (last_fwd + 1, min(bwd) - 1) if bwd else (n, n - 1)
        deps = sorted({root[a] for a in ins.inputs if root[a] in spans})
        out[r] = {"free": free, "bytes": b, "cost": recompute_cost(ins, by_id),
                  "deps": deps, "ids": [a for a in aliases[r] if a not in back]}
    return out, spans, n


def _model_rows(cands, spans, n, base, budget):
    """Sparse constraint rows ``base[t] - saved(t) + extended(t) <= budget`` over the steps that matter."""
    from scipy.sparse import coo_matrix

    names = list(cands)
    index = {r: k for k, r in enumerate(names)}
    ext = []  # (dep root, user root, from step, to step)
    for r, c in cands.items():
        for d in c["deps"]:
            s, e, b = spans[d]
            if e + 1 <= c["free"][1] + 1:
                ext.append((d, r, e + 1, c["free"][1] + 1))
    worst = np.array(base, np.int64)
    for d, r, t0, t1 in ext:
        worst[t0:t1 + 1] += spans[d][2]
    steps = [t for t in range(n) if worst[t] > budget]
    row_of = {t: k for k, t in enumerate(steps)}
    rows, cols, vals = [], [], []
    for r, c in cands.items():
        lo, hi = c["free"]
        for t in range(lo, hi + 1):
            if t in row_of:
                rows.append(row_of[t])
                cols.append(index[r])
                vals.append(-c["bytes"])
    nx = len(names)
    links = []  # y index -> (dep, user)
    for d, r, t0, t1 in ext:
        j = nx + len(links)
        links.append((d, r))
        for t in range(t0, t1 + 1):
            if t in row_of:
                rows.append(row_of[t])
                cols.append(j)
                vals.append(spans[d][2])
    shape = (len(steps), nx + len(links))
    return names, index, links, steps, coo_matrix((vals, (rows, cols)), shape=shape).tocsr()


def _solve_milp(cands, spans, n, base, budget):
    from scipy.optimize import Bounds, LinearConstraint, milp

    names, index, links, steps, a = _model_rows(cands, spans, n, base, budget)
    if not steps:
        return set()
    nx, ny = len(names), len(links)
    cost = np.array([cands[r]["cost"] + 1.0 for r in names] + [0.0] * ny)
    upper = np.array([budget - base[t] for t in steps], float)
    cons = [LinearConstraint(a, -np.inf, upper)]
    if ny:  # y(d, r) >= x(r) - x(d): a kept dependency lives until its user is recomputed
        from scipy.sparse import coo_matrix

        rr, cc, vv = [], [], []
        for k, (d, r) in enumerate(links):
            rr += [k, k]
            cc += [nx + k, index[r]]
            vv += [1.0, -1.0]
            if d in index:
                rr.append(k)
                cc.append(index[d])
                vv.append(1.0)
        cons.append(LinearConstraint(coo_matrix((vv, (rr, cc)), shape=(ny, nx + ny)).tocsr(), 0.0, np.inf))
    res = milp(cost, constraints=cons, integrality=np.ones(nx + ny), bounds=Bounds(0, 1),
               options={"time_limit": 30.0})
    if res.x is None:
        return None
    return {names[k] for k in range(nx) if res.x[k] > 0.5}


def _solve_greedy(cands, spans, n, base, budget):
    """At the peak step, recompute the value (with the chain of values only it needs, which
    would otherwise stay alive) that frees the most bytes per unit of work; repeat."""
    live = np.array(base, np.int64)
    chosen: Set[int] = set()

    def bundle(r, hi):
        out = {r}
        for d in cands[r]["deps"]:
            if d in cands and d not in chosen and cands[d]["free"][0] > cands[d]["free"][1] and spans[d][1] < hi:
                out |= bundle(d, hi)
        return out

    while live.max() > budget:
        t = int(live.argmax())
        best, score = None, 0.0
        for r, c in cands.items():
            lo, hi = c["free"]
            if r in chosen or not lo <= t <= hi:
                continue
            group = bundle(r, hi)
            s = c["bytes"] / (sum(cands[g]["cost"] for g in group) + 1.0)
            if s > score:
                best, score = group, s
        if best is None:
            return None
        for r in sorted(best, key=lambda r: -cands[r]["free"][1]):
            chosen.add(r)
            lo, hi = cands[r]["free"]
            live[lo:hi + 1] -= cands[r]["bytes"]
            for d in cands[r]["deps"]:
                if d not in chosen and spans[d][1] + 1 <= hi:
                    live[spans[d][1] + 1:hi + 1] += spans[d][2]
    return chosen


def choose_for_budget(program: Program, budget: int, solver: str = "milp") -> Tuple[Set[int], dict]:
    """Which values to recompute so the modelled peak fits ``budget`` bytes; ``(ids, report)``."""
    if solver not in ("milp", "greedy"):
        raise ValueError(f"memory budget solver {solver!r}: expected 'milp' or 'greedy'")
    base, before = live_bytes(program)
    report = {"solver": solver, "budget": int(budget)}
    if before <= budget:
        return set(), dict(report, peak_after=before, fits=True, recompute_cost=0.0, tries=0)
    cands, spans, n = _candidates(program)
    solve = _solve_milp if solver == "milp" else _solve_greedy
    best = None
    tries = 0

    def attempt(target):
        nonlocal best, tries
        tries += 1
        pick = solve(cands, spans, n, base, target)
        if pick is None:  # the model says no choice reaches this target
            return None
        ids = {i for r in pick for i in cands[r]["ids"]}
        trial = _scratch_copy(program)
        apply_recompute(trial, ids)
        memory_order(trial)
        after = live_bytes(trial)[1]
        cost = sum(cands[r]["cost"] for r in pick)
        if best is None or (after <= budget, -cost if after <= budget else -after) > \
                (best[1] <= budget, -best[2] if best[1] <= budget else -best[1]):
            best = (ids, after, cost)
        return after

    target, step = budget, 0
    for k in range(6):  # the model approximates clone placement: tighten until the rewritten step fits
        after = attempt(target)
        if after is None or after <= budget:
            break
        step = max(2 * step, after - budget)
        target = budget - step
    if best is None or best[1] > budget:  # out of reach: the lowest peak the model can reach
        lo, hi = budget, before
        for _ in range(6):
            mid = (lo + hi) // 2
            if attempt(mid) is None:
                lo = mid
            else:
                hi = mid
    if best is None:
        return set(), dict(report, peak_after=before, fits=False, recompute_cost=0.0, tries=tries)
    ids, after, cost = best
    return ids, dict(report, peak_after=after, fits=after <= budget, recompute_cost=cost, tries=tries)


def _scratch_copy(program: Program) -> Program:
    """A copy whose instructions may be rewritten (variables and constants are shared, not copied)."""
    import copy

    return Program([copy.copy(i) for i in program.instrs], list(program.inputs), list(program.outputs),
                   program.variables, list(program.updates))


def rematerialize(program: Program) -> Program:
    """The pass: recompute what ``options['remat']`` asks for (a no-op without it)."""
    opts: Optional[dict] = program.options.get("remat")
    if not opts:
        return program
    _, before = live_bytes(program)
    memory_order(program)
    report: dict = {"peak_before": before, "peak_reordered": live_bytes(program)[1]}
    ids: Set[int] = set(opts.get("recompute", ()))
    if opts.get("budget") is not None:
        chosen, info = choose_for_budget(program, int(opts["budget"]), opts.get("solver", "milp"))
        ids |= chosen
        report.update(info)  # fits: by the model; the compiled function checks the backend's plan
    by_id = program.by_id()
    work = sum(recompute_cost(by_id[i], by_id) for i in ids if i in by_id)
    chosen: Dict[str, int] = {}
    for i in sorted(ids):
        if i in by_id:
            chosen[by_id[i].op] = chosen.get(by_id[i].op, 0) + 1
    report["recomputed_ops"] = chosen  # what was chosen, by op (``recomputed`` counts the copies made)
    copies = apply_recompute(program, ids)
    report["recomputed"] = len(copies)
    memory_order(program)
    report["recompute_cost"] = work
    report["peak_after"] = live_bytes(program)[1]
    program.report["remat"] = report
    return program
