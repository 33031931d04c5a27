"""The fusion planner's binding budget (``plan_units(max_bindings=...)``) counts what a kernel binds.

A fused kernel binds a storage buffer for each value it reads from outside, once however many
members read it, and for each member whose value is needed outside the group (its scalars go in a
uniform block, which this limit does not count). The planner keeps every
group of more than one instruction within ``max_bindings`` by that count, so small groups sharing
their operands (an optimizer's per-parameter scalars, say) can share one kernel on adapters with
few storage bindings.
"""

from __future__ import annotations

import random

import pytest

from rustyasg.core.compile.fusion import ELEMENTWISE, REDUCTION, plan_units


def bound(unit) -> int:
    """Storage buffers the unit's kernel binds, from the plan's own reads and writes."""
    return len(set(unit.reads)) + len(unit.writes)


def test_a_chain_reading_one_shared_operand_fuses_within_three_bindings():
    # x -> y1 = f(x, w) -> y2 = f(y1, w) -> ... -> y12: reads {x, w}, writes {y12}.
    inputs = {1: [0, 100]}
    inputs.update({k: [k - 1, 100] for k in range(2, 13)})
    plan = plan_units(list(range(1, 13)), inputs.get, lambda i: ELEMENTWISE, lambda i: (8,), roots=[12],
                      max_bindings=3)
    assert [(u.kind, len(u.members)) for u in plan.units] == [("fused", 12)]
    assert bound(plan.units[0]) == 3


def test_a_value_read_outside_the_group_takes_a_binding():
    # As above, but y3 is also read by an instruction of its own kernel (role None): y3 must be
    # written, and reads {x, w} + writes {y3, y12} = 4 does not fit three bindings.
    inputs = {1: [0, 100]}
    inputs.update({k: [k - 1, 100] for k in range(2, 13)})
    inputs[13] = [3]
    role = {13: None}
    plan = plan_units(list(range(1, 14)), inputs.get, lambda i: role.get(i, ELEMENTWISE), lambda i: (8,),
                      roots=[12, 13], max_bindings=3)
    fused = [u for u in plan.units if u.kind == "fused"]
    assert len(fused) >= 2
    assert all(bound(u) <= 3 for u in fused if len(u.members) > 1)
    plan4 = plan_units(list(range(1, 14)), inputs.get, lambda i: role.get(i, ELEMENTWISE), lambda i: (8,),
                       roots=[12, 13], max_bindings=4)
    assert sorted(len(u.members) for u in plan4.units if u.kind == "fused") == [12]


def test_independent_scalar_updates_sharing_their_operands_share_kernels():
    # Four parameters' bias corrections: t_k = s_k + 1, c_k = t_k * lr (lr shared); t_k and c_k
    # are results. Each pair binds s_k, t_k, c_k; lr once per kernel.
    order, inputs, roots = [], {}, []
    for k in range(4):
        t, c = 10 * k + 1, 10 * k + 2
        inputs[t] = [1000 + k]
        inputs[c] = [t, 999]
        order += [t, c]
        roots += [t, c]
    plan = plan_units(order, inputs.get, lambda i: ELEMENTWISE, lambda i: (), roots=roots, max_bindings=8,
                      recent=4)  # independent work may join a recent group (the wgpu backend passes 4)
    # 1 (lr) + 3 per parameter: two parameters fit eight bindings (7), three do not (10).
    assert sorted(len(u.members) for u in plan.units) == [4, 4]
    assert all(bound(u) == 7 for u in plan.units)


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_keep_every_fused_kernel_within_its_bindings_and_in_dependency_order(seed):
    rng = random.Random(seed)
    n = rng.randint(5, 60)
    leaves = list(range(1000, 1000 + rng.randint(1, 6)))  # inputs and variables: made outside
    shapes = [(), (4,), (4, 3)]
    order, inputs, role, shape = [], {}, {}, {}
    for i in range(1, n + 1):
        made = leaves + order
        inputs[i] = rng.sample(made, k=min(len(made), rng.randint(1, 3)))
        role[i] = rng.choices([ELEMENTWISE, REDUCTION, None], weights=[8, 1, 1])[0]
        shape[i] = rng.choice(shapes)
        order.append(i)
    roots = rng.sample(order, k=rng.randint(1, min(4, n)))
    limit = rng.randint(3, 10)
    plan = plan_units(order, inputs.get, role.get, shape.get, roots=roots, max_bindings=limit, recent=rng.choice([0, 4]))
    placed = [m for u in plan.units for m in u.members]
    assert sorted(placed) == order  # every instruction once
    for u in plan.units:
        if u.kind == "fused" and len(u.members) > 1:
            assert bound(u) <= limit, (u, limit)
    where = {m: k for k, u in enumerate(plan.units) for m in u.members}
    for k, u in enumerate(plan.units):  # a unit runs after every unit it reads from
        for v in u.reads:
            assert where.get(v, -1) < k
