"""examples/third-party-op installed into a fresh virtual environment and used in a compiled graph."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import numpy as np
    import rustyasg.core as rg
    from rustyasg.core.plugins import plugin_names
    from rustyasg.core.testing import check_op
    from rustyasg_softsign import softsign

    assert "softsign" in plugin_names(), plugin_names()
    rng = np.random.default_rng(0)
    xv = rng.uniform(-3, 3, size=(8, 5)).astype(np.float32)
    x = rg.input((None, 5), "float32", name="x")
    w = rg.variable(rng.standard_normal((5, 5)).astype(np.float32), name="w")
    loss = rg.sum(softsign(x @ w) * 2.0 + 1.0)
    (gw,) = rg.grad(loss, [w])
    step = rg.function([x], [loss, gw], backend="cpu")
    got_loss, got_gw = step(xv)
    z = xv.astype(np.float64) @ w.value().astype(np.float64)
    assert np.allclose(got_loss, np.sum(2 * z / (1 + np.abs(z)) + 1), rtol=1e-4), got_loss
    assert np.allclose(got_gw, xv.T.astype(np.float64) @ (2 / (1 + np.abs(z)) ** 2), rtol=1e-3, atol=1e-4)
    check_op("softsign", backend="cpu", dtype="float32")
    check_op("softsign", backend="reference", dtype="float64")
    print("THIRD-PARTY-OK")
""")


def test_plugin_installs_into_fresh_venv_and_runs_with_gradients(tmp_path):
    venv = tmp_path / "venv"
    # The venv sees the parts installed in the test environment; only the plugin is new in it.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    str(ROOT / "examples" / "third-party-op")], check=True, env=env)
    run = subprocess.run([str(py), "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "THIRD-PARTY-OK" in run.stdout
    cli = subprocess.run([str(py), "-m", "rustyasg.core.cli", "plugins"], capture_output=True, text=True, env=env)
    line = next(l for l in cli.stdout.splitlines() if l.strip().startswith("softsign "))
    assert "cpu" in line and "rustyasg-softsign" in line


def test_plugin_is_absent_from_the_outer_environment():
    import rustyasg.core as rg

    assert "softsign" not in rg.OPS
