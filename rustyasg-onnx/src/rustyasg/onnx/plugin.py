"""The rustyasg-onnx plugin: ONNX translators of every core op (``rustyasg_register_exporters``) and the
``rustyasg onnx`` command, which converts a saved program to ONNX without the code that built it::

    rustyasg onnx model.rgp model.onnx --opset 18
"""

from __future__ import annotations

from rustyasg.core.hookspecs import hookimpl


@hookimpl
def rustyasg_register_exporters(format, registry):
    if format != "onnx":
        return
    from . import (ops_attention, ops_coverage, ops_elementwise, ops_movement, ops_nn, ops_random, ops_reduce,
                   ops_scatter, ops_svd)

    for module in (ops_elementwise, ops_reduce, ops_movement, ops_nn, ops_random, ops_scatter, ops_coverage, ops_svd,
                   ops_attention):
        for op, fn in module.TRANSLATORS.items():
            registry.register("onnx", op, fn)


@hookimpl
def rustyasg_add_commands(subparsers):
    p = subparsers.add_parser("onnx", help="convert a saved program (Function.save) to an ONNX model")
    p.add_argument("program", help="the saved program file")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--external-data", action="store_true", help="weights in <output>.data beside the model")
    p.set_defaults(handler=_convert)


def _convert(args) -> int:
    from rustyasg.core.saved_function import load_program

    from .export import export

    model = export(load_program(args.program, backend="reference"), path=args.output, opset=args.opset,
                   external_data=args.external_data or None)
    dims = ["x".join(d.dim_param or str(d.dim_value) for d in i.type.tensor_type.shape.dim) for i in model.graph.input]
    print(f"wrote {args.output}: inputs {', '.join(f'{i.name}[{d}]' for i, d in zip(model.graph.input, dims))}, "
          f"{len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers")
    return 0
