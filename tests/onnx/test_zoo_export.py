"""The model zoo exported to ONNX: one file with a dynamic batch axis, run by onnxruntime at two batch
sizes, equal to RustyASG's own cpu backend within 1e-4."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rustyasg.core as rg
import rustyasg.onnx as rox
from rustyasg.nn import zoo


def _randomize_buffers(model, rng):
    """Batch-norm running statistics away from their (0, 1) start, so eval mode is not an identity."""
    for name, buf in model.named_buffers().items():
        if name.endswith("running_mean"):
            buf.assign(rng.standard_normal(buf.shape).astype(buf.dtype) * 0.2)
        elif name.endswith("running_var"):
            buf.assign(rng.uniform(0.5, 2.0, buf.shape).astype(buf.dtype))


def _images(c, size):
    return lambda rng, n: [rng.standard_normal((n, c, size, size)).astype(np.float32)]


def _tokens(vocab, t, mask=False):
    def make(rng, n):
        ids = rng.integers(0, vocab, (n, t)).astype(np.int64)
        if not mask:
            return [ids]
        m = np.ones((n, t), np.int64)
        m[:, t - 3:] = 0  # padded tails
        return [ids, m]
    return make


def _seq2seq(d):
    return lambda rng, n: [rng.standard_normal((n, 7, d)).astype(np.float32),
                           rng.standard_normal((n, 5, d)).astype(np.float32)]


CASES = {
    "mlp": (lambda: zoo.MLP(12, [32, 16], 5, activation="gelu", dropout=0.1), lambda rng, n: [
        rng.standard_normal((n, 12)).astype(np.float32)]),
    "lenet": (lambda: zoo.LeNet5(), _images(1, 28)),
    "resnet18": (lambda: zoo.resnet18(num_classes=10), _images(3, 32)),
    "transformer": (lambda: zoo.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                                            dim_feedforward=64), _seq2seq(32)),
    "gpt": (lambda: zoo.GPT(zoo.GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_embd=32)),
            _tokens(97, 16)),
    "vit": (lambda: zoo.ViT(image_size=16, patch_size=4, num_classes=7, dim=32, depth=2, heads=4, mlp_dim=64),
            _images(3, 16)),
    "bert": (lambda: zoo.Bert(zoo.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=64,
                                             add_pooling_layer=False)),
             _tokens(120, 12, mask=True)),
}


SLOW = {"resnet18"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(CASES)])
def test_zoo_model_exports_with_a_dynamic_batch(name, tmp_path):
    rng = np.random.default_rng(7)
    build, make_inputs = CASES[name]
    model = build().eval()
    _randomize_buffers(model, rng)
    path = tmp_path / f"{name}.onnx"
    rox.export(model, make_inputs(rng, 2), path)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    batch_axes = [i.type.tensor_type.shape.dim[0].dim_param for i in loaded.graph.input]
    assert batch_axes == ["batch"] * len(batch_axes)
    names = {t.name for t in loaded.graph.initializer}
    assert set(model.named_parameters()) <= names  # parameters are initializers under their state-dict names
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = rg.jit(lambda *xs: model(*xs), backend="cpu")
    for batch in (3, 8):
        xs = make_inputs(rng, batch)
        (got,) = sess.run(None, {i.name: x for i, x in zip(loaded.graph.input, xs)})
        expected = reference(*xs)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
