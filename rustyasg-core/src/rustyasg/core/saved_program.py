"""Saved programs: a compiled function as one file that runs without the model's Python code.

``fn.save(path)`` (or :func:`save_program`) writes **one file**, a standard
`safetensors <https://huggingface.co/docs/safetensors>`_ file:

- the tensors are the weights (``var/<n>``: variable values at the time of saving) and the
  large constants of the graph (``const/<n>``);
- the header's ``__metadata__`` holds ``"rustyasg.program"``: a JSON document with
  ``format`` (``"rustyasg.program"``), ``format_version`` (:data:`FORMAT_VERSION`), the op set
  used (``ops``: op name -> the plugin that provides it), the optimised symbolic graph
  (``instrs``: op, inputs, attributes, shape, dtype; symbolic dims such as the batch size stay
  symbolic), ``inputs``/``outputs``/``updates``, the variables, a SHA-256 of the tensor data and
  the call ``signature`` (input names, shapes with symbolic dims by name, dtypes; output shapes
  and dtypes), which :func:`read_signature` returns without rebuilding anything.

No pickle is involved anywhere: loading reads JSON and raw tensor bytes, and never executes
code from the file. Saving is atomic: the file is written next to its destination, flushed,
then moved over it with :func:`os.replace`, so an interrupted save leaves the last good copy.

:func:`load_graph` rebuilds the graph on the ops installed here (each node's shape is
re-inferred and compared with the file); :func:`rustyasg.core.load_program`
(:mod:`.saved_function`) makes a :class:`~rustyasg.core.function.Function` of it for any
installed backend. Errors are :class:`SavedProgramError` with what is wrong: a file from
a newer format version, an op no installed plugin provides (naming the plugin to install),
a truncated or corrupted file.

Example:
    >>> import numpy as np, os, tempfile, rustyasg.core as rg
    >>> x = rg.input((None, 2), "float32", name="x")
    >>> w = rg.variable(np.array([[1.0], [2.0]], np.float32), name="w")
    >>> f = rg.function([x], x @ w, backend="reference")
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.rgp")
    >>> f.save(path)
    >>> g = rg.load_program(path, backend="reference")
    >>> g(np.ones((3, 2), np.float32)).ravel().tolist()
    [3.0, 3.0, 3.0]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from typing import Any, Dict, List, Union

import numpy as np

from .errors import GraphBuildError, RustyASGError
from .graph import Variable
from .program import Program
from .registry import OPS
from .shapes import Dim
from .symbolic_program import SymbolicInstr, optimise, to_graph, trace_function

FORMAT = "rustyasg.program"
FORMAT_VERSION = 1
METADATA_KEY = "rustyasg.program"
#: Constants at most this many elements stay inline in the JSON; larger ones are tensors.
INLINE_CONSTANT_ELEMENTS = 64
SOURCE_OPS = {"input", "variable", "constant"}


class SavedProgramError(RustyASGError, ValueError):
    """A saved program cannot be written or read: the message says what is wrong and what to do."""


def _c_contiguous(arr) -> np.ndarray:
    """A C-contiguous view or copy that keeps 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return np.require(arr, requirements="C")


# -- attribute values <-> JSON ---------------------------------------------------------------------
class _Encoder:
    """Turns attribute values into JSON values; arrays above the inline size become tensors."""

    def __init__(self):
        self.tensors: Dict[str, np.ndarray] = {}

    def array(self, arr: np.ndarray, inline_limit: int = INLINE_CONSTANT_ELEMENTS) -> Any:
        arr = _c_contiguous(arr)
        if arr.size <= inline_limit:
            return {"array": [self.value(v) for v in arr.ravel().tolist()], "dtype": arr.dtype.name,
                    "shape": list(arr.shape)}
        key = f"const/{len(self.tensors)}"
        self.tensors[key] = arr
        return {"tensor": key}

    def value(self, v: Any) -> Any:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            v = float(v)
            return v if math.isfinite(v) else {"float": repr(v)}  # strict JSON has no inf/nan
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, Dim):
            return {"dim": [v.coef, [list(f) for f in v.factors]]}
        if isinstance(v, np.dtype):
            return {"dtype": v.name}
        if isinstance(v, type) and issubclass(v, np.generic):
            return {"dtype": np.dtype(v).name}
        if isinstance(v, np.ndarray):
            return self.array(v)
        if isinstance(v, tuple):
            return {"tuple": [self.value(x) for x in v]}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {"dict": {str(k): self.value(x) for k, x in v.items()}}
        raise SavedProgramError(f"cannot save an attribute value of type {type(v).__name__}: {v!r}")


