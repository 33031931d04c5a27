"""Value debugging (debug_nans, inspect, watch, gradcheck) and the ``rustyasg view`` command."""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.viz.debugging import NonFiniteError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Log(nn.Module):
    def forward(self, x):
        return rg.log(x)  # the line debug_nans must name


def _model_step(backend):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), Log())
    x = rg.input((None, 3), name="x")
    loss = model(x).sum()
    (g,) = rg.grad(loss, [model[0].weight])
    w = model[0].weight
    step = rg.function([x], loss, updates={w: w - 0.01 * g}, backend=backend)
    return model, step


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_debug_nans_names_the_first_op_and_restores_state(backend):
    model, step = _model_step(backend)
    model[2].bias.assign(np.array([-100.0, -100.0], np.float32))  # log of a negative: NaN
    before = model[0].weight.value()
    with pytest.raises(NonFiniteError) as info:
        with rg.debug_nans():
            step(np.ones((5, 3), np.float32))
    msg = str(info.value)
    assert "op 'log'" in msg and "test_debugging_cli.py:" in msg and "module 3" in msg
    assert info.value.node.op == "log"
    np.testing.assert_array_equal(model[0].weight.value(), before)
    model[2].bias.assign(np.array([5.0, 5.0], np.float32))
    with rg.debug_nans():  # finite again: runs and updates as usual
        step(np.ones((5, 3), np.float32))
    assert not np.array_equal(model[0].weight.value(), before)


def test_inspect_and_watch_return_intermediates_without_recompiling():
    x = rg.input((None, 3), "float64", name="x")
    w = rg.variable(np.arange(6.0).reshape(3, 2), name="w")
    h = rg.tanh(x @ w)
    step = rg.function([x], h.sum(), updates={w: w * 0.5}, backend="cpu")
    a = np.random.default_rng(0).standard_normal((4, 3))
    w0 = w.value()
    value = rg.inspect(h, step, a)
    np.testing.assert_allclose(value, np.tanh(a @ w0), rtol=1e-12)
    np.testing.assert_allclose(w.value(), w0 * 0.5)  # it was a real step
    watched = step.watch([h])
    out, values = watched(a)
    np.testing.assert_allclose(values[h], np.tanh(a @ (w0 * 0.5)), rtol=1e-12)
    assert watched.function.stats["compiles"] == 1
    rg.inspect(h, step, a)
    assert watched.function.stats["compiles"] == 1  # cached: no recompilation


def test_gradcheck_accepts_right_and_rejects_wrong_gradients():
    rng = np.random.default_rng(1)
    assert rg.gradcheck(lambda a, b: (rg.tanh(a @ b) * a.sum()).sum(), [rng.standard_normal((3, 4)),
                                                                      rng.standard_normal((4, 2))])
    assert rg.gradcheck(lambda a: rg.softmax(a, axis=-1) * 3.0, [rng.standard_normal((2, 5))])
    # stop_gradient hides half of d(x*x)/dx: the check must catch it.
    wrong = lambda a: (rg.stop_gradient(a) * a).sum()  # noqa: E731
    with pytest.raises(AssertionError, match="input 0"):
        rg.gradcheck(wrong, [rng.standard_normal(4)])
    assert rg.gradcheck(wrong, [rng.standard_normal(4)], raise_exception=False) is False


def test_view_command_exports_svg(tmp_path):
    out = tmp_path / "mnist.svg"
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "rustyasg"), "view",
                        os.path.join(ROOT, "examples", "view_mnist.py"), "--svg", str(out), "--graph", "gradient"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_text().count('class="node"') > 10


