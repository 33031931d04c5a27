"""The cpu backend as a plugin host: default selection, missing kernels, plugin kernels that fuse."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core import plugins
from rustyasg.core.errors import MissingKernelError
from rustyasg.core.hookspecs import hookimpl
from rustyasg.core.registry import Example, InputSpec, TensorType
from rustyasg.core.testing import check_op
from rustyasg.cpu import CpuBackend
from rustyasg.cpu.kernels.protocol import Elementwise


def _same(ts):
    return TensorType(ts[0].shape, ts[0].dtype)


class SoftsignPlugin:
    """Adds two ops: ``test_softsign`` with a cpu kernel (a formula) and ``test_nokernel`` without one."""

    @hookimpl
    def rustyasg_register_ops(self, registry):
        if "test_softsign" not in registry:
            rg.defop("test_softsign", infer=_same, reference=lambda x: x / (1.0 + np.abs(x)),
                     grad=lambda g, y, x: (g / ((1.0 + rg.abs(x)) * (1.0 + rg.abs(x))),), kind="elementwise",
                     examples=(Example((InputSpec((3, 4), away_from=(0.0,)),)),), plugin="test-softsign",
                     registry=registry)
            rg.defop("test_nokernel", infer=_same, reference=lambda x: x, kind="elementwise",
                     plugin="test-softsign", registry=registry)

    @hookimpl
    def rustyasg_register_kernels(self, backend, registry):
        if backend == "cpu":
            registry.register("cpu", "test_softsign", Elementwise("{0} / ({T}(1) + abs({0}))"))


@pytest.fixture(scope="module")
def softsign():
    plugin = SoftsignPlugin()
    plugins.register_plugin(plugin, "test-softsign")
    yield plugin
    plugins.unregister_plugin(plugin)
    for name in ("test_softsign", "test_nokernel"):  # the registry keeps a plugin's ops: later tests see all ops
        rg.OPS.pop(name, None)


def test_cpu_is_the_default_backend(monkeypatch):
    monkeypatch.delenv("RUSTYASG_BACKEND", raising=False)
    backend = rg.get_backend()
    assert isinstance(backend, CpuBackend) and backend.name == "cpu"
    assert backend.startup_seconds >= 0


def test_an_op_without_cpu_kernel_is_an_error_naming_it_and_its_source(softsign):
    x = rg.input((3,), "float32", name="x")
    y = rg.apply("test_nokernel", x) * 2.0
    f = rg.function([x], y, backend="cpu")
    with pytest.raises(MissingKernelError, match=r"test_nokernel \(created at .*test_backend.py:\d+\)"):
        f(np.zeros(3, np.float32))


def test_a_plugin_formula_fuses_with_builtin_ops_and_conforms(softsign):
    x = rg.input((4, 6), "float32", name="x")
    y = rg.exp(rg.apply("test_softsign", x * 3.0)) - 1.0
    f = rg.function([x], y, backend="cpu")
    xv = np.linspace(-2, 2, 24, dtype=np.float32).reshape(4, 6)
    (group,) = f.lower(xv).plan.groups
    members = group.members
    assert len(members) == 4
    np.testing.assert_allclose(f(xv), np.exp(3 * xv / (1 + np.abs(3 * xv))) - 1, rtol=1e-5)
    check_op("test_softsign", backend="cpu", dtype="float32")
    check_op("test_softsign", backend="cpu", dtype="float64")


def test_integer_and_bool_programs_run():
    i = rg.input((5,), "int64", name="i")
    j = rg.input((5,), "int32", name="j")
    f = rg.function([i, j], [(i * 3 + 1) // 2 % 4, rg.where(i > 2, i, -i), (j - 1).astype("int64") * i],
                    backend="cpu")
    iv, jv = np.arange(5), np.arange(5, dtype=np.int32)
    a, b, c = f(iv, jv)
    np.testing.assert_array_equal(a, (iv * 3 + 1) // 2 % 4)
    np.testing.assert_array_equal(b, np.where(iv > 2, iv, -iv))
    np.testing.assert_array_equal(c, (jv - 1) * iv)


def test_describe_lists_one_line_per_step(rng):
    x = rg.input((8, 4), "float32", name="x")
    w = rg.variable(rng.standard_normal((4, 3)).astype(np.float32), name="w")
    f = rg.function([x], rg.relu(x @ w + 1.0).sum(), backend="cpu")
    exe = f.compile(np.zeros((8, 4), np.float32))
    lines = exe.describe().splitlines()
    assert len(lines) == exe.memory_report()["steps"] and lines[0].startswith("blas.matmul")
