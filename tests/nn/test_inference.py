"""rg.inference: forward only, weights as constants, batch norm folded into conv/linear, dropout gone; the
result saves as a program that runs without the model's Python code."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import losses, zoo
from rustyasg.nn.inference import fold_channel_scales


def _random_stats(model, rng):
    for name, buf in model.named_buffers().items():
        if name.endswith("running_mean"):
            buf.assign(rng.standard_normal(buf.shape).astype(buf.dtype) * 0.3)
        elif name.endswith("running_var"):
            buf.assign(rng.uniform(0.3, 2.0, buf.shape).astype(buf.dtype))
    for name, p in model.named_parameters().items():  # BN affine parameters away from (1, 0)
        if ".bn" in name or name.startswith("bn") or "norm" in name:
            p.assign((p.value() + rng.standard_normal(p.shape) * 0.2).astype(p.dtype))


def _eval_forward(model, backend="cpu"):
    model.eval()
    return rg.jit(lambda *xs: model(*xs), backend=backend)


@pytest.mark.parametrize("bias", [False, True])
def test_batch_norm_is_folded_into_conv_and_linear(bias, backend):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 4, 3, stride=2, groups=2, bias=bias), nn.BatchNorm2d(4), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 6, bias=bias), nn.BatchNorm1d(6))
    _random_stats(model, rng)
    model[1].weight.assign(rng.uniform(-2, 2, 8).astype(np.float32))  # negative scales fold too
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    fn = rg.inference(model, x, backend=backend)
    program = rg.inference(model, x, backend="reference").lower(x)
    ops = [i.op for i in program.instrs]
    assert "mul" not in ops and "rsqrt" not in ops  # every BN scale went into a weight
    assert not program.variables and not program.updates
    expected = _eval_forward(model)
    for n in (2, 7):
        xs = rng.standard_normal((n, 3, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(fn(xs), expected(xs), rtol=1e-4, atol=1e-5)


def test_fold_leaves_non_channel_scales_alone():
    from rustyasg.core.symbolic_program import trace

    x = rg.input((None, 2, 4), name="x")
    w = rg.constant(np.ones((4, 3), np.float32))
    per_row = rg.constant(np.arange(6, dtype=np.float32).reshape(2, 3))  # varies along axis 1 too
    per_column = rg.constant(np.arange(3, dtype=np.float32))
    kept = fold_channel_scales(trace([x], [(x @ w) * per_row]))
    assert "mul" in [i.op for i in kept.instrs]
    folded = fold_channel_scales(trace([x], [(x @ w) * per_column]))
    assert "mul" not in [i.op for i in folded.instrs]


def test_dropout_is_removed_and_the_mode_restored():
    model = nn.Sequential(nn.Linear(5, 5), nn.Dropout(0.5), nn.ReLU()).train()
    model.set_rng(3)
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    fn = rg.inference(model, x, backend="reference")
    assert model.training
    ops = {i.op for i in fn.lower(x).instrs}
    assert not {"random_uniform", "variable"} & ops
    np.testing.assert_allclose(fn(x), np.maximum(x @ model[0].weight.value().T + model[0].bias.value(), 0), rtol=1e-5)
    np.testing.assert_array_equal(fn(x), fn(x))


def test_weights_are_read_at_compile_time():
    model = nn.Linear(3, 2)
    x = np.ones((1, 3), np.float32)
    fn = rg.inference(model, x, backend="reference")
    before = fn(x)
    model.weight.assign(np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(fn(x), before)
    np.testing.assert_allclose(rg.inference(model, x, backend="reference")(x), model.bias.value()[None])


ZOO = {
    "resnet18": (lambda: zoo.resnet18(num_classes=10), lambda rng, n: [rng.standard_normal((n, 3, 32, 32)).astype(np.float32)]),
    "gpt": (lambda: zoo.GPT(zoo.GPTConfig(vocab_size=101, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.1)),
            lambda rng, n: [rng.integers(0, 101, (n, 16)).astype(np.int64)]),
    "bert": (lambda: zoo.Bert(zoo.BertConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                             intermediate_size=64)),
             lambda rng, n: [rng.integers(0, 90, (n, 9)).astype(np.int64), np.ones((n, 9), np.int64)]),
}


@pytest.mark.parametrize("name", [pytest.param("resnet18", marks=pytest.mark.slow), "gpt", "bert"])
def test_zoo_inference_equals_eval_forward(name, backend):
    rng = np.random.default_rng(5)
    build, make = ZOO[name]
    model = build()
    _random_stats(model, rng)
    fn = rg.inference(model, *make(rng, 2), backend=backend)
    expected = _eval_forward(model, backend)
    for n in (1, 4):
        xs = make(rng, n)
        np.testing.assert_allclose(fn(*xs), expected(*xs), rtol=1e-4, atol=1e-4)


def test_forward_only_memory_plan_is_smaller_than_the_training_step():
    model = zoo.LeNet5()
    x, y = np.zeros((16, 1, 28, 28), np.float32), np.zeros(16, np.int64)
    infer = rg.inference(model, x, backend="cpu").memory_report(x)
    xi, yi = rg.input((None, 1, 28, 28), name="x"), rg.input((None,), "int64", name="y")
    loss = losses.cross_entropy(model.train()(xi), yi)
    step = rg.function([xi, yi], [loss] + rg.grad(loss, model.parameters()), backend="cpu").memory_report(x, y)
    # no activations kept for a backward pass: well under the training step's peak (whose weight
    # gradients run as soon as they can, freeing each convolution's columns early), and buffers reused
    assert infer["live_peak_bytes"] < 0.7 * step["live_peak_bytes"]
    assert infer["live_peak_bytes"] < 0.6 * infer["naive_bytes"]
    assert infer["variable_bytes"] == 0


USER_MODEL = """
import rustyasg.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(nn.functional.relu(self.bn(self.conv(x))).reshape((-1, 64)))
"""


def test_saved_inference_program_runs_without_the_model_code(tmp_path, monkeypatch):
    (tmp_path / "user_model.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_model

    rng = np.random.default_rng(2)
    model = user_model.Net()
    _random_stats(model, rng)
    x = rng.standard_normal((3, 1, 6, 6)).astype(np.float32)
    fn = rg.inference(model, x, backend="cpu")
    path = tmp_path / "model.rgp"
    fn.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", fn(x))
    (tmp_path / "user_model.py").unlink()  # the class that built the model is gone
    sys.modules.pop("user_model")
    script = (
        "import sys, numpy as np, rustyasg.core as rg\n"
        f"f = rg.load_program({str(path)!r}, backend='cpu')\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"np.testing.assert_allclose(f(x), np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-5, atol=1e-6)\n"
        "print(f(np.concatenate([x, x])).shape)\n"
        "assert 'user_model' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(6, 3)"


def test_needs_an_example_input():
    with pytest.raises(TypeError, match="example input"):
        rg.inference(nn.Linear(2, 2))


def test_saved_training_step_with_dropout_continues_identically(tmp_path):
    """A saved program is not only for inference: a training step (with dropout draws) resumes bit for bit."""
    model = zoo.GPT(zoo.GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.1)).train()
    xi, yi = rg.input(("B", 16), "int64", name="x"), rg.input(("B", 16), "int64", name="y")
    loss = losses.cross_entropy(model(xi).reshape((-1, 97)), yi.reshape((-1,)))
    grads = rg.grad(loss, model.parameters())
    step = rg.function([xi, yi], loss, updates={p: p - 0.1 * g for p, g in zip(model.parameters(), grads)},
                       backend="cpu")
    step.save(tmp_path / "step.rgp")
    resumed = rg.load_program(tmp_path / "step.rgp", backend="cpu")
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 97, (2, 16)).astype(np.int64), rng.integers(0, 97, (2, 16)).astype(np.int64)
    losses_seen = [(float(step(x, y)), float(resumed(x, y))) for _ in range(3)]
    assert all(a == b for a, b in losses_seen)
    assert losses_seen[2][0] < losses_seen[0][0]
