"""``onnxruntime`` as a RustyASG backend: each compiled program is exported to ONNX and run by ORT.

It makes the conformance kit check every translator, forward and gradient graphs alike
(``rustyasg check onnxruntime``), and lets ``rg.function(..., backend="onnxruntime")`` run a
training step in onnxruntime. Variables are graph inputs fed from host copies; their updates
are extra outputs written back after each run.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None,), name="x")
    >>> rg.function([x], rg.exp(x), backend="onnxruntime")(np.zeros(2, np.float32))
    array([1., 1.], dtype=float32)
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np

from rustyasg.core.executor import Backend, Executable
from rustyasg.core.program import Program

from .translate import DEFAULT_OPSET, program_to_model


def session_options(threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return opts


class OnnxRuntimeExecutable(Executable):
    def __init__(self, backend: "OnnxRuntimeBackend", program: Program):
        import onnxruntime as ort

        self.backend = backend
        self.program = program
        self.variables = [var for _, var in sorted(program.variables.items())]
        self.model = program_to_model(program, opset=backend.opset, variables_as_inputs=True)
        graph = self.model.graph
        present = program.by_id()
        self.used = [k for k, iid in enumerate(program.inputs) if iid in present]
        n_in = len(self.used)
        self.input_names = [i.name for i in graph.input[:n_in]]
        self.variable_names = [i.name for i in graph.input[n_in:]]
        self.output_names = [o.name for o in graph.output]
        self.session = ort.InferenceSession(self.model.SerializeToString(), session_options(),
                                            providers=["CPUExecutionProvider"])

    def run(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        feed = dict(zip(self.input_names, (inputs[k] for k in self.used)))
        feed.update({n: self.backend.resident(v) for n, v in zip(self.variable_names, self.variables)})
        results = self.session.run(self.output_names, feed)
        n_out = len(self.program.outputs)
        for (var, _), value in zip(self.program.updates, results[n_out:]):
            self.backend.set_resident(var, np.asarray(value, dtype=var.dtype))
        return results[:n_out]


class OnnxRuntimeBackend(Backend):
    """Runs programs in onnxruntime (CPU execution provider) through the ONNX exporter."""

    name = "onnxruntime"

    def __init__(self, opset: int = DEFAULT_OPSET):
        super().__init__()
        self.opset = opset

    def compile(self, program: Program) -> OnnxRuntimeExecutable:
        return OnnxRuntimeExecutable(self, program)

    def to_device(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True)

    def to_host(self, handle: np.ndarray) -> np.ndarray:
        return handle
