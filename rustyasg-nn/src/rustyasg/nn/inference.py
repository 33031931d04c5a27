"""Inference mode: a module's forward pass alone, compiled with its weights as constants.

``rg.inference(model, example_input)`` traces
the forward pass in evaluation mode and compiles it with everything training needs taken out:

- no gradient graph and no state updates (dropout and batch-statistic branches are gone with
  eval mode; ``stop_gradient`` markers are dropped);
- parameters and buffers become constants, so the compiler folds what depends on weights
  alone (transposed weights, batch-norm scale and shift) once, at compile time;
- batch normalization is folded into the preceding convolution or linear layer by
  :func:`fold_channel_scales` (``conv(x, W) * s + t`` becomes ``conv(x, W * s) + t``);
- the backend plans memory for the forward pass only.

The result is a :class:`~rustyasg.core.function.Function` with a symbolic batch axis; its
``save(path)`` writes a saved program that ``rg.load_program`` runs without the model's code.

Example:
    >>> import numpy as np, rustyasg.core as rg, rustyasg.nn as nn
    >>> model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    >>> fn = rg.inference(model, np.zeros((2, 3), np.float32), backend="reference")
    >>> fn(np.ones((5, 3), np.float32)).shape
    (5, 4)
    >>> sorted({i.op for i in fn.lower(np.ones((5, 3), np.float32)).instrs})
    ['add', 'constant', 'input', 'matmul', 'relu']
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor
from rustyasg.core.passes.fold import constant_fold
from rustyasg.core.passes.rewrite import replace_uses
from rustyasg.core.program import Program
from rustyasg.core.rng import _AUTO_ADVANCE
from rustyasg.core.shapes import Dim
from rustyasg.core.symbolic_program import SymbolicInstr, optimise, symbolic_inputs, to_graph, trace

#: Ops that only steer differentiation; a forward-only program drops them.
GRADIENT_MARKERS = ("stop_gradient", "identity")


def weights_as_constants(program: Program) -> Program:
    """Turn every variable (except auto-advancing RNG states) into a constant holding its current value."""
    for ins in program.instrs:
        var = program.variables.get(ins.id)
        if var is None or var.id in _AUTO_ADVANCE:
            continue
        value = var.value()
        value.setflags(write=False)
        ins.op, ins.inputs, ins.attrs = "constant", (), {"value": value}
        del program.variables[ins.id]
    return program


def drop_gradient_markers(program: Program) -> Program:
    mapping = {i.id: i.inputs[0] for i in program.instrs if i.op in GRADIENT_MARKERS}
    program.instrs = [i for i in program.instrs if i.id not in mapping]
    return replace_uses(program, mapping)


def fold_weights(program: Program) -> Program:
    """Constant folding without a size limit: whatever depends on the weights alone is computed once."""
    return constant_fold(program, max_elements=np.iinfo(np.int64).max)


def _per_channel(c: np.ndarray, out_shape: tuple, axis: int) -> Optional[np.ndarray]:
    """``c``'s values as a ``(C,)`` vector if, broadcast against ``out_shape``, it varies along ``axis`` only."""
    channels = out_shape[axis]
    if isinstance(channels, Dim) or c.ndim > len(out_shape):
        return None
    full = (1,) * (len(out_shape) - c.ndim) + c.shape
    if any(n != 1 for i, n in enumerate(full) if i != axis) or full[axis] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,))


