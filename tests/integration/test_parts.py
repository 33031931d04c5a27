"""Core + cpu alone are a working framework; a missing part names its pip command."""

import os
import subprocess
import sys
import textwrap

STRIP = textwrap.dedent("""
    import sys
    # Simulate an environment where only rustyasg-core and rustyasg-cpu are installed.
    sys.path[:] = [p for p in sys.path if not any(s in p for s in ("rustyasg-nn", "rustyasg-data", "rustyasg-wgpu"))]
""")

CORE_CPU_ONLY = STRIP + textwrap.dedent("""
    import numpy as np
    import rustyasg.core as rg
    from rustyasg.core.backends import installed_backends

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    Y = (X @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]
    x, y = rg.input((None, 4), name="x"), rg.input((None, 1), name="y")
    w = rg.variable(np.zeros((4, 1), np.float32), name="w")
    loss = rg.mean((x @ w - y) ** 2)
    (g,) = rg.grad(loss, [w])
    step = rg.function([x, y], loss, updates={w: w - 0.1 * g}, backend="cpu")
    first = float(step(X, Y))
    for _ in range(200):
        last = float(step(X, Y))
    assert last < 1e-4 * first, (first, last)
    for part in ("nn", "data"):
        try:
            __import__(f"rustyasg.{part}")
        except ImportError as exc:
            assert f"pip install rustyasg-{part}" in str(exc), str(exc)
            assert type(exc).__name__ == "MissingPartError"
        else:
            raise AssertionError(f"rustyasg.{part} should be missing here")
    print("CORE-CPU-OK")
""")


def test_core_and_cpu_alone_train_and_missing_parts_name_pip_command():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", CORE_CPU_ONLY], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "CORE-CPU-OK" in run.stdout


def test_missing_wgpu_backend_names_pip_command(monkeypatch):
    from rustyasg.core import backends
    from rustyasg.core.errors import BackendError

    monkeypatch.setattr(backends, "_driver_manager", lambda name: None)
    monkeypatch.setattr(backends, "_instances", {})
    try:
        backends.get_backend("wgpu")
    except BackendError as exc:
        assert "pip install rustyasg-wgpu" in str(exc)
    else:
        raise AssertionError("expected a BackendError")
