"""Kernels compiled ahead of the first call: in this process, or by a worker through numba's cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, os, sys, numpy as np, rustyasg.core as rg
from rustyasg.cpu import precompile
# 130 x 70: above cpu's SMALL_ALONE, so the softmax running alone is a compiled kernel too
x = rg.input((130, 70), name="x")
b = rg.input((70,), name="b")
y = rg.softmax(rg.tanh(x * 1.5 + b), axis=-1).sum(axis=0) + rg.layer_norm(x, rg.constant(np.ones(70, np.float32)))
f = rg.function([x, b], y, backend="cpu")
rng = np.random.default_rng(0)
xv, bv = rng.standard_normal((130, 70)).astype(np.float32), rng.standard_normal(70).astype(np.float32)
mode = sys.argv[1]
exe = f.compile(xv, bv)   # with RUSTYASG_CPU_COMPILE_WORKERS=0 nothing is compiled yet
jobs = precompile.pending(exe._steps)
if mode == "worker":  # the worker, started here, takes every job
    precompile._start_worker(os.environ["CLAIMS"], jobs).wait(timeout=300)
out = f(xv, bv)
t = np.tanh(xv * 1.5 + bv); e = np.exp(t - t.max(-1, keepdims=True))
ln = (xv - xv.mean(-1, keepdims=True)) / np.sqrt(xv.var(-1, keepdims=True) + 1e-5)
ref = (e / e.sum(-1, keepdims=True)).sum(0) + ln
stats = [(fn.py_func.__name__, sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values()))
         for fn, _ in jobs]
print(json.dumps({"err": float(np.abs(out - ref).max()), "jobs": len(jobs), "stats": stats,
                  "claimed": sorted(os.listdir(os.environ["CLAIMS"])) if mode == "worker" else []}))
"""


