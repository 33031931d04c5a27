"""The on-disk kernel cache: its location, content addressing, and reuse by a second process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rustyasg.cpu import cache

CHILD = r"""
import json, numpy as np, rustyasg.core as rg
from rustyasg.cpu import cache
x = rg.input((5, 3), "float64", name="x")
b = rg.input((3,), "float64", name="b")
f = rg.function([x, b], rg.softplus(x * 1.25 + b, beta=0.75) - rg.cos(b), backend="cpu")
xv = np.linspace(-2, 2, 15).reshape(5, 3)
out = f(xv, np.arange(3.0))
(kernel,) = f.compile(xv, np.arange(3.0)).generated_kernels()
print(json.dumps({"hits": sum(kernel.stats.cache_hits.values()), "misses": sum(kernel.stats.cache_misses.values()),
                  "out": out.tolist(), "dir": str(cache.kernel_dir())}))
"""


def _child(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["RUSTYASG_CACHE_DIR"] = str(tmp_path / "rcache")
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_generated_kernel_from_the_cache(tmp_path):
    first = _child(tmp_path)
    kernel_dir = Path(first["dir"])
    assert kernel_dir.is_relative_to(tmp_path / "rcache")
    sources = sorted(kernel_dir.glob("fused_*.py"))
    compiled = sorted(kernel_dir.glob("__pycache__/fused_*.nbi"))
    assert first["misses"] == 1 and first["hits"] == 0
    assert len(sources) == 1 and len(compiled) == 1
    second = _child(tmp_path)
    assert second["hits"] == 1 and second["misses"] == 0
    assert sorted(kernel_dir.glob("fused_*.py")) == sources  # nothing regenerated
    assert second["out"] == first["out"]


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RUSTYASG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "rustyasg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "rustyasg"
    monkeypatch.setenv("RUSTYASG_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache.cache_root() == tmp_path / "explicit"
    assert cache.kernel_dir().is_dir()


def test_sources_are_content_addressed_and_never_rewritten(monkeypatch, tmp_path):
    monkeypatch.setenv("RUSTYASG_CACHE_DIR", str(tmp_path))
    src = "VALUE = 41 + 1\n"
    mod = cache.load_source(src, prefix="unit")
    path = Path(mod.__file__)
    assert path.parent == cache.kernel_dir() and path.read_text() == src and mod.VALUE == 42
    stamp = path.stat().st_mtime_ns
    assert cache.load_source(src, prefix="unit") is mod
    cache.clear_memory()
    again = cache.load_source(src, prefix="unit")
    assert again is not mod and again.VALUE == 42 and path.stat().st_mtime_ns == stamp
    other = cache.load_source("VALUE = 7\n", prefix="unit")
    assert Path(other.__file__) != path


@pytest.fixture(autouse=True)
def _forget_modules():
    yield
    cache.clear_memory()


def test_an_unwritable_cache_root_falls_back_to_the_temp_dir(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RUSTYASG_CACHE_DIR", str(blocker / "sub"))
    with pytest.warns(RuntimeWarning, match="not writable"):
        path = cache.kernel_dir()
    assert path.is_dir() and not path.is_relative_to(blocker)
    mod = cache.load_source("VALUE = 3\n", prefix="fallback")
    assert mod.VALUE == 3


def test_every_module_generated_kernels_import_is_in_the_helpers_stamp():
    # numba caches a generated kernel by its own file: a helper module missing from the stamp
    # would leave kernels compiled against its old code after an edit
    import re
    from pathlib import Path

    from rustyasg.cpu import codegen
    from rustyasg.cpu.kernels import rowwise, scan

    sources = [m.group(1) for m in re.finditer(r'"(from rustyasg\.cpu\.[^"]*)"', Path(codegen.__file__).read_text())]
    sources += [rowwise._HEADER, scan._TEMPLATE]
    imported = {m for text in sources for m in re.findall(r"from rustyasg\.cpu\.([\w.]+) import", text)}
    files = {m.replace(".", "/") + ".py" for m in imported}
    assert "kernels/bfloat16.py" in files and files <= set(codegen.HELPER_FILES), files - set(codegen.HELPER_FILES)
