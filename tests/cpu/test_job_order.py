"""The order of a cold start's compile jobs for two processes (rustyasg.cpu.job_order)."""

import json
import os
import random
import subprocess
import sys

import numba
import numpy as np
import pytest

from rustyasg.cpu.job_order import SHARED_HELPER_S, _Costs, _units, two_lane_order, two_lanes


def _random_jobs(rng: random.Random):
    """Numba functions written at random: helpers with 0-3 loops, kernels calling some of them."""
    space = {"np": np}
    helpers = []
    for h in range(rng.randint(0, 4)):
        loops = rng.randint(0, 3)
        body = "    s = x\n" + "".join(f"    for i{k} in range({k + 2}):\n        s = s * 0.5 + i{k}\n"
                                       for k in range(loops))
        exec(f"def helper{h}(x):\n{body}    return s\n", space)
        space[f"helper{h}"] = numba.njit(space[f"helper{h}"])
        helpers.append(f"helper{h}")
    jobs = []
    for k in range(rng.randint(1, 20)):
        calls = rng.sample(helpers, rng.randint(0, len(helpers)))
        terms = " + ".join([f"{c}(x)" for c in calls] + [f"x * {j}.5" for j in range(rng.randint(1, 12))])
        loops = "".join(f"    for i{j} in range(3):\n        x = x + i{j}\n" for j in range(rng.randint(0, 2)))
        exec(f"def kernel{k}(x):\n{loops}    return {terms}\n", space)
        fn = numba.njit(space[f"kernel{k}"])
        jobs += [(fn, (numba.float64,))] + ([(fn, (numba.float32,))] if rng.random() < 0.2 else [])
    return jobs


@pytest.mark.parametrize("seed", range(40))
def test_random_jobs_are_dealt_whole_balanced_and_in_a_fixed_order(seed):
    rng = random.Random(seed)
    jobs = _random_jobs(rng)
    front, back = two_lanes(jobs)
    order = two_lane_order(jobs)
    assert order == front + back[::-1]
    assert sorted(map(id, order)) == sorted(map(id, jobs))          # every job once, none invented
    assert two_lane_order(list(jobs)) == order                       # depends on the jobs alone

    costs = _Costs()
    lane_of = {id(job): side for side, lane in enumerate((front, back)) for job in lane}
    seconds, units = [], _units(jobs, costs)
    for unit in units:
        assert len({lane_of[id(job)] for job in unit}) == 1          # callers of a costly helper together
        helpers = frozenset().union(*(costs.helpers(fn) for fn, _ in unit))
        seconds.append(sum(costs.own(fn) for fn, _ in unit) + sum(costs.own(h) for h in helpers))
        shared = {h for h in helpers if costs.own(h) >= SHARED_HELPER_S}
        for other in units:
            if other is not unit:
                assert not shared & frozenset().union(*(costs.helpers(fn) for fn, _ in other))

    def load(lane):
        helpers = frozenset().union(*(costs.helpers(fn) for fn, _ in lane)) if lane else frozenset()
        costly = {h for h in helpers if costs.own(h) >= SHARED_HELPER_S}
        return sum(costs.own(fn) for fn, _ in lane) + sum(costs.own(h) for h in costly)

    # the largest-first rule: the lanes' work differs by at most one unit (cheap shared helpers,
    # compiled in both, aside)
    assert abs(load(front) - load(back)) <= max(seconds) + 1e-9


def test_the_costs_grow_with_code_and_loops():
    space = {}
    exec("def short(x):\n    return x + 1.0\n", space)
    exec("def looped(x):\n    s = 0.0\n    for i in range(x.shape[0]):\n        s += x[i]\n    return s\n", space)
    exec("def long(x):\n    return " + " + ".join(f"x * {k}.0" for k in range(60)) + "\n", space)
    costs = _Costs()
    short, looped, long = (numba.njit(space[n]) for n in ("short", "looped", "long"))
    assert costs.own(short) < costs.own(looped) and costs.own(short) < costs.own(long)


ROW_KERNELS = r"""
import json, numpy as np, rustyasg.core as rg
from rustyasg.cpu import precompile
from rustyasg.cpu.job_order import two_lanes
x = rg.input((256, 96), name="x")
w = rg.input((96, 96), name="w")
h = rg.tanh(x @ w) * 0.5 + rg.relu(x)
loss = (rg.softmax(h, axis=-1) * x).sum() + rg.log_softmax(h * 2.0, axis=-1).mean()
f = rg.function([x, w], [loss] + list(rg.grad(loss, [w])), backend="cpu")
rng = np.random.default_rng(0)
exe = f.compile(rng.standard_normal((256, 96)).astype(np.float32), rng.standard_normal((96, 96)).astype(np.float32))
jobs = precompile.pending(exe._steps)  # RUSTYASG_CPU_COMPILE_WORKERS=0: nothing compiled yet
print(json.dumps([[fn.py_func.__module__.rsplit(".", 1)[-1] for fn, _ in lane] for lane in two_lanes(jobs)]))
"""


def test_the_row_kernels_that_call_exp32_share_one_lane(tmp_path):
    """The softmax and log-softmax row kernels call one compiled helper (``exp32``, ~0.2 s of numba),
    so they go to one process, which compiles it once."""
    env = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path / "r"), NUMBA_CACHE_DIR=str(tmp_path / "n"),
               RUSTYASG_CPU_COMPILE_WORKERS="0")
    res = subprocess.run([sys.executable, "-c", ROW_KERNELS], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    front, back = json.loads(res.stdout.strip().splitlines()[-1])
    rows = {m for m in front + back if m.startswith(("softmax_rows", "log_softmax_rows"))}
    assert len(rows) == 2, (front, back)
    assert rows <= set(front) or rows <= set(back), (front, back)
    assert len(front) + len(back) >= 4
