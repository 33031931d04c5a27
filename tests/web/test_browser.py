"""Exported models run in headless Chromium's WebGPU and match the cpu backend within 1e-4."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn.zoo import GPT, GPTConfig

from .models import mnist_cnn, randomize_batch_norm

RUN_IN_PAGE = """async ([dir, feeds]) => {
  const RustyASG = (await import(`/${dir}/rustyasg.js`)).default;
  const model = await RustyASG.load(`/${dir}/`);
  const inputs = {};
  for (const [name, values] of Object.entries(feeds)) inputs[name] = values;
  const out = await model.run(inputs);
  const result = {};
  for (const [name, arr] of Object.entries(out)) result[name] = Array.from(arr, Number);
  return {result, inputs: model.inputs, outputs: model.outputs};
}"""


def cpu_reference(model, example):
    model.eval()
    x = rg.input(example.shape, example.dtype, name="x")
    return rg.function([x], model(x), backend="cpu")(example)


def run_in_browser(page, base_url, name, feeds):
    page.goto(base_url)
    return page.evaluate(RUN_IN_PAGE, [name, {k: np.asarray(v).ravel().tolist() for k, v in feeds.items()}])


def case_mlp(rng):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.GELU(), nn.Linear(64, 10), nn.Softmax(dim=-1))
    return model, rng.normal(size=(3, 1, 28, 28)).astype(np.float32)


def case_cnn(rng):
    model = mnist_cnn()
    randomize_batch_norm(model, rng)
    return model, rng.normal(size=(2, 1, 28, 28)).astype(np.float32)


def case_gpt(rng):
    cfg = GPTConfig(vocab_size=96, block_size=16, n_layer=2, n_head=2, n_embd=32)
    return GPT(cfg, seed=1), rng.integers(0, 96, size=(2, 16)).astype(np.int64)


class _EdgeSpelling(nn.Module):
    """Elementwise ops whose WGSL spells out NaN or infinity at their domain's edges (Tint, in Chrome,
    refuses a non-finite constant expression): inputs inside the domains, so the results are finite."""

    def forward(self, x):
        t = rg.tanh(x)
        a = x.abs() + 1.0
        return (rg.acosh(a) + rg.asin(t) + rg.acos(t) + rg.atanh(0.5 * t) + rg.expm1(t) + rg.hypot(x, a)
                + rg.fmod(x, a) + rg.remainder(x, a) + rg.floor_divide(x, a) + rg.atan2(x, a) + rg.logaddexp(x, t)
                + rg.hardswish(x) + x.max(axis=-1, keepdims=True) + x.min(axis=-1, keepdims=True))


def case_edges(rng):
    return _EdgeSpelling(), rng.normal(size=(4, 33)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("case", [case_mlp, case_cnn, case_gpt, case_edges], ids=["mlp", "cnn", "gpt-mini", "edges"])
def test_exported_model_matches_cpu_backend(case, export_root, page):
    root, url = export_root
    rng = np.random.default_rng(0)
    model, example = case(rng)
    name = case.__name__
    exported = rg.web.export(model, example, root / name)
    expected = cpu_reference(model, example)

    # A different input than the one traced: the export is a program, not a recording of one call.
    fresh = case(np.random.default_rng(1))[1]
    expected_fresh = cpu_reference(model, fresh)
    for feed, want in ((example, expected), (fresh, expected_fresh)):
        got = run_in_browser(page, url, name, {exported.inputs[0]: feed})
        out = np.asarray(got["result"]["output"], np.float32).reshape(want.shape)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-4)
    assert got["inputs"][0]["shape"] == list(example.shape)
    assert got["outputs"][0]["shape"] == list(expected.shape)
    assert page.errors == []


def test_wrong_input_is_a_clear_error(export_root, page):
    root, url = export_root
    model, example = case_mlp(np.random.default_rng(0))
    rg.web.export(model, example, root / "bad_inputs")
    page.goto(url)
    messages = page.evaluate("""async () => {
      const RustyASG = (await import('/bad_inputs/rustyasg.js')).default;
      const model = await RustyASG.load('/bad_inputs/');
      const out = [];
      for (const feed of [{x: new Float32Array(5)}, {}, {x: new Float32Array(2352), y: [1]}]) {
        try { await model.run(feed); out.push('no error'); } catch (e) { out.push(`${e.name}: ${e.message}`); }
      }
      const ok = await model.run({x: new Float32Array(2352)});   // still usable afterwards
      out.push(ok.output.length);
      return out;
    }""")
    assert messages[0] == 'InputError: input "x": expected 2352 elements (shape [3,1,28,28] float32), got 5'
    assert messages[1].startswith('InputError: missing input "x"')
    assert messages[2].startswith("InputError: unknown input(s) y")
    assert messages[3] == 30
