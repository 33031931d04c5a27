"""ONNX export for RustyASG (``rg.onnx``): models, functions and whole training steps.

- :func:`export` — a compiled function, a module or a Python function to ONNX (opset 18 by
  default), with dynamic axes for symbolic dims and parameters as initializers.
- :func:`export_training` — forward + gradient graph as one model: outputs loss and gradients.
- Translators: one per op, registered through the ``rustyasg_register_exporters`` plugin hook
  (``registry.register("onnx", op, fn)``; see :mod:`rustyasg.onnx.builder` for ``fn``);
  :func:`register_translator` registers one in-process.
- The ``onnxruntime`` backend runs any compiled program in onnxruntime.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> model = rg.onnx.export(lambda x: rg.tanh(x), [np.zeros((1, 4), np.float32)])
    >>> model.opset_import[0].version
    18
"""

from .export import export, export_training, save
from .translate import DEFAULT_OPSET, MissingTranslatorError, OnnxExportError, program_to_model, register_translator

__all__ = ["export", "export_training", "save", "program_to_model", "register_translator", "OnnxExportError",
           "MissingTranslatorError", "DEFAULT_OPSET"]

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-onnx")  # from the package metadata
