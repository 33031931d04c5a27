"""The rustyasg-onnx plugin: ONNX translators of every core op, through ``rustyasg_register_exporters``."""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_register_exporters(format, registry):
    if format != "onnx":
        return
    from . import ops_elementwise, ops_movement, ops_nn, ops_random, ops_reduce

    for module in (ops_elementwise, ops_reduce, ops_movement, ops_nn, ops_random):
        for op, fn in module.TRANSLATORS.items():
            registry.register("onnx", op, fn)
