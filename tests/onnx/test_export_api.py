"""rg.onnx.export / export_training: functions and modules, dynamic axes, the training step in onnxruntime,
external data, atomic writes and clear errors."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
import rustyasg.onnx as rox
from rustyasg.nn import losses


def _session(model_or_path):
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def test_rg_onnx_is_this_part():
    assert rg.onnx is rox
    assert rg.onnx.export is rox.export


def test_function_with_two_symbolic_dims_and_updates(tmp_path):
    x = rg.input(("B", "T", 4), "float32", name="x")
    w = rg.variable(np.arange(4, dtype=np.float32), name="w")
    y = (x * w).sum(axis=-1).reshape((-1,))      # (B*T,): a product of two dynamic axes
    fn = rg.function([x], [y, x.mean()], updates={w: w * 2.0}, backend="cpu")
    model = rox.export(fn, path=tmp_path / "f.onnx")
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", "T", 4]
    assert [o.name for o in model.graph.output] == ["output0", "output1", "w.new"]
    sess = _session(str(tmp_path / "f.onnx"))
    for shape in [(2, 3, 4), (5, 1, 4)]:
        xs = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        got = sess.run(None, {"x": xs})
        np.testing.assert_allclose(got[0], (xs * np.arange(4)).sum(-1).reshape(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], xs.mean(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got[2], np.arange(4) * 2.0)


@pytest.mark.parametrize("make, training", [
    (lambda: nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.3), nn.Linear(16, 4)), False),
    # training mode: batch statistics, so batch_norm and its backward op are in the exported step
    (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(4 * 3 * 3, 4)), True),
], ids=["mlp-eval", "cnn-batchnorm-train"])
def test_training_step_export_gives_loss_and_gradients(make, training, tmp_path):
    rng = np.random.default_rng(3)
    model = make().train(training)
    conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    x_of = (lambda n: rng.standard_normal((n, 2, 6, 6)).astype(np.float32)) if conv else \
           (lambda n: rng.standard_normal((n, 6)).astype(np.float32))
    y_of = lambda n: rng.integers(0, 4, n).astype(np.int64)  # noqa: E731
    path = tmp_path / "step.onnx"
    onnx_model = rox.export_training(model, losses.cross_entropy, [x_of(4), y_of(4)], path)
    params = model.named_parameters()
    assert [o.name for o in onnx_model.graph.output] == ["loss"] + [f"grad.{n}" for n in params]
    sess = _session(str(path))
    xs_in = rg.input((None,) + x_of(1).shape[1:], "float32", name="x")
    ys_in = rg.input((None,), "int64", name="y")
    loss = losses.cross_entropy(model(xs_in), ys_in)
    reference = rg.function([xs_in, ys_in], [loss] + rg.grad(loss, list(params.values())), backend="cpu")
    for n in (4, 9):
        xs, ys = x_of(n), y_of(n)
        got = sess.run(None, {"input0": xs, "input1": ys})
        for g, e in zip(got, reference(xs, ys)):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
    # parameters are graph inputs too: a training loop feeds the current weights
    new = {name: (p.value() * 0.5).astype(np.float32) for name, p in params.items()}
    for name, p in params.items():
        p.assign(new[name])
    xs, ys = x_of(5), y_of(5)
    got = sess.run(None, {"input0": xs, "input1": ys, **new})
    for g, e in zip(got, reference(xs, ys)):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_external_data_and_atomic_overwrite(tmp_path):
    model = nn.Linear(64, 64)
    path = tmp_path / "lin.onnx"
    rox.export(model, [np.zeros((1, 64), np.float32)], path, external_data=True)
    assert os.path.getsize(tmp_path / "lin.onnx.data") >= 64 * 64 * 4
    assert os.path.getsize(path) < 4096  # the weights are not inside the protobuf
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    expected = x @ model.weight.value().T + model.bias.value()
    np.testing.assert_allclose(_session(str(path)).run(None, {"input0": x})[0], expected, rtol=1e-5, atol=1e-5)
    good = path.read_bytes()
    rg.OPS.register(rg.OpDef("test_no_translator", infer=lambda ts: ts[0], reference=lambda v: v,
                             plugin="rustyasg-none"), replace=True)
    try:
        with pytest.raises(rox.OnnxExportError):  # a failing export leaves the last good file alone
            rox.export(lambda t: rg.apply("test_no_translator", t), [x], path)
    finally:
        rg.OPS.pop("test_no_translator", None)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["lin.onnx", "lin.onnx.data"]


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(rox.OnnxExportError, match="needs example_inputs"):
        rox.export(nn.Linear(2, 2))
    with pytest.raises(rox.OnnxExportError, match="cannot export a int"):
        rox.export(3, [np.zeros(2)])
    with pytest.raises(rox.OnnxExportError, match="must return a tensor"):
        rox.export(lambda x: "nope", [np.zeros((1, 2), np.float32)])
    with pytest.raises(rox.OnnxExportError, match="does not exist"):
        rox.export(nn.Linear(2, 2), [np.zeros((1, 2), np.float32)], tmp_path / "missing" / "m.onnx")
    with pytest.raises(rox.OnnxExportError, match="scalar"):
        rox.export_training(nn.Linear(2, 2), lambda out, y: out * y, [np.zeros((1, 2), np.float32)] * 2)


def test_inference_function_exports_with_batch_norm_folded(tmp_path):
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 2))
    model[1].running_mean.assign(rng.standard_normal(6).astype(np.float32))
    model[1].running_var.assign(rng.uniform(0.5, 2, 6).astype(np.float32))
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    fast = rg.inference(model, x, backend="cpu")
    onnx_model = rox.export(fast, path=tmp_path / "fast.onnx")
    assert [n.op_type for n in onnx_model.graph.node].count("Mul") == 0  # the BN scale is inside the conv weight
    sess = _session(str(tmp_path / "fast.onnx"))
    for n in (1, 5):
        xs = rng.standard_normal((n, 3, 6, 6)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: xs})[0], fast(xs), rtol=1e-5, atol=1e-5)


def test_a_save_that_fails_midway_keeps_the_last_good_file(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    rox.export(nn.Linear(3, 2), [np.zeros((1, 3), np.float32)], path)
    good = path.read_bytes()

    def refuses(*args, **kwargs):
        raise RuntimeError("checker stopped")

    import onnx.checker

    monkeypatch.setattr(onnx.checker, "check_model", refuses)  # the new file is written, then its check fails
    with pytest.raises(RuntimeError, match="checker stopped"):
        rox.export(nn.Linear(3, 4), [np.zeros((1, 3), np.float32)], path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_cli_converts_a_saved_program(tmp_path, capsys):
    from rustyasg.core.cli import main

    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    fast = rg.inference(model, np.zeros((1, 4), np.float32), backend="reference")
    fast.save(tmp_path / "m.rgp")
    assert main(["onnx", str(tmp_path / "m.rgp"), str(tmp_path / "m.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    sess = _session(str(tmp_path / "m.onnx"))
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], fast(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [19, 21])
def test_newer_opsets_export_and_older_are_refused(opset):
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    model = rox.export(lambda t: rg.softmax(rg.layer_norm(t), axis=-1).max(axis=1), [x], opset=opset)
    assert model.opset_import[0].version == opset
    got = _session(model).run(None, {"input0": x})[0]
    np.testing.assert_allclose(got, rg.jit(lambda t: rg.softmax(rg.layer_norm(t), axis=-1).max(axis=1))(x), rtol=1e-5)
    with pytest.raises(rox.OnnxExportError, match="opset 17 is not supported"):
        rox.export(lambda t: t * 2.0, [x], opset=17)
