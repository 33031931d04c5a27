"""The compiler kit's liveness and buffer planner: lifetimes, arena and pool placement, the timeline."""

from __future__ import annotations

import numpy as np
import pytest

from rustyasg.core.backend_api import MemoryLayout, Step, liveness, plan_memory, planned_peak_bytes
from rustyasg.core.errors import RustyASGError


def _random_steps(seed, n=40):
    """A random program: step k writes value k (and reads earlier ones); a few inputs, some views."""
    rng = np.random.default_rng(seed)
    inputs = [("in", j) for j in range(3)]
    values = list(inputs)
    steps, nbytes = [], {v: int(rng.integers(1, 5000)) for v in inputs}
    views = {}
    for k in range(n):
        reads = tuple(values[int(i)] for i in rng.integers(0, len(values), size=int(rng.integers(1, 4))))
        scratch = (int(rng.integers(1, 3000)),) if rng.random() < 0.2 else ()
        steps.append(Step(reads, (k,), scratch))
        nbytes[k] = int(rng.integers(1, 5000))
        values.append(k)
        if rng.random() < 0.2:  # a free view of value k, read later through its own name
            views[("view", k)] = k
            values.append(("view", k))
    keep = [values[-1], values[len(values) // 2]]
    return steps, nbytes, inputs, keep, views


def _brute_live(plan, steps):
    return [sum(b.size for b in plan.buffers.values() if b.start <= k <= b.end) for k in range(len(steps))]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("layout", [MemoryLayout(64), MemoryLayout(16, True, lambda n: 1 << max(8, (n - 1).bit_length()))],
                         ids=["arena", "pool"])
def test_buffers_alive_together_never_share_memory(seed, layout):
    steps, nbytes, inputs, keep, views = _random_steps(seed)
    root = lambda v: views.get(v, v)  # noqa: E731
    plan = plan_memory(steps, nbytes.__getitem__, layout, root_of=root, inputs=inputs, keep=keep)
    bufs = list(plan.buffers.values())
    for a in bufs:
        assert a.size >= a.nbytes and a.size == layout.size_of(a.nbytes)
        for b in bufs:
            if a.key == b.key or a.end < b.start or b.end < a.start:
                continue
            if layout.pooled:
                assert a.slot != b.slot, (a, b)
            else:
                assert a.slot + a.size <= b.slot or b.slot + b.size <= a.slot, (a, b)
    # Lifetimes: a value lives from its writer to its last reader (through views); kept ones to the end.
    for k, step in enumerate(steps):
        assert plan.buffers[k].start == k
        for v in step.reads:
            assert plan.buffers[root(v)].start <= k <= plan.buffers[root(v)].end
    for v in keep:
        assert plan.buffers[root(v)].end == len(steps) - 1
    assert not any(isinstance(key, tuple) and key[0] == "view" for key in plan.buffers), "views are free"
    assert plan.live_bytes == _brute_live(plan, steps)
    assert plan.peak_bytes == max(plan.live_bytes) == plan.live_bytes[plan.peak_step]
    assert plan.peak_bytes <= plan.total_bytes < plan.naive_bytes  # reuse happened, and never below the peak
    if layout.pooled:
        assert plan.total_bytes == sum(plan.pool_sizes)
        assert all(plan.pool_sizes[b.slot] == b.size for b in bufs)
    else:
        assert all(b.slot % layout.alignment == 0 for b in bufs)
        assert plan.total_bytes == max(b.slot + b.size for b in bufs)


def test_a_chain_reuses_two_buffers_and_scratch_lives_one_step():
    steps = [Step(("x",), ("a",)), Step(("a",), ("b",), scratch=(100,)), Step(("b",), ("c",)), Step(("c",), ("d",))]
    plan = plan_memory(steps, lambda v: 1000, MemoryLayout(64), inputs=["x"], keep=["d"])
    assert [plan.buffers[v].end for v in "xabcd"] == [0, 1, 2, 3, 3]
    assert plan.buffers[("scratch", 1, 0)].start == plan.buffers[("scratch", 1, 0)].end == 1
    assert plan.live_bytes == [2048, 2048 + 128, 2048, 2048]
    assert plan.total_bytes == 2048 + 128
    pool = plan_memory(steps, lambda v: 1000, MemoryLayout(16, pooled=True), inputs=["x"], keep=["d"])
    assert len(pool.pool_sizes) == 3 and pool.buffers["x"].slot == pool.buffers["b"].slot


def test_resident_values_and_in_place_updates_are_not_planned():
    # w is a variable; w_new is written into w's storage (its root is w): neither gets a buffer.
    steps = [Step(("x", "w"), ("h",)), Step(("h", "w"), ("w_new",))]
    root = {"w_new": "w"}.get
    spans = liveness(steps, lambda v: root(v) or v, inputs=["x", "unused"], keep=["h"], resident={"w"})
    assert spans == {"x": (0, 0), "h": (0, 1)}


def test_planned_peak_needs_a_compiled_program():
    with pytest.raises(RustyASGError, match="no memory plan"):
        planned_peak_bytes(object())
