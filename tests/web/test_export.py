"""rg.web.export without a browser: the files, the schedule, WebGPU's limits, errors.

The exported folder is replayed on wgpu-native by :class:`rustyasg.web.NativeRunner`, which
reads only the files, and compared with the cpu backend.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.web import NativeRunner, WebExportError
from rustyasg.web.capture import WEB_LIMITS

from .conftest import serve
from .models import mnist_cnn

JS_DIR = Path(__file__).resolve().parents[2] / "rustyasg-web" / "js"


def test_module_export_files_and_weights(tmp_path):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    x = rng.normal(size=(4, 6)).astype(np.float32)
    result = rg.web.export(model, x, tmp_path, metadata={"labels": ["a", "b"]})
    assert result.inputs == ["x"] and result.outputs == ["output"]
    doc = json.loads((tmp_path / "model.json").read_text())
    assert doc["metadata"] == {"labels": ["a", "b"]}
    assert sorted(p.name for p in tmp_path.glob("*.js")) == ["rustyasg.js", "safetensors.js", "tensors.js"]
    weights = load_file(str(tmp_path / "weights.safetensors"))
    # Weights carry the module's state_dict names and values.
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(weights[name], value)
    for k in doc["kernels"]:
        assert (tmp_path / k["file"]).read_text().strip()
    roles = {b["role"] for b in doc["buffers"]}
    assert {"input", "weight", "uniform", "temporary"} <= roles
    got = NativeRunner(tmp_path).run({"x": x})["output"]
    xi = rg.input(x.shape, "float32", name="x")
    np.testing.assert_allclose(got, rg.function([xi], model(xi), backend="cpu")(x), atol=1e-5)


def test_kernels_fit_webgpu_default_limits(tmp_path):
    """Generated for a browser: <= 8 storage buffers per kernel, <= 256 invocations, no optional features."""
    rng = np.random.default_rng(1)
    # Many inputs into one elementwise chain: the fusion must split at the web's 8-buffer limit.
    xs = [rg.input((3, 4), "float32", name=f"x{i}") for i in range(11)]
    total = xs[0]
    for t in xs[1:]:
        total = total * 0.5 + rg.exp(t)
    fn = rg.function(xs, total, backend="cpu")
    feeds = [rng.normal(size=(3, 4)).astype(np.float32) for _ in xs]
    rg.web.export(fn, feeds, tmp_path)
    doc = json.loads((tmp_path / "model.json").read_text())
    uniform = {i for i, b in enumerate(doc["buffers"]) if b["role"] == "uniform"}
    for d in doc["dispatches"]:
        storage = [b for b in d["bindings"] if (b["buffer"] if isinstance(b, dict) else b) not in uniform]
        assert len(storage) <= WEB_LIMITS["max-storage-buffers-per-shader-stage"]
        assert all(1 <= w <= 65535 for w in d["workgroups"])
    for k in doc["kernels"]:
        code = (tmp_path / k["file"]).read_text()
        assert "enable f16" not in code and "subgroup" not in code
        for size in re.findall(r"@workgroup_size\(([^)]*)\)", code):
            dims = [int(s.strip().rstrip("u")) for s in size.split(",") if s.strip()]
            assert int(np.prod(dims)) <= 256
    out = NativeRunner(tmp_path).run({f"x{i}": f for i, f in enumerate(feeds)})["output"]
    np.testing.assert_allclose(out, fn(*feeds), rtol=1e-5, atol=1e-5)


def test_convolutions_are_exported_with_written_columns_not_gathered_ones(tmp_path, monkeypatch):
    """The browser's GPU is unknown: convolutions take im2col + GEMM, whatever the exporting machine's
    own lowering (Chrome's software WebGPU took minutes on the gathered kernels of a small CNN)."""
    import rustyasg.web.capture as capture

    model = mnist_cnn()
    model.eval()
    x = np.random.default_rng(3).normal(size=(2, 1, 28, 28)).astype(np.float32)

    def gathering_kernels(folder):
        doc = json.loads((folder / "model.json").read_text())
        return sum("fn gather_at(" in (folder / k["file"]).read_text() for k in doc["kernels"])

    monkeypatch.setenv("RUSTYASG_WGPU_CONV", "implicit")
    rg.web.export(model, x, tmp_path / "web")
    assert gathering_kernels(tmp_path / "web") == 0
    xi = rg.input(x.shape, "float32", name="x")
    want = rg.function([xi], model(xi), backend="cpu")(x)
    np.testing.assert_allclose(NativeRunner(tmp_path / "web").run({"x": x})["output"], want, atol=1e-5)
    # The check sees gathered kernels where a builder asks for them.
    web_backend = capture.web_backend

    def implicit_backend(*args, **kwargs):
        backend = web_backend(*args, **kwargs)
        backend.kernel_builder.conv_lowering = "implicit"
        return backend

    monkeypatch.setattr(capture, "web_backend", implicit_backend)
    rg.web.export(model, x, tmp_path / "gathered")
    assert gathering_kernels(tmp_path / "gathered") >= 1


def test_program_export_with_several_outputs_and_edge_values(tmp_path):
    x = rg.input((2, 3), "float32", name="x")
    fn = rg.function([x], [rg.relu(x), x.sum(axis=1), rg.exp(x)], backend="cpu")
    values = np.array([[0.0, -0.0, np.inf], [-np.inf, np.nan, -3.5]], np.float32)
    program = fn.lower(values)
    rg.web.export(program, None, tmp_path, output_names=["r", "s", "e"])
    got = NativeRunner(tmp_path).run({"x": values})
    want = fn(values)
    for name, ref in zip(("r", "s", "e"), want):
        np.testing.assert_allclose(got[name], ref, rtol=1e-6, equal_nan=True)


def test_reexport_replaces_files_and_a_failed_export_keeps_the_last_good_one(tmp_path):
    small = nn.Sequential(nn.Linear(3, 2))
    big = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    x = np.ones((1, 3), np.float32)
    rg.web.export(big, x, tmp_path)
    n_big = len(list((tmp_path / "kernels").glob("*.wgsl")))
    rg.web.export(small, x, tmp_path)
    doc = json.loads((tmp_path / "model.json").read_text())
    assert len(list((tmp_path / "kernels").glob("*.wgsl"))) == len(doc["kernels"]) < n_big
    before = (tmp_path / "model.json").read_bytes()
    with pytest.raises(WebExportError, match="metadata must be JSON data"):
        rg.web.export(big, x, tmp_path, metadata={"mean": float("nan")})
    assert (tmp_path / "model.json").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_arguments_are_clear_errors(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(WebExportError, match="needs example_inputs"):
        rg.web.export(model, None, tmp_path)
    with pytest.raises(WebExportError, match="cannot export a str"):
        rg.web.export("model.onnx", np.zeros(3), tmp_path)
    with pytest.raises(WebExportError, match="example input 'x' has dtype <U1"):
        rg.web.export(model, np.array(["a"]), tmp_path)
    with pytest.raises(WebExportError, match="output_names has 2 names for 1 outputs"):
        rg.web.export(model, np.zeros((1, 3), np.float32), tmp_path, output_names=["a", "b"])


def test_js_runtime_unit_tests_pass_under_node():
    node = shutil.which("node")
    assert node, "node is needed for the runtime's unit tests (apt-get install nodejs)"
    proc = subprocess.run([node, "--test", "test/"], cwd=JS_DIR, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^# fail 0$", proc.stdout, re.M) and not re.search(r"^# pass 0$", proc.stdout, re.M)


def test_serve_web_serves_modules_and_rejects_a_missing_folder(tmp_path):
    rg.web.export(nn.Sequential(nn.Linear(3, 2)), np.zeros((1, 3), np.float32), tmp_path / "m")
    proc, url = serve(tmp_path)
    try:
        with urllib.request.urlopen(url + "m/rustyasg.js") as resp:
            assert resp.headers["Content-Type"].startswith("text/javascript")
            assert b"export async function load" in resp.read()
        with urllib.request.urlopen(url + "m/model.json") as resp:
            assert json.loads(resp.read())["format"] == "rustyasg-web-program"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    cli = Path(proc.args[0])
    done = subprocess.run([str(cli), "serve-web", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "is not a folder; export a model there first" in done.stderr


def test_a_saved_program_exports(tmp_path):
    """rg.load_program's Function (no model code) exports like the model it came from."""
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    model.eval()
    xi = rg.input((None, 5), "float32", name="x")
    rg.function([xi], model(xi), backend="cpu").save(tmp_path / "m.rgp")
    loaded = rg.load_program(tmp_path / "m.rgp", backend="cpu")
    x = np.random.default_rng(3).normal(size=(3, 5)).astype(np.float32)
    result = rg.web.export(loaded, [x], tmp_path / "web")
    assert result.inputs == ["x"]
    np.testing.assert_allclose(NativeRunner(tmp_path / "web").run({"x": x})["output"], loaded(x), rtol=1e-5, atol=1e-6)