def _run(tmp_path, mode, workers="0"):
    claims = tmp_path / "claims"
    claims.mkdir(exist_ok=True)
    full = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path / "r"), NUMBA_CACHE_DIR=str(tmp_path / "n"),
                CLAIMS=str(claims), RUSTYASG_CPU_COMPILE_WORKERS=workers, RUSTYASG_CPU_COMPILE_MIN="1")
    res = subprocess.run([sys.executable, "-c", CHILD, mode], env=full, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two cold processes compiling the same kernels
def test_the_workers_kernels_reach_the_first_call_through_the_cache(tmp_path):
    got = _run(tmp_path, "worker")
    assert got["err"] < 1e-5
    assert got["jobs"] >= 3
    assert len(got["claimed"]) == got["jobs"] + 1  # every job, and the job list
    # The first call loaded every kernel the worker compiled: cache hits, not one compilation here.
    for name, hits, misses in got["stats"]:
        assert (hits, misses) == (1, 0), (name, hits, misses)


def test_without_a_worker_each_kernel_compiles_on_its_first_call(tmp_path):
    got = _run(tmp_path, "local")
    assert got["err"] < 1e-5
    assert got["jobs"] >= 3
    for name, hits, misses in got["stats"]:
        assert (hits, misses) == (0, 1), (name, hits, misses)


@pytest.mark.slow  # a cold process and its worker
def test_with_a_worker_every_kernel_is_compiled_when_the_executable_is_built(tmp_path):
    got = _run(tmp_path, "local", workers="1")
    assert got["err"] < 1e-5
    assert got["jobs"] == 0  # this process and the worker took them all before the first call


WARM_CHILD = r"""
import json, os, sys, tempfile, numpy as np, rustyasg.core as rg
from rustyasg.cpu import precompile
precompile.FORK = False  # the warm worker of systems without fork, here too
from rustyasg.core.backends import get_backend
get_backend("cpu")  # starts the warm worker (RUSTYASG_CPU_COMPILE_WORKERS=1)
worker = precompile._warm
os.environ["RUSTYASG_CPU_COMPILE_WORKERS"] = "0"  # building an executable compiles nothing here now
rng = np.random.default_rng(0)
x = rg.input((5, 7), name="x")
results = []
for expr in (lambda t: rg.softmax(rg.tanh(t * 1.5), axis=-1).sum(axis=0),
             lambda t: rg.sigmoid(t) * rg.exp(t).mean(axis=1, keepdims=True)):
    f = rg.function([x], expr(x), backend="cpu")
    xv = rng.standard_normal((5, 7)).astype(np.float32)
    exe = f.compile(xv)
    jobs = precompile.pending(exe._steps)
    folder = tempfile.mkdtemp()
    assert precompile._hand_to_warm_worker(folder, jobs) is worker
    precompile._wait_done(folder)        # the worker took every job: nothing claimed them here
    out = f(xv)
    ref = rg.function([x], expr(x), backend="reference")(xv)
    stats = [(sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values())) for fn, _ in jobs]
    results.append({"err": float(np.abs(out - ref).max()), "jobs": len(jobs), "stats": stats,
                    "claimed": sorted(f for f in os.listdir(folder) if f.isdigit())})
alive = worker.poll() is None
precompile.stop_warm_worker()
print(json.dumps({"results": results, "alive": alive, "exit": worker.returncode}))
"""


@pytest.mark.slow  # a cold process and its warm worker
def test_a_warm_worker_started_with_the_backend_serves_every_executable(tmp_path):
    env = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path / "r"), NUMBA_CACHE_DIR=str(tmp_path / "n"),
               RUSTYASG_CPU_COMPILE_WORKERS="1")
    res = subprocess.run([sys.executable, "-c", WARM_CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["alive"] and got["exit"] == 0  # one worker served both, and left when its pipe closed
    for r in got["results"]:
        assert r["err"] < 1e-5
        assert r["jobs"] >= 1 and len(r["claimed"]) == r["jobs"]
        assert all(s == [1, 0] for s in r["stats"]), r["stats"]  # loaded from the worker's cache entries


@pytest.mark.parametrize("value,cpus,expected", [("", 2, 1), ("", 1, 0), ("0", 2, 0), ("1", 1, 1), ("auto", 2, 1),
                                                 ("auto", 1, 0), ("Auto", 4, 1), ("two", 2, 0)])
def test_workers_setting(monkeypatch, value, cpus, expected):
    from rustyasg.cpu import precompile

    monkeypatch.setenv("RUSTYASG_CPU_COMPILE_WORKERS", value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert precompile.workers() == expected


FORK_CHILD = r"""
import json, os, numpy as np, rustyasg.core as rg
from rustyasg.cpu import precompile
x = rg.input((130, 70), name="x")  # above cpu's SMALL_ALONE: the softmax alone is a compiled kernel
expr = lambda t: rg.softmax(rg.tanh(t * 1.5), axis=-1).sum(axis=0) + rg.sigmoid(t).mean(axis=0)
f = rg.function([x], expr(x), backend="cpu")
xv = np.random.default_rng(0).standard_normal((130, 70)).astype(np.float32)
exe = f.compile(xv)                 # RUSTYASG_CPU_COMPILE_WORKERS=0: nothing compiled yet
jobs = precompile.pending(exe._steps)
os.environ["RUSTYASG_CPU_COMPILE_WORKERS"] = "1"
taken = precompile.precompile(exe._steps)
left = precompile.pending(exe._steps)
hits = sum(sum(fn.stats.cache_hits.values()) for fn, _ in jobs)
err = float(np.abs(f(xv) - rg.function([x], expr(x), backend="reference")(xv)).max())
print(json.dumps({"jobs": len(jobs), "taken": taken, "left": len(left), "hits": hits, "err": err}))
"""


def test_a_forked_worker_takes_jobs_from_the_back_and_its_kernels_are_loaded_at_once(tmp_path):
    env = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path / "r"), NUMBA_CACHE_DIR=str(tmp_path / "n"),
               RUSTYASG_CPU_COMPILE_WORKERS="0", RUSTYASG_CPU_COMPILE_MIN="1")
    res = subprocess.run([sys.executable, "-c", FORK_CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["err"] < 1e-5
    assert got["jobs"] >= 3 and 1 <= got["taken"] < got["jobs"]  # both processes compiled
    assert got["left"] == 0 and got["hits"] == got["taken"]  # the child's kernels: loaded from the cache


def test_a_kernel_missing_from_numbas_cache_is_seen_before_compiling_it():
    import uuid

    from rustyasg.cpu import cache, precompile

    source = ("from rustyasg.cpu.jit import kernel_jit\n\n\n@kernel_jit\ndef kernel(x):\n"
              f"    return x + 1  # {uuid.uuid4().hex}: a kernel no process has compiled\n")
    fn = cache.load_source(source, prefix="probe").kernel
    assert precompile._not_cached(fn)  # the worker may start at once
    assert fn(1.0) == 2.0
    assert not precompile._not_cached(fn)  # now in the cache: wait for a real miss