def _decode(v: Any, tensors) -> Any:
    if isinstance(v, list):
        return [_decode(x, tensors) for x in v]
    if not isinstance(v, dict):
        return v
    if "tuple" in v:
        return tuple(_decode(x, tensors) for x in v["tuple"])
    if "dim" in v:
        coef, factors = v["dim"]
        return Dim(coef=int(coef), factors=tuple((str(n), int(p)) for n, p in factors))
    if "dtype" in v and "array" not in v:
        return np.dtype(v["dtype"])
    if "float" in v:
        return float(v["float"])
    if "array" in v:
        arr = np.array([_decode(x, tensors) for x in v["array"]], dtype=np.dtype(v["dtype"]))
        arr = arr.reshape(v["shape"])
        arr.setflags(write=False)
        return arr
    if "tensor" in v:
        arr = tensors(v["tensor"])
        arr.setflags(write=False)
        return arr
    if "dict" in v:
        return {k: _decode(x, tensors) for k, x in v["dict"].items()}
    raise SavedProgramError(f"unknown attribute encoding {sorted(v)}")


# -- saving -------------------------------------------------------------------------------------
def program_document(program: Program, single_output: bool = False):
    """``(document, tensors)``: the JSON document of a symbolic program and the tensors it refers to."""
    enc = _Encoder()
    var_keys: Dict[int, str] = {}
    variables = []
    for n, (iid, var) in enumerate(sorted(program.variables.items())):
        key = var_keys[iid] = f"var/{n}"
        enc.tensors[key] = _c_contiguous(var.value())
        variables.append({"instr": iid, "name": var.name, "tensor": key, "trainable": bool(var.trainable)})
    instrs = []
    for ins in program.instrs:
        attrs = ({"value": enc.array(ins.attrs["value"])} if ins.op == "constant"
                 else {k: enc.value(v) for k, v in ins.attrs.items()})
        instrs.append({"id": ins.id, "op": ins.op, "inputs": list(ins.inputs), "attrs": attrs,
                       "shape": [enc.value(d) for d in ins.shape], "dtype": ins.dtype.name, "name": ins.name})
    ops = {i.op: OPS[i.op].plugin for i in program.instrs if i.op not in SOURCE_OPS}
    by_id = program.by_id()

    def described(iid, named=False):
        ins = by_id[iid]
        out = {"shape": [d if isinstance(d, int) else str(d) for d in ins.shape], "dtype": ins.dtype.name}
        return {"name": ins.name, **out} if named else out

    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "ops": dict(sorted(ops.items())),
        "inputs": list(program.inputs), "outputs": list(program.outputs), "single_output": bool(single_output),
        "variables": variables, "updates": [[var.id, vid] for var, vid in program.updates], "instrs": instrs,
        "sha256": _digest(enc.tensors),
        # For readers that only inspect the file (a server): names, shapes (symbolic dims by name), dtypes.
        "signature": {"inputs": [described(i, True) for i in program.inputs],
                      "outputs": [described(o) for o in program.outputs]},
    }
    return doc, enc.tensors


