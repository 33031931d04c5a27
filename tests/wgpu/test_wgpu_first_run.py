"""A fresh process on a headless machine: no XDG_RUNTIME_DIR noise from Mesa, and a software
adapter is named once, with what to expect of it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from rustyasg.wgpu.device import get_context

SCRIPT = textwrap.dedent("""
    import numpy as np, rustyasg.core as rg
    x = rg.input((3,), name="x")
    for scale in (2.0, 3.0):
        f = rg.function([x], x * scale, backend="wgpu")
        print(f(np.ones(3, np.float32)).tolist())
""")


def test_a_fresh_process_is_quiet_and_names_a_software_adapter_once():
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "PYTHONWARNINGS")}
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[2.0,", "2.0,", "2.0]", "[3.0,", "3.0,", "3.0]"]
    assert "XDG_RUNTIME_DIR" not in run.stderr, run.stderr
    notes = [line for line in run.stderr.splitlines() if "SoftwareAdapterWarning" in line]
    if get_context().is_software:
        assert len(notes) == 1, run.stderr
        assert get_context().name in notes[0] and "software: expect CPU speeds" in notes[0]
    else:
        assert notes == [], run.stderr
