"""The order in which a cold start's kernels are compiled by two processes taking jobs from opposite ends.

:func:`.precompile.precompile` has this process take jobs from the front of a list and a worker from
the back, each job claimed by whichever reaches it first. In the program's order that list wastes
time in two ways (measured on the demo's first step, 2-core AMD EPYC):

- **a tail:** whoever finishes first waits for the other's last job, which may be the largest
  (up to 0.6 s; the demo waited 0.25 s);
- **helpers compiled twice:** a kernel compiles the numba helpers it calls (``exp32``, a batch
  norm's statistics, ``accumulate``) in its own process, so two kernels with one helper in the two
  processes compile it in both (0.1-0.2 s each).

:func:`two_lane_order` keeps the kernels that share a costly helper together, and deals these units
and the other kernels, largest first, to the lane with less work so far. The list is the first
lane's jobs in order and then the second lane's reversed, so both ends start with their largest
jobs and meet at the small ones: a tail is then a small job. Should one end reach the other's
helper users, the helper is in numba's cache by then.

Costs are estimates from the code alone (nothing is compiled at that point): numba's compile of a
function grows with its bytecode and its loops, inlined helpers included (:data:`COMPILE_S`,
:data:`BYTE_S`, :data:`LOOP_S`: a least-squares fit to the 43 kernels of the demo and W1-W4,
each compiled alone in a fresh process; 37 of the 43 are within a factor 1.5).

Example (two small kernels that call one costly helper, and a larger kernel):
    >>> import numba
    >>> @numba.njit
    ... def total(x):
    ...     s = 0.0
    ...     for i in range(x.shape[0]):
    ...         for j in range(x.shape[1]):
    ...             s += x[i, j]
    ...     return s
    >>> @numba.njit
    ... def mean(x):
    ...     return total(x) / x.size
    >>> @numba.njit
    ... def centred(x):
    ...     return x - total(x) / x.size
    >>> @numba.njit
    ... def clipped_squares(x):
    ...     s = 0.0
    ...     for i in range(x.shape[0]):
    ...         for j in range(x.shape[1]):
    ...             s += min(x[i, j] * x[i, j], 1.0)
    ...     return s
    >>> front, back = two_lanes([(mean, ()), (clipped_squares, ()), (centred, ())])
    >>> [fn.py_func.__name__ for fn, _ in front], [fn.py_func.__name__ for fn, _ in back]
    (['centred', 'mean'], ['clipped_squares'])
    >>> [fn.py_func.__name__ for fn, _ in two_lane_order([(mean, ()), (clipped_squares, ()), (centred, ())])]
    ['centred', 'mean', 'clipped_squares']
"""

from __future__ import annotations

import dis
from typing import Dict, FrozenSet, List, Sequence, Tuple

#: Seconds numba spends on any function, however small; per byte of its bytecode; per loop.
COMPILE_S = 0.07
BYTE_S = 0.0002
LOOP_S = 0.04
#: A helper at least this costly is compiled in one lane only: its callers go together.
SHARED_HELPER_S = 0.15


def _codes(py_func):
    """A function's code object and those of the functions nested in it."""
    stack = [py_func.__code__]
    while stack:
        code = stack.pop()
        yield code
        stack += [c for c in code.co_consts if hasattr(c, "co_code")]


def _code_seconds(py_func) -> float:
    """Estimated compile seconds of a function's own code (its nested functions' included)."""
    return sum(BYTE_S * len(code.co_code) + LOOP_S * sum(op.opname == "FOR_ITER" for op in dis.get_instructions(code))
               for code in _codes(py_func))


def _callees(py_func) -> list:
    """The numba dispatchers a function's code names (its globals), in name order."""
    from numba.core.dispatcher import Dispatcher

    names = set().union(*(code.co_names for code in _codes(py_func)))
    found = (py_func.__globals__.get(n) for n in sorted(names))
    return [d for d in found if isinstance(d, Dispatcher)]


def _inlined(dispatcher) -> bool:
    return dispatcher.targetoptions.get("inline", "never") == "always"


class _Costs:
    """Estimated compile seconds of each function and the helpers it compiles on its own."""

    def __init__(self):
        self._own: Dict[int, float] = {}
        self._helpers: Dict[int, FrozenSet] = {}

    def own(self, fn) -> float:
        """Seconds for ``fn`` alone: its code and that of the helpers inlined into it."""
        key = id(fn)
        if key not in self._own:
            seconds, stack, seen = COMPILE_S, [fn], {key}
            while stack:
                f = stack.pop()
                seconds += _code_seconds(f.py_func)
                for callee in _callees(f.py_func):
                    if _inlined(callee) and id(callee) not in seen:
                        seen.add(id(callee))
                        stack.append(callee)
            self._own[key] = seconds
        return self._own[key]

    def helpers(self, fn) -> FrozenSet:
        """The helpers a first compile of ``fn`` compiles too: every compiled callee, through inlined
        ones and down the call chain, that has no machine code in this process yet."""
        key = id(fn)
        if key not in self._helpers:
            found, stack, seen = set(), [fn], {key}
            while stack:
                for callee in _callees(stack.pop().py_func):
                    if id(callee) in seen:
                        continue
                    seen.add(id(callee))
                    stack.append(callee)
                    if not _inlined(callee) and not callee.overloads:
                        found.add(callee)
            self._helpers[key] = frozenset(found)
        return self._helpers[key]


def _units(jobs, costs: _Costs) -> List[list]:
    """The jobs in units that one lane takes whole: those that share a helper costing at least
    :data:`SHARED_HELPER_S` (compiled once, by the unit's first job), and every other job alone."""
    parent = list(range(len(jobs)))

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    first_user: Dict[int, int] = {}
    for k, (fn, _) in enumerate(jobs):
        for helper in costs.helpers(fn):
            if costs.own(helper) >= SHARED_HELPER_S:
                other = first_user.setdefault(id(helper), k)
                parent[root(k)] = root(other)
    units: Dict[int, list] = {}
    for k, job in enumerate(jobs):
        units.setdefault(root(k), []).append(job)
    return list(units.values())


def two_lanes(jobs: Sequence[Tuple[object, tuple]]) -> Tuple[list, list]:
    """The jobs (``(dispatcher, signature)``) dealt to two lanes, each in the order it compiles them.

    Jobs sharing a costly helper form a unit (:func:`_units`). Largest unit first, each goes to
    the lane with less work so far, its jobs largest first. Equal estimates keep the given order
    (the result depends only on the jobs).
    """
    costs = _Costs()

    def seconds(unit) -> float:
        helpers = frozenset().union(*(costs.helpers(fn) for fn, _ in unit))
        return sum(costs.own(fn) for fn, _ in unit) + sum(costs.own(h) for h in helpers)

    lanes: List[Tuple[list, list]] = [([0.0], []), ([0.0], [])]  # (seconds so far, jobs)
    for unit in sorted(_units(list(jobs), costs), key=lambda u: -seconds(u)):
        load, lane = min(lanes, key=lambda ln: ln[0][0])
        load[0] += seconds(unit)
        lane += sorted(unit, key=lambda j: -costs.own(j[0]))
    return lanes[0][1], lanes[1][1]


def two_lane_order(jobs: Sequence[Tuple[object, tuple]]) -> List[Tuple[object, tuple]]:
    """One list for two processes working from both ends: :func:`two_lanes`' first lane, then its
    second reversed."""
    front, back = two_lanes(jobs)
    return front + back[::-1]
