"""examples/third-party-op installed into a fresh virtual environment and used in a compiled graph."""

import os
import site
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


def _layered_venv(path: Path) -> Path:
    """A fresh venv isolated from the base interpreter's packages (no --system-site-packages) that sees
    this test environment's site-packages -- the RustyASG parts and hatchling, which scripts/_env.sh
    installs -- through a .pth file. `site.addsitedir` (not a bare path line) so the editable installs'
    own .pth files there are processed too. Returns the venv's python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    py = path / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    outer = "; ".join(f"site.addsitedir({d!r})" for d in site.getsitepackages())
    (Path(purelib) / "_rustyasg_test_environment.pth").write_text(f"import site; {outer}\n")
    return py


def test_plugin_installs_into_fresh_venv_and_runs_with_gradients(tmp_path):
    py = _layered_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    # Nothing of the base interpreter leaks in: its site-packages are not on the fresh venv's path.
    paths = subprocess.run([str(py), "-c", "import sys; print('\\n'.join(sys.path))"], capture_output=True,
                           text=True, env=env, check=True).stdout.splitlines()
    base_site = Path(sys.base_prefix) / "lib"
    assert not [p for p in paths if p.endswith("site-packages") and Path(p).is_relative_to(base_site)], paths
    # The build backend comes from the test environment (no build isolation: no index needed).
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
