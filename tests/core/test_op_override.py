"""A plugin cannot silently replace another distribution's op: ``replace=True`` only replaces its own,
and a takeover through ``registry.override`` warns and is listed by ``rustyasg plugins``."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core import cli, plugins
from rustyasg.core.hookspecs import hookimpl
from rustyasg.core.registry import OpDef, OpOverrideWarning, TensorType


def _softplus_variant(plugin: str) -> OpDef:
    core = rg.OPS["softplus"]
    # Without the linear cut-off above ``threshold``: the same function, a distinct declaration.
    return OpDef("softplus", infer=core.infer, reference=lambda x, beta, threshold: np.logaddexp(0.0, beta * x) / beta,
                 grad=core.grad,
                 attrs=core.attrs, kind=core.kind, plugin=plugin, doc=core.doc)


@pytest.fixture
def restore_softplus():
    original = rg.OPS["softplus"]
    yield
    rg.OPS["softplus"] = original
    rg.OPS.overrides.pop("softplus", None)


class ReplacingPlugin:
    @hookimpl
    def rustyasg_register_ops(self, registry):
        registry.register(_softplus_variant("rustyasg-sneaky"), replace=True)


class OverridingPlugin:
    @hookimpl
    def rustyasg_register_ops(self, registry):
        registry.override(_softplus_variant("rustyasg-softplus-exact"), reason="logaddexp reference")


def test_replace_true_cannot_take_over_a_core_op(restore_softplus):
    plugin = ReplacingPlugin()
    core = rg.OPS["softplus"]
    with pytest.warns(plugins.PluginLoadWarning, match=r'plugin "test-sneaky" failed to register: ValueError: op '
                                                        r"'softplus' is registered by rustyasg.core; rustyasg-sneaky "
                                                        r"may not replace it with replace=True.*registry.override"):
        plugins.register_plugin(plugin, "test-sneaky")
    try:
        assert rg.OPS["softplus"] is core and "softplus" not in rg.OPS.overrides
    finally:
        plugins.unregister_plugin(plugin)


def test_override_warns_and_is_listed_by_rustyasg_plugins(restore_softplus, capsys):
    plugin = OverridingPlugin()
    with pytest.warns(OpOverrideWarning, match="rustyasg-softplus-exact overrides op softplus of rustyasg.core: "
                                               "logaddexp reference"):
        plugins.register_plugin(plugin, "test-override")
    try:
        assert rg.OPS["softplus"].plugin == "rustyasg-softplus-exact"
        x = rg.input((3,), "float64", name="x")
        out = rg.function([x], rg.softplus(x), backend="reference")(np.array([-50.0, 0.0, 50.0]))
        np.testing.assert_allclose(out, np.logaddexp(0.0, [-50.0, 0.0, 50.0]))
        assert cli.main(["plugins"]) == 0
        listing = capsys.readouterr().out
        line = next(l for l in listing.splitlines() if l.strip().startswith("softplus "))
        assert line.split()[-3:] == ["rustyasg-softplus-exact", "(OVERRIDES", "rustyasg.core)"], line
        assert "softplus: rustyasg.core -> rustyasg-softplus-exact: logaddexp reference" in listing
    finally:
        plugins.unregister_plugin(plugin)


def test_same_distribution_may_redefine_its_own_op_and_override_needs_a_reason():
    reg = type(rg.OPS)()
    first = OpDef("demo_twice", infer=lambda ts: TensorType(ts[0].shape, ts[0].dtype), reference=lambda x: 2 * x,
                  plugin="pkg-a")
    reg.register(first)
    again = OpDef("demo_twice", infer=first.infer, reference=lambda x: x + x, plugin="pkg-a")
    with pytest.raises(ValueError, match="already registered by pkg-a"):
        reg.register(again)
    assert reg.register(again, replace=True) is reg["demo_twice"] and not reg.overrides
    with pytest.raises(ValueError, match="needs a reason"):
        reg.override(OpDef("demo_twice", infer=first.infer, reference=first.reference, plugin="pkg-b"), reason=" ")
