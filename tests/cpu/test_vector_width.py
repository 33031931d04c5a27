"""``RUSTYASG_CPU_VECTOR_WIDTH``: 512-bit vectorization on AVX-512 processors, same results.

Each case runs in a fresh process: numba fixes its target machine once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, numpy as np
import rustyasg.core as rg
from numba import config
from numba.core.codegen import get_host_cpu_features
from rustyasg.cpu import jit
rng = np.random.default_rng(0)
xv = (rng.standard_normal((37, 300)) * 4).astype(np.float32)
xv[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
x = rg.input(xv.shape, "float32", name="x")
f = rg.function([x], [rg.gelu_tanh(x), rg.softmax(x, axis=-1), rg.sigmoid(x)], backend="cpu")
outs = [o.tolist() for o in f(xv)]
print(json.dumps({"wide": jit.WIDE_VECTORS, "features": config.CPU_FEATURES or "",
                  "avx512": "+avx512f" in get_host_cpu_features().split(","), "outs": outs}))
"""


def _probe(tmp_path, width):
    env = dict(os.environ, RUSTYASG_CACHE_DIR=str(tmp_path / f"r{width}"), NUMBA_CACHE_DIR=str(tmp_path / f"n{width}"))
    env.pop("NUMBA_CPU_FEATURES", None)
    env.pop("RUSTYASG_CPU_VECTOR_WIDTH", None)
    if width:
        env["RUSTYASG_CPU_VECTOR_WIDTH"] = width
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_wide_vectors_are_opt_in_and_give_the_same_results(tmp_path):
    import numpy as np

    default, wide = _probe(tmp_path, ""), _probe(tmp_path, "512")
    assert default["wide"] is False and "prefer-256-bit" not in default["features"]
    assert wide["wide"] is wide["avx512"]  # only where the processor has AVX-512
    assert wide["features"].endswith(",-prefer-256-bit") == wide["avx512"]
    for a, b in zip(default["outs"], wide["outs"]):
        np.testing.assert_allclose(np.array(a, np.float32), np.array(b, np.float32), rtol=2e-6, atol=1e-7)


def test_a_bad_vector_width_is_a_clear_error(tmp_path):
    env = dict(os.environ, RUSTYASG_CPU_VECTOR_WIDTH="1024")
    done = subprocess.run([sys.executable, "-c", "import rustyasg.cpu.jit"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "RUSTYASG_CPU_VECTOR_WIDTH must be 256 or 512, got '1024'" in done.stderr
