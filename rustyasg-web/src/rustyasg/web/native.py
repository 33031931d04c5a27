"""Run an exported folder on wgpu-native, replaying its schedule as the JavaScript runtime does.

This reads only the exported files (``model.json``, ``kernels/``, ``weights.safetensors``),
never the model that produced them, so it checks an export without a browser: same WGSL,
same buffers, same dispatches, on the machine's own adapter.

Example::

    runner = NativeRunner("out/")
    runner.run({"x": np.zeros((1, 784), np.float32)})["output"].shape
    # (1, 10)
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from .schedule import FORMAT


def read_schedule(out_dir: Union[str, Path]) -> Dict[str, Any]:
    """``model.json`` of an export, checked to be one."""
    path = Path(out_dir) / "model.json"
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a RustyASG web export (format {doc.get('format')!r}, expected {FORMAT!r})")
    return doc


class NativeRunner:
    """An exported program on a wgpu-native device (see the module docstring)."""

    def __init__(self, out_dir: Union[str, Path], adapter: Optional[str] = None):
        import wgpu
        from safetensors.numpy import load_file

        from rustyasg.wgpu.device import get_context
        from rustyasg.wgpu.kernels.api import STORAGES

        self.dir = Path(out_dir)
        self.doc = read_schedule(self.dir)
        self.ctx = ctx = get_context(adapter)
        device = ctx.device
        tensors = load_file(str(self.dir / self.doc["weights"]))
        self.storages = STORAGES
        self.buffers = []
        for entry in self.doc["buffers"]:
            uniform = entry["role"] == "uniform"
            usage = (wgpu.BufferUsage.UNIFORM if uniform else wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
            buf = device.create_buffer(size=entry["size"], usage=usage | wgpu.BufferUsage.COPY_DST)
            data = base64.b64decode(entry["data"]) if uniform else (
                tensors[entry["tensor"]].tobytes() if "tensor" in entry else b"")
            if data:
                data += b"\0" * (-len(data) % 4)
                device.queue.write_buffer(buf, 0, data)
            self.buffers.append(buf)
        pipelines = []
        for k in self.doc["kernels"]:
            module = device.create_shader_module(code=(self.dir / k["file"]).read_text())
            pipelines.append(device.create_compute_pipeline(layout="auto",
                                                            compute={"module": module, "entry_point": k["entry"]}))
        self.dispatches = []
        for d in self.doc["dispatches"]:
            pipe = pipelines[d["kernel"]]
            entries = []
            for i, b in enumerate(d["bindings"]):
                if isinstance(b, dict):
                    res = {"buffer": self.buffers[b["buffer"]], "offset": b["offset"], "size": b["size"]}
                else:
                    res = {"buffer": self.buffers[b], "offset": 0, "size": self.buffers[b].size}
                entries.append({"binding": i, "resource": res})
            group = device.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=entries)
            self.dispatches.append((pipe, group, d["workgroups"]))

    def run(self, inputs: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        """Outputs by name for ``inputs`` by name (arrays of the exported shapes)."""

        device, queue = self.ctx.device, self.ctx.queue
        for spec in self.doc["inputs"]:
            if spec["buffer"] is None:
                continue
            arr = np.asarray(inputs[spec["name"]], dtype=spec["dtype"]).reshape(spec["shape"])
            data = self.storages[spec["storage"]].to_device(arr).tobytes()
            if data:
                queue.write_buffer(self.buffers[spec["buffer"]], 0, data + b"\0" * (-len(data) % 4))
        enc = device.create_command_encoder()
        cpass = enc.begin_compute_pass()
        for pipe, group, wg in self.dispatches:
            cpass.set_pipeline(pipe)
            cpass.set_bind_group(0, group)
            cpass.dispatch_workgroups(*wg)
        cpass.end()
        for c in self.doc["copies"]:
            enc.copy_buffer_to_buffer(self.buffers[c["src"]], 0, self.buffers[c["dst"]], 0, -(-c["size"] // 4) * 4)
        queue.submit([enc.finish()])
        out = {}
        for spec in self.doc["outputs"]:
            storage = self.storages[spec["storage"]]
            n = int(np.prod(spec["shape"], dtype=np.int64)) * storage.itemsize
            raw = device.queue.read_buffer(self.buffers[spec["buffer"]], 0, -(-n // 4) * 4)[:n] if n else b""
            out[spec["name"]] = storage.to_host(bytes(raw), tuple(spec["shape"]), np.dtype(spec["dtype"]))
        return out
