"""Plugin discovery (pluggy) and backend selection (stevedore)."""

import importlib.metadata as md
import subprocess
import sys
import warnings

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core import backends, plugins
from rustyasg.core.hookspecs import hookimpl
from rustyasg.core.registry import Example, InputSpec, TensorType


class CubePlugin:
    """A plugin object adding one op, registered in-process as tests do."""

    @hookimpl
    def rustyasg_register_ops(self, registry):
        if "test_cube" not in registry:
            rg.defop("test_cube", infer=lambda ts: TensorType(ts[0].shape, ts[0].dtype),
                     reference=lambda x: x ** 3, grad=lambda g, y, x: (g * 3.0 * x * x,),
                     kind="elementwise", examples=(Example((InputSpec((3,)),)),), plugin="test-cube",
                     registry=registry, doc="x**3")


@pytest.fixture
def cube_plugin():
    plugin = CubePlugin()
    plugins.register_plugin(plugin, "test-cube")
    yield plugin
    plugins.unregister_plugin(plugin)
    rg.OPS.pop("test_cube", None)  # ops stay registered: drop it so later op-coverage checks never see it


def test_in_process_plugin_adds_an_op_usable_with_gradients(cube_plugin):
    x = rg.input((3,), "float64", name="x")
    y = rg.apply("test_cube", x)
    (g,) = rg.grad(y.sum(), [x])
    out, gv = rg.function([x], [y, g], backend="reference")(np.array([1.0, 2.0, -1.0]))
    np.testing.assert_allclose(out, [1, 8, -1])
    np.testing.assert_allclose(gv, [3, 12, 3])
    from rustyasg.core.testing import check_op

    check_op("test_cube", backend="reference", dtype="float64")
    assert rg.OPS["test_cube"].plugin == "test-cube"


GOOD_PLUGIN = """
from rustyasg.core.hookspecs import hookimpl

@hookimpl
def rustyasg_register_passes(registry):
    registry.register("good_plugin_noop", lambda program: program, 90)
"""


def test_broken_plugin_warns_and_others_load(monkeypatch, tmp_path):
    (tmp_path / "rg_good_plugin_for_test.py").write_text(GOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    good = md.EntryPoint("fine-plugin", "rg_good_plugin_for_test", plugins.ENTRY_POINT_GROUP)
    broken = md.EntryPoint("broken-plugin", "no_such_module_for_rustyasg.plugin", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "_entry_points", lambda: [broken, good])
    monkeypatch.setattr(plugins, "_pm", None)
    monkeypatch.setattr(plugins, "_failed", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = plugins.plugin_manager()
    messages = [str(w.message) for w in caught]
    assert any('plugin "broken-plugin" failed to load' in m and "ModuleNotFoundError" in m for m in messages)
    assert "broken-plugin" in plugins.failed_plugins()
    names = [n for n, _ in pm.list_name_plugin()]
    assert "fine-plugin" in names and "rustyasg.core.builtin" in names
    assert "good_plugin_noop" in rg.PASSES
    rg.PASSES.pop("good_plugin_noop")


def test_unknown_backend_lists_installed_and_how_to_install(monkeypatch):
    with pytest.raises(rg.BackendError) as info:
        backends.get_backend("no-such-backend")
    msg = str(info.value)
    assert "no-such-backend" in msg and "reference" in msg and "Installed backends" in msg


def test_missing_known_backend_names_pip_command(monkeypatch):
    monkeypatch.setattr(backends, "_driver_manager", lambda name: None)
    monkeypatch.setattr(backends, "_instances", {})
    with pytest.raises(rg.BackendError, match="pip install rustyasg-wgpu"):
        backends.get_backend("wgpu")


def test_environment_variable_selects_backend(monkeypatch):
    monkeypatch.setenv("RUSTYASG_BACKEND", "reference")
    assert backends.get_backend().name == "reference"
    monkeypatch.setenv("RUSTYASG_BACKEND", "nonexistent")
    with pytest.raises(rg.BackendError, match="RUSTYASG_BACKEND"):
        backends.get_backend()


def test_stevedore_test_instance_driver():
    from stevedore import driver
    from stevedore.extension import Extension

    from rustyasg.core.reference import ReferenceBackend

    ext = Extension("reference", None, ReferenceBackend, ReferenceBackend())
    mgr = driver.DriverManager.make_test_instance(ext, namespace=backends.NAMESPACE)
    assert mgr.driver.name == "reference"


def test_cli_lists_backends_plugins_and_ops():
    out = subprocess.run([sys.executable, "-m", "rustyasg.core.cli", "plugins"], capture_output=True, text=True,
                         check=True).stdout
    assert "backends:" in out and "reference" in out and "rustyasg.core.builtin" in out
    line = next(l for l in out.splitlines() if l.strip().startswith("matmul "))
    assert "reference" in line


class HelloCommandPlugin:
    """A plugin adding a ``rustyasg`` subcommand, as the parts do."""

    @hookimpl
    def rustyasg_add_commands(self, subparsers):
        p = subparsers.add_parser("hello-test", help="greet")
        p.add_argument("who")
        p.set_defaults(handler=lambda args: print(f"hello {args.who}") or 3)


def test_plugin_adds_a_cli_subcommand(capsys):
    from rustyasg.core import cli

    plugin = HelloCommandPlugin()
    plugins.register_plugin(plugin, "hello-test")
    try:
        assert cli.main(["hello-test", "world"]) == 3
        assert capsys.readouterr().out == "hello world\n"
    finally:
        plugins.unregister_plugin(plugin)
    with pytest.raises(SystemExit):
        cli.main(["hello-test", "world"])


def test_part_api_names_resolve_through_entry_points(monkeypatch):
    from rustyasg.core import part_api
    from rustyasg.core.errors import MissingPartError

    real = md.entry_points
    fake = md.EntryPoint(name="test_api_dumps", value="json:dumps", group=part_api.GROUP)
    monkeypatch.setattr(part_api.md, "entry_points",
                        lambda group=None: [fake] if group == part_api.GROUP else real(group=group))
    import json

    assert rg.test_api_dumps is json.dumps
    monkeypatch.delitem(vars(rg), "test_api_dumps")
    monkeypatch.setattr(part_api, "KNOWN_NAMES", {"test_missing": "rustyasg-test-missing"})
    with pytest.raises(MissingPartError, match="pip install rustyasg-test-missing"):
        rg.test_missing
    with pytest.raises(AttributeError, match="no attribute 'definitely_not_a_name'"):
        rg.definitely_not_a_name
