"""The plugin module named by this package's ``rustyasg.plugins`` entry point.

One hook, and only the core's declared backend API (:mod:`rustyasg.core.backend_api`):
the op declaration (for every backend: shape rule, gradient rule, float64 reference,
conformance examples) and its row of the elementwise table (how a backend computes one
element: a numba and a WGSL expression). Every installed backend renders the row into
its own kernel, fused with the built-in ops; the plugin imports no backend.
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.backend_api import EwRow, Example, InputSpec, OpDef, TensorType, add_row, hookimpl


def _infer(types):
    (x,) = types
    if x.dtype.kind != "f":
        raise TypeError(f"softsign needs a floating-point tensor, got {x.dtype}")
    return TensorType(x.shape, x.dtype)


def _reference(x):
    return x / (1.0 + np.abs(x))


def _grad(g, y, x):
    # d/dx x/(1+|x|) = 1/(1+|x|)^2, written with core ops so it is differentiable again.
    denom = 1.0 + abs(x)
    return (g / (denom * denom),)


SOFTSIGN = OpDef(
    name="softsign", infer=_infer, reference=_reference, grad=_grad, kind="elementwise",
    doc="softsign(x) = x / (1 + |x|)", plugin="rustyasg-softsign",
    examples=(Example((InputSpec((4, 5), low=-3.0, high=3.0, away_from=(0.0,)),)),),
)
ROW = EwRow("softsign", 1, numba="{0} / ({T}(1) + abs({0}))", wgsl="({0} / ({T}(1.0) + abs({0})))")


@hookimpl
def rustyasg_register_ops(registry):
    # A new name. Taking over an op another distribution declared is never silent: that needs
    # registry.override(opdef, reason=...), which warns and is listed by `rustyasg plugins`.
    registry.register(SOFTSIGN)
    add_row(ROW)
