"""RustyASG on the web: export a model's inference program for WebGPU browsers.

``rg.web.export(model, example_inputs, out_dir)`` writes the WGSL kernels the wgpu backend
generates, the schedule that runs them (``model.json``), the weights (safetensors) and a
small JavaScript runtime; a page then runs the model on ``navigator.gpu``::

    import RustyASG from "./rustyasg.js";
    const model = await RustyASG.load("./");
    const out = await model.run({x: pixels});      // {output: Float32Array}

``rustyasg serve-web out_dir`` serves such a folder on 127.0.0.1 (WebGPU needs a secure
context; loopback counts as one).

Example::

    import rustyasg.core as rg
    rg.web.export(model, x, "out/")
"""

from .export import WebExport, WebExportError, export, inference_program, runtime_dir
from .native import NativeRunner

__all__ = ["export", "inference_program", "runtime_dir", "WebExport", "WebExportError", "NativeRunner"]

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-web")  # from the package metadata
