"""Kernels are compiled once per argument type: constants must not make a type of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import json, numpy as np, rustyasg.core as rg
from rustyasg.cpu.kernels.norm import layer_norm_rows
rng = np.random.default_rng(0)
gc, bc = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
x = rg.input((4, 6), name="x")
g, b = rg.variable(gc * 2, name="g"), rg.variable(bc * 2, name="b")
# one layer_norm with constant (read-only) parameters, one with variables (writable)
y = rg.layer_norm(x, rg.constant(gc), rg.constant(bc)) + rg.layer_norm(x, g, b)
f = rg.function([x], y, backend="cpu")
xv = rng.standard_normal((4, 6)).astype(np.float32)
out = f(xv)
xh = (xv - xv.mean(-1, keepdims=True)) / np.sqrt(xv.var(-1, keepdims=True) + 1e-5)
ref = xh * gc + bc + xh * gc * 2 + bc * 2
print(json.dumps({"signatures": [str(s) for s in layer_norm_rows.signatures],
                  "err": float(np.abs(out - ref).max())}))
"""


def test_a_constant_operand_reuses_the_kernel_compiled_for_variables(tmp_path):
    # A fresh process with empty caches, so the signatures seen are this program's alone.
    env = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path / "r"), NUMBA_CACHE_DIR=str(tmp_path / "n"))
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["err"] < 1e-5
    assert len(got["signatures"]) == 1, got["signatures"]
    assert "True" not in got["signatures"][0].split("aligned")[0], got["signatures"]  # no read-only array type