def fold_channel_scales(program: Program) -> Program:
    """Fold a per-output-channel constant scale into the constant weight of a conv2d or matmul.

    ``conv2d(x, W) * s`` -> ``conv2d(x, W * s)`` and ``(conv2d(x, W) + b) * s`` -> ``conv2d(x, W*s) + b*s``
    (likewise for ``x @ W`` with a 2-D ``W`` scaled along its columns). With weights as constants
    this is batch norm folded into the layer before it: eval-mode batch norm is exactly such a
    scale followed by a shift, and the shift stays as the bias.
    """
    by_id = program.by_id()
    users = program.users()
    roots = set(program.roots())
    next_id = [program.new_id()]
    mapping: Dict[int, int] = {}
    added = []

    def const(i):
        ins = by_id.get(i)
        return ins.attrs["value"] if ins is not None and ins.op == "constant" else None

    def single_use(i):
        return len(users.get(i, ())) == 1 and i not in roots

    def new_const(value, like):
        ins = SymbolicInstr(next_id[0], "constant", (), {"value": value}, tuple(value.shape), like.dtype)
        next_id[0] += 1
        by_id[ins.id] = ins
        added.append(ins)
        return ins.id

    def layer_of(i):
        """``(layer instr, channel axis, weight)`` if ``i`` is a conv2d/matmul with a constant weight."""
        ins = by_id[i]
        if ins.op == "conv2d" and const(ins.inputs[1]) is not None:
            return ins, 1, const(ins.inputs[1])
        if ins.op == "matmul" and const(ins.inputs[1]) is not None and const(ins.inputs[1]).ndim == 2:
            return ins, len(ins.shape) - 1, const(ins.inputs[1])
        return None

    for ins in program.instrs:
        if ins.op != "mul" or ins.id in mapping:
            continue
        a, c = ins.inputs
        if const(a) is not None:
            a, c = c, a
        scale = const(c)
        if scale is None or not single_use(a) or by_id[a].shape != ins.shape:
            continue
        bias_add, bias = None, None
        inner = by_id[a]
        if inner.op == "add":
            x, b = inner.inputs
            if const(x) is not None:
                x, b = b, x
            if const(b) is None or not single_use(x):
                continue
            bias_add, bias, inner = inner, const(b), by_id[x]
        found = layer_of(inner.id)
        if found is None:
            continue
        layer, axis, weight = found
        s = _per_channel(scale, layer.shape, axis)
        if s is None or (bias is not None and _per_channel(bias, layer.shape, axis) is None):
            continue
        view = (-1, 1, 1, 1) if layer.op == "conv2d" else (1, -1)
        layer.inputs = (layer.inputs[0], new_const((weight * s.reshape(view)).astype(weight.dtype), by_id[layer.inputs[1]]))
        if bias_add is not None:
            scaled = (np.broadcast_to(bias, bias.shape) * scale).astype(bias.dtype)
            bias_add.inputs = (layer.id, new_const(scaled, by_id[b]))
        mapping[ins.id] = a
    if not mapping:
        return program
    program.instrs = added + [i for i in program.instrs if i.id not in mapping]  # constants first: still in order
    return replace_uses(program, mapping)


INFERENCE_PASSES = ((15, drop_gradient_markers), (21, fold_weights), (33, fold_channel_scales), (34, fold_weights))


def inference_program(model, example_inputs: Sequence, dynamic_batch: bool = True) -> tuple:
    """``(inputs, outputs)``: the optimised, weight-constant forward graph of ``model`` in eval mode."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        inputs = symbolic_inputs(example_inputs, dynamic_batch)
        result = model(*inputs)
    finally:
        if was_training:
            model.train(True)
    single = isinstance(result, Tensor)
    outputs = [result] if single else list(result)
    program = weights_as_constants(trace(inputs, outputs))
    program = optimise(program, extra=INFERENCE_PASSES)
    inputs, outputs, updates = to_graph(program)
    return inputs, (outputs[0] if single else outputs), updates


def inference(model, *example_inputs, backend=None, dynamic_batch: bool = True) -> rg.Function:
    """Compile ``model``'s forward pass for inference (see the module docstring).

    ``example_inputs`` are arrays (their axis 0 becomes a symbolic batch unless
    ``dynamic_batch=False``) or ``rg.input`` tensors. The model's weights are read now: later
    changes to them do not reach the compiled function (compile it again).
    """
    if not example_inputs:
        raise TypeError("inference(model, *example_inputs): give one example input (an array or rg.input) "
                        "per forward argument")
    inputs, outputs, updates = inference_program(model, example_inputs, dynamic_batch)
    return rg.function(inputs, outputs, updates=updates, backend=backend, name=f"{type(model).__name__}.inference")
