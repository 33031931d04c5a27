"""In-place and simultaneous variable updates, planned once for every backend.

A compiled step's updates are simultaneous: every reader, and every other update, sees
the values from before the step. A variable's new value may still be written straight
into the variable's storage while the step runs ("in place"), saving a buffer and a copy,
when that cannot be observed:

- the value is computed by a step of the program into storage of its own (not a view,
  not an input or constant, not already written into another variable), and the backend
  can write that step's result into a variable (``writable``);
- nothing reads the variable's old value after that step, and the step itself reads it
  only element for element at the index it writes (``reads_in_place``);
- the old value is not a result of the call, and no other update's value is the old value.

Every other update is *deferred*: copied in after the step. A deferred value whose storage
is an updated variable is first copied aside (a *snapshot*), so that no copy reads a
variable another copy already overwrote (``a, b = b, a``).

Example:
    >>> plan = plan_updates([("w", "w_new"), ("m", "m_new")], step_of={"w_new": 3, "m_new": 2}.get,
    ...                     root_of=lambda v: v, last_read={"w": 3, "m": 3}.get, outputs=(),
    ...                     reads_in_place=lambda step, var: True)
    >>> plan.in_place, plan.deferred
    ({'w_new': 'w'}, [('m', 'm_new')])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple


@dataclass
class UpdatePlan:
    """``in_place``: value -> variable it is written into while the step runs; ``deferred``:
    ``(variable, value)`` copied in after the step, in order; ``snapshots``: values (storage of
    updated variables) to copy aside before those copies."""

    in_place: Dict[Hashable, Hashable] = field(default_factory=dict)
    deferred: List[Tuple[Hashable, Hashable]] = field(default_factory=list)
    snapshots: List[Hashable] = field(default_factory=list)


def plan_updates(updates: Sequence[Tuple[Hashable, Hashable]], *, step_of: Callable[[Any], Optional[int]],
                 root_of: Callable[[Any], Hashable], last_read: Callable[[Any], Optional[int]],
                 outputs: Iterable[Hashable], reads_in_place: Callable[[int, Any], bool],
                 writable: Callable[[int], bool] = lambda step: True,
                 unchanged: Optional[Callable[[Any, Any], bool]] = None) -> UpdatePlan:
    """Decide, for each ``(variable, value)`` update, in place or deferred (see the module docstring).

    ``step_of(value)``: the step computing it (``None`` for inputs, constants, variables);
    ``root_of(value)``: whose storage holds it (itself unless it is a view or an alias);
    ``last_read(variable)``: the last step reading the old value (``None`` if none);
    ``outputs``: storage roots whose values are results; ``reads_in_place(step, variable)``:
    that step reads the variable only element for element at the index it writes;
    ``unchanged(variable, value)``: the value is the variable's own (nothing to do; default:
    ``value`` is the variable or stored in it).
    """
    unchanged = unchanged or (lambda var, value: root_of(value) == var)
    outputs = set(outputs)
    read_by_updates = {root_of(value) for _, value in updates}
    updated = {var for var, _ in updates}
    plan = UpdatePlan()
    for var, value in updates:
        if unchanged(var, value):
            continue
        step = step_of(value)
        last = last_read(var)
        ok = (step is not None and root_of(value) == value and value not in plan.in_place and writable(step)
              and var not in outputs and var not in read_by_updates
              and (last is None or last < step or (last == step and reads_in_place(step, var))))
        if ok:
            plan.in_place[value] = var
        else:
            plan.deferred.append((var, value))
    for _, value in plan.deferred:
        root = root_of(value)
        if root in updated and root not in plan.snapshots:
            plan.snapshots.append(root)
    return plan
