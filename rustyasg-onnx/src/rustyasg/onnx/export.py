"""``export``: a compiled function, a module or a traced Python function to an ``.onnx`` file.

The graph exported is the optimised symbolic program (simplification, constant folding, CSE,
DCE): symbolic dims (the batch size) become ONNX dynamic axes, variables become initializers
named by their module path (``layer1.0.conv1.weight``), and the model is checked with
``onnx.checker.check_model(full_check=True)``. Models whose initializers exceed 2 GB are written
with external data (``<file>.data`` beside the ``.onnx`` file).

:func:`export_training` writes the *training step*: forward and gradient graph in one model
whose outputs are the loss and the gradient of every parameter (parameters are initializers
and also graph inputs, so a runtime can feed the current weights).
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import onnx

import rustyasg.core as rg
from rustyasg.core.function import Function
from rustyasg.core.graph import Tensor
from rustyasg.core.program import Program
from rustyasg.core.symbolic_program import optimise, symbolic_inputs as _symbolic_inputs, trace, trace_function

from .translate import DEFAULT_OPSET, OnnxExportError, program_to_model

#: Above this many bytes of initializers the model is saved with external data (protobuf's limit is 2 GB).
EXTERNAL_DATA_THRESHOLD = 2 * 1024 ** 3 - 64 * 1024 ** 2


def symbolic_inputs(example_inputs, dynamic_batch=True, names=None):
    """:func:`rustyasg.core.symbolic_program.symbolic_inputs`, with its errors as :class:`OnnxExportError`."""
    try:
        return _symbolic_inputs(example_inputs, dynamic_batch, names)
    except TypeError as exc:
        raise OnnxExportError(str(exc)) from None


def _outputs_list(result) -> list:
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, (list, tuple)) and all(isinstance(t, Tensor) for t in result):
        return list(result)
    raise OnnxExportError(f"the exported function must return a tensor or a list/tuple of tensors, "
                          f"got {type(result).__name__}")


def variable_names(model) -> Dict[int, str]:
    """Variable id -> state-dict name for a module (``{}`` for anything else)."""
    named = {}
    for attr in ("named_parameters", "named_buffers"):
        fn = getattr(model, attr, None)
        if callable(fn):
            named.update({v.id: name for name, v in fn().items()})
    return named


def build_program(fn_or_model, example_inputs=None, dynamic_batch: bool = True,
                  input_names: Optional[Sequence[str]] = None) -> Tuple[Program, Dict[int, str]]:
    """The optimised symbolic program of a Function, a module or a Python function, and variable names."""
    if isinstance(fn_or_model, Function):
        return optimise(trace_function(fn_or_model)), {}
    if not callable(fn_or_model):
        raise OnnxExportError(f"cannot export a {type(fn_or_model).__name__}: pass a compiled function "
                              f"(rg.function), a module or a Python function of tensors")
    if example_inputs is None:
        raise OnnxExportError("exporting a module or a Python function needs example_inputs (arrays or rg.input tensors)")
    if not isinstance(example_inputs, (list, tuple)):
        example_inputs = (example_inputs,)
    inputs = symbolic_inputs(example_inputs, dynamic_batch, input_names)
    outputs = _outputs_list(fn_or_model(*inputs))
    return optimise(trace(inputs, outputs)), variable_names(fn_or_model)


def export(fn_or_model, example_inputs=None, path: Union[str, os.PathLike, None] = None, opset: int = DEFAULT_OPSET, *,
           input_names: Optional[Sequence[str]] = None, output_names: Optional[Sequence[str]] = None,
           dynamic_batch: bool = True, external_data: Optional[bool] = None) -> onnx.ModelProto:
    """Export to ONNX and return the model; write it to ``path`` when given.

    ``fn_or_model`` is a compiled function (``rg.function``; its variable updates become extra
    outputs named ``<variable>.new``), a module, or a Python function of tensors. For the last two,
    ``example_inputs`` gives each input's shape and dtype (axis 0 becomes the dynamic ``batch``
    axis unless ``dynamic_batch=False``; pass ``rg.input`` tensors to choose the dynamic axes).

    >>> import numpy as np, rustyasg.core as rg, rustyasg.onnx
    >>> m = rustyasg.onnx.export(lambda x: rg.relu(x) + 1.0, [np.zeros((2, 3), np.float32)])
    >>> [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    ['batch', 3]
    """
    program, names = build_program(fn_or_model, example_inputs, dynamic_batch, input_names)
    model = program_to_model(program, opset, input_names, output_names, variable_names=names)
    if path is None:
        onnx.checker.check_model(model, full_check=True)
        return model
    save(model, path, external_data)
    return model


def export_training(model, loss_fn: Callable, example_inputs: Sequence, path: Union[str, os.PathLike, None] = None,
                    opset: int = DEFAULT_OPSET, *, dynamic_batch: bool = True, params=None,
                    external_data: Optional[bool] = None) -> onnx.ModelProto:
    """Export one training step: outputs ``loss`` and ``grad.<parameter name>`` for every parameter.

    ``loss_fn(model_output, *rest) -> scalar`` with ``example_inputs = (model_input, *rest)``
    (targets, for example). ``params`` defaults to the module's trainable parameters. The
    parameters are initializers holding the current weights and also graph inputs.

    >>> import numpy as np, rustyasg.nn as nn, rustyasg.onnx
    >>> from rustyasg.nn import losses
    >>> m = rustyasg.onnx.export_training(nn.Linear(3, 2), losses.mse_loss,
    ...     [np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)])
    >>> [o.name for o in m.graph.output]
    ['loss', 'grad.weight', 'grad.bias']
    """
    inputs = symbolic_inputs(example_inputs, dynamic_batch)
    loss = loss_fn(model(inputs[0]), *inputs[1:])
    if not isinstance(loss, Tensor) or loss.shape != ():
        raise OnnxExportError(f"loss_fn must return a scalar tensor, got {loss!r}")
    names = variable_names(model)
    params = list(params) if params is not None else [p for p in model.parameters() if p.trainable]
    grads = rg.grad(loss, params)
    program = optimise(trace(inputs, [loss] + list(grads)))
    labels = ["loss"] + [f"grad.{names.get(p.id, p.name)}" for p in params]
    onnx_model = program_to_model(program, opset, None, labels, variables_as_inputs=True, variable_names=names)
    if path is None:
        onnx.checker.check_model(onnx_model, full_check=True)
    else:
        save(onnx_model, path, external_data)
    return onnx_model


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) or onnx.numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def save(model: onnx.ModelProto, path: Union[str, os.PathLike], external_data: Optional[bool] = None) -> None:
    """Write ``model`` to ``path`` atomically (temporary file + ``os.replace``), then check it fully.

    ``external_data=None`` stores the initializers in ``<file>.data`` only when they exceed 2 GB.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OnnxExportError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    if external_data is None:
        external_data = initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        if external_data:
            onnx.save_model(model, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=os.path.basename(path) + ".data", size_threshold=1024)
        else:
            onnx.save_model(model, tmp)
        onnx.checker.check_model(tmp, full_check=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
