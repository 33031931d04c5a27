"""``rg.web.export``: a model's inference program as files a browser runs on WebGPU.

The output folder holds:

- ``model.json`` — the schedule: inputs, outputs, buffers, kernels, dispatches, copies
  (:mod:`rustyasg.web.schedule`);
- ``kernels/NNNN.wgsl`` — the WGSL the wgpu backend generated for this program;
- ``weights.safetensors`` — variables by name, and the compiler's constants;
- ``rustyasg.js`` (+ its modules) — the JavaScript runtime (an ES module, no framework)::

      import RustyASG from "./rustyasg.js";
      const model = await RustyASG.load("./");
      const out = await model.run({x: new Float32Array(784)});   // {output: Float32Array}

Shapes are those of ``example_inputs``: a browser program is static, like a compiled step.

Example::

    import numpy as np, rustyasg.core as rg, rustyasg.nn as nn
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    rg.web.export(model, {"x": np.zeros((1, 4), np.float32)}, "out/")
    # WebExport('out', inputs=['x'], outputs=['output'], dispatches=2)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from rustyasg.core.errors import RustyASGError
from rustyasg.core.function import Function
from rustyasg.core.graph import Tensor, input as make_input
from rustyasg.core.passes import run_passes
from rustyasg.core.program import Program, lower

from .capture import compile_for_web
from .schedule import build_schedule


class WebExportError(RustyASGError, ValueError):
    """What was passed to :func:`export` cannot be exported; the message says how to fix it."""


@dataclasses.dataclass
class WebExport:
    """The result of :func:`export`: the folder and a summary of the schedule."""

    out_dir: Path
    inputs: List[str]
    outputs: List[str]
    dispatches: int
    kernels: int
    weight_bytes: int

    def __repr__(self) -> str:
        return (f"WebExport({str(self.out_dir)!r}, inputs={self.inputs}, outputs={self.outputs}, "
                f"dispatches={self.dispatches})")


def runtime_dir() -> Path:
    """The folder of the JavaScript runtime's modules (``js/src`` of the package).

    Installed wheels carry it as ``rustyasg/web/_runtime``; an editable install reads the
    source tree's ``rustyasg-web/js/src``.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_runtime", here.parents[2] / "js" / "src"):
        if (candidate / "rustyasg.js").is_file():
            return candidate
    raise FileNotFoundError(f"the rustyasg-web JavaScript runtime is missing (looked in {here / '_runtime'} and "
                            f"{here.parents[2] / 'js' / 'src'}); reinstall rustyasg-web")


def _arg_names(fn: Any, count: int) -> List[str]:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= count:
        return params[:count]
    return ["x"] if count == 1 else [f"x{i}" for i in range(count)]


def _named_examples(fn: Any, example_inputs: Any) -> Dict[str, np.ndarray]:
    if isinstance(example_inputs, Mapping):
        named = dict(example_inputs)
    else:
        seq = list(example_inputs) if isinstance(example_inputs, (list, tuple)) else [example_inputs]
        named = dict(zip(_arg_names(fn, len(seq)), seq))
    out = {}
    for name, value in named.items():
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)  # WebGPU computes in float32; a float64 example means "a float input"
        if arr.dtype.kind not in "fiub":
            raise WebExportError(f"example input {name!r} has dtype {arr.dtype}; give a numeric numpy array")
        out[name] = np.ascontiguousarray(arr)
    return out