@pytest.mark.slow
def test_view_command_serves_the_adapter(tmp_path):
    """`rustyasg view` serves Model Explorer on both example models with profile overlays and a
    highlighted parameter; its server converts our bundles through the adapter."""
    port = 8391
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "rustyasg"), "view",
                             os.path.join(ROOT, "examples", "view_mnist.py"), os.path.join(ROOT, "examples", "view_gpt.py"),
                             "--profile", "2", "--highlight", "lm_head.weight", "--no-browser", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.monotonic() + 240
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("RustyASG viewer: "):
                url = line.split(": ", 1)[1].strip()
        assert url, "the command printed no URL"
        data = json.loads(urllib.parse.unquote(url.split("data=", 1)[1]))
        assert [os.path.basename(m["url"]) for m in data["models"]] == ["view_mnist.rgviz", "view_gpt.rgviz"]
        overlays = [s.split("//", 1)[1].rsplit("/", 1)[0] for s in data["nodeData"]]
        assert {"view_mnist: time (us)", "view_gpt: time (us)", "view_gpt: path"} <= set(overlays)
        assert "view_mnist: path" not in overlays  # the MNIST model has no lm_head
        model = data["models"][0]
        cmd = {"extensionId": model["adapterId"], "cmdId": "convert", "modelPath": model["url"], "settings": {},
               "deleteAfterConversion": False}
        q = urllib.parse.quote(json.dumps(cmd))
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/send_command?json={q}", timeout=30) as r:
                    resp = json.load(r)
                break
            except OSError:
                time.sleep(0.3)
        graphs = {g["id"]: g for g in resp["graphs"]}
        assert set(graphs) == {"forward", "gradient", "step"}
        labels = {n["label"] for n in graphs["step"]["nodes"]}
        assert "1.weight" in labels and "3.bias" in labels

        # The path-highlight provider, as the UI runs it: gradient path from the loss to 1.weight.
        def run(graph_id, node, direction):
            cmd = {"extensionId": "rustyasg_path", "cmdId": "run", "modelPath": model["url"], "graphId": graph_id,
                   "configValues": {"node": node, "direction": direction}}
            q = urllib.parse.quote(json.dumps(cmd))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/send_command?json={q}", timeout=30) as r:
                return json.load(r)

        from rustyasg.viz.bundle import read_bundle
        from rustyasg.viz.overlays import gradient_path, path_between

        bundle = read_bundle(model["url"])
        grad = bundle["gradient"]
        target = next(n.id for n in grad.nodes if n.attrs.get("gradient for") == "1.weight")
        got = run("gradient", "1.weight", "gradient")
        assert set(got["result"]["results"]) == gradient_path(grad, target) != set()
        fwd = bundle["forward"]
        w = next(n.id for n in fwd.nodes if n.label == "1.weight")
        loss = next(n.id for n in fwd.nodes if n.attrs.get("role") == "loss")
        got = run("forward", f"%{w}", "loss")
        assert set(got["result"]["results"]) == path_between(fwd, w, loss) and {w, loss} <= set(got["result"]["results"])
        assert "no node" in run("forward", "nonexistent", "loss")["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_debug_nans_on_wgpu():
    pytest.importorskip("wgpu")
    model, step = _model_step("wgpu")
    model[2].bias.assign(np.array([-100.0, -100.0], np.float32))
    with pytest.raises(NonFiniteError, match=r"op 'log'.*test_debugging_cli\.py:\d+, module 3"):
        with rg.debug_nans():
            step(np.ones((5, 3), np.float32))


def test_value_statistics_overlay_marks_the_first_nan():
    from rustyasg.viz.viewer import resolve_target, view_data

    model, step = _model_step("cpu")
    model[2].bias.assign(np.array([-100.0, 3.0], np.float32))  # one output column goes negative: log -> NaN
    a = np.ones((5, 3), np.float32)
    data = view_data(resolve_target(step, a, model=model), stats=True)
    first = data.overlays["first NaN/Inf"][0]["forward"]
    (nid,) = first
    node = data.graphs["forward"].by_id()[nid]
    assert node.op == "log" and node.namespace == "3"
    nonfinite = data.overlays["value nonfinite"][0]["forward"]
    assert nonfinite[nid] == 5.0  # one NaN per row
    means = data.overlays["value mean"][0]["forward"]
    inp = next(n.id for n in data.graphs["forward"].nodes if n.op == "matmul")
    h = a @ model[0].weight.value().T
    assert means[inp] == pytest.approx(float(h.mean()), rel=1e-5)


@pytest.mark.parametrize("name", ["rustyasg.viz." + m for m in ("graphs", "bundle", "overlays", "profiler", "debugging",
                                                                 "static", "explorer.main")]
                         + ["rustyasg.core.naming", "rustyasg.core.observe", "rustyasg.core.watch",
                            "rustyasg.cpu.instrument"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} failed in {name}"
