"""The schedule of an exported program: buffers, kernels, dispatches and copies as plain data.

:func:`build_schedule` turns a :class:`~rustyasg.web.capture.CapturedProgram` into
:class:`Schedule`: a JSON-ready ``dict`` (the ``model.json`` a runtime replays), the WGSL
sources it names, and the initial buffer contents (weights and constants, written to
safetensors). Every buffer the compiled step touches gets one entry; a dispatch binds
buffers by index, in binding order, exactly as the wgpu backend bound them.

Buffer roles:

=========== ==============================================================================
role        contents
=========== ==============================================================================
input       written from the caller's array on every run
weight      a variable's value (tensor named after the variable in the safetensors file)
constant    bytes the compiler uploaded once (a tensor ``constant.N``, raw bytes)
uniform     a uniform block (``data`` in the JSON, base64; ``fields`` when they are known)
temporary   nothing: written by a kernel before it is read
=========== ==============================================================================

Example::

    sched = build_schedule(captured)
    sched.json["dispatches"][0]["workgroups"]
    # [4, 1, 1]
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

FORMAT = "rustyasg-web-program"
VERSION = 1

# wgpu-native limit names -> WebGPU (JavaScript) names, for the device a runtime requests.
_JS_LIMIT_NAMES = {
    "max-storage-buffers-per-shader-stage": "maxStorageBuffersPerShaderStage",
    "max-storage-buffer-binding-size": "maxStorageBufferBindingSize",
    "max-buffer-size": "maxBufferSize",
    "max-compute-workgroup-storage-size": "maxComputeWorkgroupStorageSize",
    "max-compute-invocations-per-workgroup": "maxComputeInvocationsPerWorkgroup",
    "max-compute-workgroup-size-x": "maxComputeWorkgroupSizeX",
    "max-compute-workgroup-size-y": "maxComputeWorkgroupSizeY",
    "max-compute-workgroup-size-z": "maxComputeWorkgroupSizeZ",
    "max-compute-workgroups-per-dimension": "maxComputeWorkgroupsPerDimension",
}

#: Storage name -> safetensors dtype of that storage's device bytes.
SAFETENSORS_DTYPES = {"f32": "F32", "f16": "F16", "i32": "I32", "i64": "I64", "bool": "U32"}


@dataclasses.dataclass
class Schedule:
    """``json``: the model.json dict; ``kernels``: WGSL sources by file name;
    ``tensors``: initial contents by safetensors name (numpy arrays)."""

    json: Dict[str, Any]
    kernels: Dict[str, str]
    tensors: Dict[str, np.ndarray]


class _BufferTable:
    """Numbers buffers in first-seen order and records one JSON entry per buffer."""

    def __init__(self):
        self.index: Dict[int, int] = {}
        self.entries: List[Dict[str, Any]] = []
        self._keep: List[Any] = []   # the buffers themselves, so ids stay unique

    def add(self, buffer: Any, role: str, **extra: Any) -> int:
        k = self.index.get(id(buffer))
        if k is None:
            k = self.index[id(buffer)] = len(self.entries)
            self._keep.append(buffer)
            self.entries.append({"size": int(buffer.size), "role": role, **extra})
        return k

    def __contains__(self, buffer: Any) -> bool:
        return id(buffer) in self.index


def _unique(name: str, taken: set) -> str:
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}.{n}"
    taken.add(out)
    return out


def _json_float(value: float):
    """A float for JSON, which has no inf/nan: those become the strings "inf", "-inf", "nan"."""
    v = float(value)
    return v if np.isfinite(v) else str(v)


def _tensor_meta(name: str, shape, dtype, storage, buffer: int) -> Dict[str, Any]:
    return {"name": name, "shape": [int(s) for s in shape], "dtype": np.dtype(dtype).name,
            "storage": storage.name, "buffer": buffer}


def build_schedule(captured: Any, variable_names: Optional[Mapping[int, str]] = None) -> Schedule:
    """The :class:`Schedule` of a captured program (see the module docstring).

    ``variable_names`` maps a variable's id to its tensor name in the weights (a module's
    ``state_dict`` keys); other variables are named after ``Variable.name``.
    """
    variable_names = dict(variable_names or {})
    exe, prog, device = captured.executable, captured.program, captured.device
    by_id = prog.by_id()
    table = _BufferTable()
    tensors: Dict[str, np.ndarray] = {}
    names: set = set()

    inputs = []
    for iid, slot in zip(prog.inputs, exe.plan.inputs):
        ins = by_id.get(iid)
        name = _unique((ins.name if ins is not None else None) or f"input{len(inputs)}", names)
        if slot is None:  # unused by the program: accepted and ignored
            inputs.append({"name": name, "shape": [], "dtype": "float32", "storage": "f32", "buffer": None})
            continue
        buf, storage, shape = slot
        inputs.append(_tensor_meta(name, shape, ins.dtype, storage, table.add(buf, "input", name=name)))

    weight_names: set = set()
    for var, buf in exe.bound:
        if buf in table:
            continue
        name = _unique(variable_names.get(var.id) or var.name or f"variable{var.id}", weight_names)
        storage = captured.backend.storage(var.dtype)
        tensors[name] = storage.to_device(np.asarray(var.value()))
        table.add(buf, "weight", tensor=name, shape=list(var.shape), dtype=np.dtype(var.dtype).name)

    def other(buf: Any) -> int:
        """A buffer seen in a binding or copy that is not an input or weight."""
        if buf in table:
            return table.index[id(buf)]
        data = device.contents(buf)
        import wgpu

        if int(buf.usage) & int(wgpu.BufferUsage.UNIFORM):
            return table.add(buf, "uniform", data=base64.b64encode(data or b"").decode("ascii"))
        if data is None:
            return table.add(buf, "temporary")
        name = f"constant.{sum(e['role'] == 'constant' for e in table.entries)}"
        tensors[name] = np.frombuffer(data, np.uint8).copy()
        return table.add(buf, "constant", tensor=name)

    kernels: Dict[str, str] = {}
    kernel_index: Dict[str, int] = {}
    kernel_entries: List[Dict[str, Any]] = []
    dispatches = []
    for launch in exe.launches:
        code, entry = captured.shader_of(launch.pipeline)
        digest = hashlib.sha256(code.encode()).hexdigest()
        key = f"{digest}:{entry}"
        if key not in kernel_index:
            kernel_index[key] = len(kernel_entries)
            file = f"kernels/{len(kernel_entries):04d}.wgsl"
            kernels[file] = code
            kernel_entries.append({"file": file, "entry": entry, "sha256": digest})
        bindings = []
        for res in launch.resources:
            if isinstance(res, tuple):
                buf, offset, size = res
                bindings.append({"buffer": other(buf), "offset": int(offset), "size": int(size)})
            else:
                bindings.append(other(res))
        if launch.uniforms is not None:  # readable names of the block's values, next to its bytes
            layout, values = launch.uniforms
            last = launch.resources[-1]
            entry_ = table.entries[table.index[id(last)]]
            entry_.setdefault("fields", {k: (_json_float(values[k]) if t == "f32" else int(values[k]))
                                         for k, t in layout.fields})
        dispatches.append({"kernel": kernel_index[key], "bindings": bindings,
                           "workgroups": [int(w) for w in launch.workgroups], "label": launch.label})

    copies = [{"src": other(s), "dst": other(d), "size": int(n)} for s, d, n in exe.copies + exe.update_copies]
    outputs = []
    for oid, (buf, shape, dtype, storage) in zip(prog.outputs, exe.outputs):
        name = _unique(by_id[oid].name or f"output{len(outputs)}", names)
        outputs.append(_tensor_meta(name, shape, dtype, storage, other(buf)))

    limits = {js: int(captured.limits[native]) for native, js in _JS_LIMIT_NAMES.items()
              if native in captured.limits}
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "requires": {"features": [], "limits": limits},
        "inputs": inputs,
        "outputs": outputs,
        "buffers": table.entries,
        "kernels": kernel_entries,
        "dispatches": dispatches,
        "copies": copies,
        "weights": "weights.safetensors",
    }
    return Schedule(doc, kernels, tensors)