def inference_program(model_or_program: Any, example_inputs: Any = None,
                      output_names: Optional[Sequence[str]] = None):
    """``(program, input_names, output_names)``: the static inference program to export.

    ``model_or_program`` is an ``nn.Module`` (traced in eval mode), a Python function of
    symbolic tensors, a compiled :class:`~rustyasg.core.Function` (its updates are dropped:
    an export is inference), or a :class:`~rustyasg.core.program.Program`.
    """
    if isinstance(model_or_program, Program):
        prog = run_passes(model_or_program, "wgpu")
        by_id = prog.by_id()
        in_names = [by_id[i].name or f"x{k}" for k, i in enumerate(prog.inputs)]
        outs = list(output_names or (["output"] if len(prog.outputs) == 1
                                     else [f"output{k}" for k in range(len(prog.outputs))]))
        return prog, in_names, outs
    if isinstance(model_or_program, Function):
        func = model_or_program
        if example_inputs is None:
            raise WebExportError("export of a compiled Function needs example_inputs (arrays of the shapes to export)")
        arrays = func._convert(list(example_inputs.values()) if isinstance(example_inputs, Mapping)
                               else (example_inputs if isinstance(example_inputs, (list, tuple)) else [example_inputs]))
        sym_inputs, outputs = func.inputs, func.outputs
        in_names = [t.name or f"x{k}" for k, t in enumerate(sym_inputs)]
        sig = [(a.shape, a.dtype) for a in arrays]
    elif callable(model_or_program):
        if example_inputs is None:
            raise WebExportError("export of a model needs example_inputs: an array, a tuple of arrays, or "
                                 "{name: array}, shaped like the inputs the page will pass")
        fn = model_or_program
        forward = getattr(fn, "forward", fn)
        examples = _named_examples(forward, example_inputs)
        in_names = list(examples)
        sym_inputs = [make_input(a.shape, a.dtype, name=n) for n, a in examples.items()]
        was_training = getattr(fn, "training", None)
        if hasattr(fn, "eval"):
            fn.eval()
        try:
            result = fn(*sym_inputs)
        finally:
            if was_training:
                fn.train(True)
        outputs = [result] if isinstance(result, Tensor) else list(result)
        if not outputs or not all(isinstance(o, Tensor) for o in outputs):
            raise WebExportError(f"the model returned {type(result).__name__}; it must return a tensor or a "
                                 "list/tuple of tensors")
        sig = [(a.shape, a.dtype) for a in examples.values()]
    else:
        raise WebExportError(f"cannot export a {type(model_or_program).__name__}: pass an nn.Module, a function "
                             "of symbolic tensors, an rg.function(...) or a Program")
    prog = run_passes(lower(sym_inputs, outputs, [], sig), "wgpu")
    outs = list(output_names or (["output"] if len(outputs) == 1 else [f"output{k}" for k in range(len(outputs))]))
    if len(outs) != len(prog.outputs):
        raise WebExportError(f"output_names has {len(outs)} names for {len(prog.outputs)} outputs")
    return prog, in_names, outs


def _state_names(model: Any) -> Dict[int, str]:
    """Variable id -> ``state_dict`` key, for a module (empty for anything else)."""
    names: Dict[int, str] = {}
    for table in ("named_parameters", "named_buffers"):
        method = getattr(model, table, None)
        if callable(method):
            names.update({var.id: name for name, var in method().items()})
    return names


def _write_atomic(path: Path, data: Union[bytes, str]) -> None:
    """Write next to ``path`` and rename over it: a failed export leaves the last good file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(model_or_program: Any, example_inputs: Any, out_dir: Union[str, os.PathLike], *,
           output_names: Optional[Sequence[str]] = None, metadata: Optional[Mapping[str, Any]] = None,
           limits: Optional[Mapping[str, int]] = None, adapter: Optional[str] = None) -> WebExport:
    """Export the inference program of ``model_or_program`` for ``navigator.gpu`` (see the module docstring).

    ``example_inputs``: an array, a tuple of arrays, or ``{name: array}``; their names are the
    keys of ``model.run({...})`` (an nn.Module's ``forward`` argument names by default).
    ``metadata`` (JSON-serialisable) is stored in ``model.json`` for the page (class labels,
    normalisation). ``limits`` raises WebGPU's default limits the kernels are generated for
    (wgpu-native names, e.g. ``{"max-storage-buffers-per-shader-stage": 10}``).
    """
    prog, in_names, out_names = inference_program(model_or_program, example_inputs, output_names)
    captured = compile_for_web(prog, limits, adapter)
    sched = build_schedule(captured, _state_names(model_or_program))
    for entry, name in zip(sched.json["inputs"], in_names):
        entry["name"] = name
    for entry, name in zip(sched.json["outputs"], out_names):
        entry["name"] = name
    if metadata is not None:
        try:
            sched.json["metadata"] = json.loads(json.dumps(dict(metadata), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise WebExportError(f"metadata must be JSON data (no NaN/inf, no arrays): {exc}") from exc
    sched.json["compiled_on"] = captured.backend.ctx.summary

    from safetensors.numpy import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old_kernels = out / "kernels"
    for file, code in sched.kernels.items():
        _write_atomic(out / file, code)
    keep = {Path(f).name for f in sched.kernels}
    if old_kernels.is_dir():  # kernels of an earlier export that this schedule no longer names
        for stale in old_kernels.glob("*.wgsl"):
            if stale.name not in keep:
                stale.unlink()
    _write_atomic(out / "weights.safetensors", save(sched.tensors, metadata={"format": "rustyasg-web"}))
    for src in sorted(runtime_dir().glob("*.js")):
        _write_atomic(out / src.name, src.read_bytes())
    _write_atomic(out / "model.json", json.dumps(sched.json, indent=1, allow_nan=False))
    return WebExport(out, [e["name"] for e in sched.json["inputs"]], [e["name"] for e in sched.json["outputs"]],
                     len(sched.json["dispatches"]), len(sched.kernels),
                     sum(int(a.nbytes) for a in sched.tensors.values()))