def save_program(fn, path: Union[str, os.PathLike], optimised: bool = True) -> None:
    """Write ``fn`` (a :class:`~rustyasg.core.function.Function`) and its current weights to ``path``.

    The graph is run through the backend-independent passes first (``optimised=False``
    writes the traced graph as it is). The write is atomic (temporary file + ``os.replace``).
    """
    from safetensors.numpy import save_file

    program = trace_function(fn)
    if optimised:
        program = optimise(program)
    doc, tensors = program_document(program, getattr(fn, "_single", False))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SavedProgramError(f"cannot save to {path!r}: the folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(doc, separators=(",", ":"))})
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _digest(tensors: Dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        arr = tensors[key]
        h.update(f"{key}:{arr.dtype.name}:{arr.shape};".encode())
        h.update(_c_contiguous(arr).tobytes())
    return h.hexdigest()


# -- loading ------------------------------------------------------------------------------------
def read_document(path: Union[str, os.PathLike]):
    """``(document, tensors)`` of a saved program file, with its format and checksum verified."""
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SavedProgramError(f"no saved program at {path!r}")
    try:
        with safe_open(path, framework="np") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise SavedProgramError(f"{path!r} is truncated, corrupted or not a safetensors file: {exc}") from None
    if METADATA_KEY not in meta:
        raise SavedProgramError(f"{path!r} is a safetensors file but not a RustyASG saved program "
                                f"(no {METADATA_KEY!r} metadata); weights alone load with rustyasg.nn's load_state_dict")
    try:
        doc = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise SavedProgramError(f"{path!r}: the program's JSON is corrupted: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SavedProgramError(f"{path!r}: not a {FORMAT} document")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SavedProgramError(f"{path!r} was written in saved-program format version {version}; this RustyASG "
                                f"reads versions up to {FORMAT_VERSION}. Upgrade with: pip install -U rustyasg-core")
    if _digest(tensors) != doc.get("sha256"):
        raise SavedProgramError(f"{path!r} is corrupted: its tensor data does not match the recorded SHA-256")
    return doc, tensors


def read_signature(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The inputs and outputs of a saved program (what a server shows), read without compiling it.

    >>> import numpy as np, os, tempfile, rustyasg.core as rg
    >>> x = rg.input((None, 2), "float32", name="x")
    >>> path = os.path.join(tempfile.mkdtemp(), "p.rgp")
    >>> rg.function([x], x.sum(axis=1), backend="reference").save(path)
    >>> read_signature(path)["inputs"]
    [{'name': 'x', 'shape': ['x.0', 2], 'dtype': 'float32'}]
    """
    return read_document(path)[0]["signature"]


def check_ops(doc: Dict[str, Any], path: str = "the program") -> None:
    """Raise :class:`SavedProgramError` naming every op of ``doc`` that no installed plugin provides."""
    missing = {op: plugin for op, plugin in doc.get("ops", {}).items() if op not in OPS}
    if missing:
        listing = ", ".join(f"{op!r} (from {plugin!r})" for op, plugin in sorted(missing.items()))
        installs = " ".join(sorted(set(missing.values())))
        raise SavedProgramError(f"{path} uses op(s) that no installed plugin provides: {listing}. "
                                f"Install: pip install {installs}")


def document_program(doc: Dict[str, Any], tensors: Dict[str, np.ndarray]) -> Program:
    """The symbolic :class:`Program` (with fresh variables holding the saved values) of a document."""
    get = tensors.__getitem__
    variables: Dict[int, Variable] = {}
    for v in doc["variables"]:
        value = np.array(get(v["tensor"]))  # writable, owned copy
        variables[v["instr"]] = Variable(value, v["name"], bool(v["trainable"]), None)
    instrs: List[SymbolicInstr] = []
    for d in doc["instrs"]:
        instrs.append(SymbolicInstr(int(d["id"]), d["op"], tuple(int(i) for i in d["inputs"]),
                                    {k: _decode(v, get) for k, v in d["attrs"].items()},
                                    tuple(_decode(s, get) for s in d["shape"]), np.dtype(d["dtype"]), None, d["name"]))
    by_var = {v["instr"]: variables[v["instr"]] for v in doc["variables"]}
    updates = [(by_var[int(var)], int(vid)) for var, vid in doc["updates"]]
    return Program(instrs, [int(i) for i in doc["inputs"]], [int(i) for i in doc["outputs"]], variables, updates)


def load_graph(path: Union[str, os.PathLike]):
    """The graph saved at ``path``: ``(inputs, outputs, updates, doc)`` rebuilt on the installed ops.

    ``outputs`` is a list (``doc["single_output"]`` says whether the function returned one
    value); ``doc`` is the file's document header. :func:`rustyasg.core.load_program` makes
    a compiled function of it.
    """
    path = os.fspath(path)
    doc, tensors = read_document(path)
    check_ops(doc, repr(path))
    try:
        program = document_program(doc, tensors)
        inputs, outputs, updates = to_graph(program)
    except SavedProgramError:
        raise
    except (GraphBuildError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise SavedProgramError(f"{path!r}: the saved graph does not rebuild on the installed ops: "
                                f"{type(exc).__name__}: {exc}") from None
    return inputs, outputs, updates, doc
