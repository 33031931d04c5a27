"""Saved programs: one safetensors file with the graph as JSON, loaded without the model's code."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import rustyasg.core as rg
from rustyasg.core import saved_program as sp


def _mlp_function(backend="cpu", seed=0):
    rng = np.random.default_rng(seed)
    x = rg.input((None, 5), "float32", name="x")
    w1 = rg.variable(rng.standard_normal((5, 8)).astype(np.float32), name="w1")
    b1 = rg.variable(rng.standard_normal(8).astype(np.float32), name="b1")
    w2 = rg.variable(rng.standard_normal((8, 3)).astype(np.float32), name="w2")
    h = rg.relu(x @ w1 + b1)
    y = rg.softmax(h @ w2, axis=-1).reshape((-1, 3, 1))  # a reshape with a symbolic target
    return rg.function([x], y, backend=backend), (w1, b1, w2)


# every installed backend runs a saved program (wgpu on lavapipe in CI, onnxruntime through rustyasg-onnx)
BACKENDS = [b for b in ("reference", "cpu", "wgpu", "onnxruntime") if b in rg.installed_backends()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_any_batch_size(tmp_path, backend):
    f, _ = _mlp_function("reference")
    path = tmp_path / "mlp.rgp"
    f.save(path)
    g = rg.load_program(path, backend=backend)
    for batch in (1, 7, 32):
        x = np.random.default_rng(batch).standard_normal((batch, 5)).astype(np.float32)
        np.testing.assert_allclose(g(x), f(x), rtol=1e-5, atol=1e-6)
    assert g.saved["format_version"] == sp.FORMAT_VERSION
    assert set(g.saved["ops"]) >= {"matmul", "relu", "softmax", "reshape"}
    assert g.saved["ops"]["matmul"] == "rustyasg.core"
    assert g.inputs[0].name == "x" and g.inputs[0].dtype == np.float32
    assert rg.read_signature(path) == {"inputs": [{"name": "x", "shape": ["x.0", 5], "dtype": "float32"}],
                                       "outputs": [{"shape": ["x.0", 3, 1], "dtype": "float32"}]}


def test_training_step_round_trip_keeps_updates(tmp_path):
    rng = np.random.default_rng(3)
    x = rg.input((None, 4), "float32", name="x")
    y = rg.input((None,), "float32", name="y")
    lr = rg.input((), "float32", name="lr")
    w = rg.variable(rng.standard_normal(4).astype(np.float32), name="w")
    loss = rg.mean((x @ w - y) ** 2)
    (gw,) = rg.grad(loss, [w])
    step = rg.function([x, y, lr], loss, updates={w: w - lr * gw}, backend="cpu")
    step.save(tmp_path / "step.rgp")
    loaded = rg.load_program(tmp_path / "step.rgp", backend="cpu")
    xs, ys = rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    for _ in range(5):
        a, b = step(xs, ys, 0.05), loaded(xs, ys, 0.05)
        np.testing.assert_allclose(a, b, rtol=1e-5)
    (lw,) = [v for v in loaded.updates[0][:1]]
    np.testing.assert_allclose(lw.value(), w.value(), rtol=1e-5)
    assert lw is not w  # the loaded program owns fresh variables


def test_random_draws_and_large_constants_survive(tmp_path):
    rng = rg.RNG(seed=11)
    x = rg.input((None, 300), "float32", name="x")
    big = rg.constant(np.linspace(-1, 1, 300, dtype=np.float32))
    out = rg.clamp(x * big + rng.uniform((300,)), min=-np.inf, max=0.5)
    f = rg.function([x], out, backend="reference")
    f.save(tmp_path / "r.rgp")
    g = rg.load_program(tmp_path / "r.rgp", backend="reference")
    xs = np.ones((2, 300), np.float32)
    for _ in range(2):  # both streams advance the same way
        np.testing.assert_array_equal(f(xs), g(xs))
    with safe_open(str(tmp_path / "r.rgp"), "np") as fh:
        assert any(k.startswith("const/") for k in fh.keys())


def _rewrite_document(path, edit):
    """Re-save ``path`` with its JSON edited by ``edit(doc)`` (tensors unchanged)."""
    with safe_open(str(path), "np") as fh:
        doc = json.loads(fh.metadata()[sp.METADATA_KEY])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    edit(doc)
    save_file(tensors, str(path), metadata={sp.METADATA_KEY: json.dumps(doc)})


def test_newer_format_version_is_refused(tmp_path):
    f, _ = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)
    _rewrite_document(path, lambda d: d.update(format_version=sp.FORMAT_VERSION + 1))
    with pytest.raises(rg.SavedProgramError, match=r"format version 2.*pip install -U rustyasg-core"):
        rg.load_program(path)


def test_unknown_op_names_the_plugin_to_install(tmp_path):
    f, _ = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)

    def rename(doc):
        for ins in doc["instrs"]:
            if ins["op"] == "relu":
                ins["op"] = "fancy_relu"
        doc["ops"]["fancy_relu"] = "rustyasg-fancy"

    _rewrite_document(path, rename)
    with pytest.raises(rg.SavedProgramError, match=r"'fancy_relu' \(from 'rustyasg-fancy'\).*pip install rustyasg-fancy"):
        rg.load_program(path)


def test_altered_graph_is_refused(tmp_path):
    f, _ = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)

    def reshape_wrong(doc):
        for ins in doc["instrs"]:
            if ins["op"] == "matmul":
                ins["shape"][-1] = 99

    _rewrite_document(path, reshape_wrong)
    with pytest.raises(rg.SavedProgramError, match="does not rebuild.*records"):
        rg.load_program(path)


@pytest.mark.parametrize("cut", [4, 40, -7])
def test_truncated_file_is_refused(tmp_path, cut):
    f, _ = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(rg.SavedProgramError, match="truncated|corrupted"):
        rg.load_program(path)


def test_corrupted_weights_are_refused(tmp_path):
    f, _ = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(rg.SavedProgramError, match="SHA-256"):
        rg.load_program(path)


def test_plain_weights_file_is_not_a_program(tmp_path):
    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(rg.SavedProgramError, match="not a RustyASG saved program"):
        rg.load_program(tmp_path / "w.safetensors")
    with pytest.raises(rg.SavedProgramError, match="no saved program"):
        rg.load_program(tmp_path / "missing.rgp")


def test_failed_save_keeps_the_last_good_copy(tmp_path, monkeypatch):
    f, (w1, _, _) = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)
    good = path.read_bytes()

    import safetensors.numpy as stn

    def dies_midway(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(stn, "save_file", dies_midway)
    w1.assign(np.zeros_like(w1.value()))
    with pytest.raises(KeyboardInterrupt):
        f.save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["p.rgp"]  # no temporary file left behind


def test_save_into_missing_folder_is_a_clear_error(tmp_path):
    f, _ = _mlp_function("reference")
    with pytest.raises(rg.SavedProgramError, match="does not exist"):
        f.save(tmp_path / "nope" / "p.rgp")


def test_file_holds_no_pickle_and_strict_json(tmp_path):
    f, _ = _mlp_function("reference")
    path = tmp_path / "p.rgp"
    f.save(path)
    with safe_open(str(path), "np") as fh:
        text = fh.metadata()[sp.METADATA_KEY]
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["format"] == "rustyasg.program"
    assert b"\x80\x04\x95" not in path.read_bytes()  # no pickle protocol-4 frame anywhere
