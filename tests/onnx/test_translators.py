"""Every registered op exported alone, checked by onnx.checker and run by onnxruntime.

The onnxruntime backend exports each compiled program to ONNX, so the conformance kit's
``check_op`` compares every op's forward result with its float64 reference and every gradient
graph (which exercises the backward ops too) with finite differences, all through onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rustyasg.core as rg
import rustyasg.onnx as rox
from rustyasg.core.exporters import translators
from rustyasg.core.hookspecs import hookimpl
from rustyasg.core.registry import Example, InputSpec, OpDef, TensorType
from rustyasg.core.testing import check_op, sample_input
from rustyasg.onnx.backend import OnnxRuntimeBackend

LEAVES = {"input", "variable", "constant"}
OPS_WITH_EXAMPLES = sorted(n for n, d in rg.OPS.items() if d.examples and n not in LEAVES)


def test_every_core_op_has_a_translator():
    table = translators("onnx")
    core = {n for n, d in rg.OPS.items() if d.plugin == "rustyasg.core" and n not in LEAVES}
    assert not sorted(core - set(table))


@pytest.mark.parametrize("op", OPS_WITH_EXAMPLES)
def test_op_alone_in_onnxruntime_matches_reference(op):
    if op not in translators("onnx"):  # another part's op without a translator: the error must say so
        with pytest.raises(rox.MissingTranslatorError, match=rf"'{op}' \(an op of '{rg.OPS[op].plugin}'\)"):
            check_op(op, backend=OnnxRuntimeBackend(), check_grad=False)
        return
    check_op(op, backend=OnnxRuntimeBackend(), dtype="float32")


@pytest.mark.parametrize("op", [o for o in OPS_WITH_EXAMPLES if rg.OPS[o].plugin == "rustyasg.core"])
def test_op_alone_passes_the_full_onnx_checker(op):
    rng = np.random.default_rng(1)
    opdef = rg.OPS[op]
    for example in opdef.examples:
        arrays = [sample_input(s, rng) for s in example.inputs]
        arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]
        model = rox.export(lambda *xs: rg.apply(op, *xs, **dict(example.attrs)), arrays, dynamic_batch=False)
        onnx.checker.check_model(model, full_check=True)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (got,) = sess.run(None, {i.name: a for i, a in zip(model.graph.input, arrays)})
        expected = opdef.reference(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays],
                                   **opdef.check_attrs(dict(example.attrs)))
        assert got.shape == np.shape(expected)
        if np.asarray(expected).dtype.kind in "biu":
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


def test_random_draws_match_the_reference_bits():
    """Uniform draws are bit-identical; normal ones differ only by libm's last ulp in log/cos."""
    seed = rg.input((), "int64", name="seed")
    out = [rg.random_uniform(seed, shape=(1000,), salt=5, dtype="float64", low=-2.0, high=3.0),
           rg.random_normal(seed, shape=(10, 30), salt=9, dtype="float64")]
    ref = rg.function([seed], out, backend="reference")
    onx = rg.function([seed], out, backend=OnnxRuntimeBackend())
    for s in (0, 1 << 40, -7, (123 << 32) + 99):
        (u_ref, n_ref), (u_onx, n_onx) = ref(np.int64(s)), onx(np.int64(s))
        np.testing.assert_array_equal(u_ref, u_onx)
        np.testing.assert_allclose(n_ref, n_onx, rtol=1e-13, atol=1e-14)


# -- a third-party op ships its translator through the plugin hook --------------------------------------
def _softsign_ref(x):
    return x / (1.0 + np.abs(x))


class SoftsignPlugin:
    """What a pip-installed op plugin's module would contain: the op, and its ONNX translator."""

    @hookimpl
    def rustyasg_register_ops(self, registry):
        registry.register(OpDef("test_softsign", infer=lambda ts: TensorType(ts[0].shape, ts[0].dtype),
                                reference=_softsign_ref, kind="elementwise", plugin="rustyasg-test-softsign",
                                examples=(Example((InputSpec((3, 4)),), check_grad=False),)), replace=True)

    @hookimpl
    def rustyasg_register_exporters(self, format, registry):
        if format == "onnx":
            registry.register("onnx", "test_softsign", lambda b, node: b.op(
                "Div", node.inputs[0], b.op("Add", b.const(1.0, node.dtype), b.op("Abs", node.inputs[0]))))


def test_plugin_translator_is_used():
    plugin = SoftsignPlugin()
    rg.register_plugin(plugin, "test-softsign")
    try:
        model = rox.export(lambda x: rg.apply("test_softsign", x) * 2.0, [np.zeros((2, 4), np.float32)])
        x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(sess.run(None, {"input0": x})[0], 2 * _softsign_ref(x), rtol=1e-6)
        check_op("test_softsign", backend=OnnxRuntimeBackend())
    finally:
        rg.unregister_plugin(plugin)
        rg.OPS.pop("test_softsign", None)  # later tests that walk every op must not meet it


def test_missing_translator_names_op_and_plugin():
    rg.OPS.register(OpDef("test_untranslated", infer=lambda ts: ts[0], reference=lambda x: x,
                          plugin="rustyasg-untranslated"), replace=True)
    try:
        with pytest.raises(rox.MissingTranslatorError,
                           match=r"'test_untranslated' \(an op of 'rustyasg-untranslated'\).*pip install -U rustyasg-untranslated"):
            rox.export(lambda x: rg.apply("test_untranslated", x), [np.zeros((2, 2), np.float32)])
    finally:
        rg.OPS.pop("test_untranslated", None)
