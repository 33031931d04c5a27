"""SafeTensors files for state dicts, written crash-safely and read with clear errors.

Files are plain SafeTensors (readable by ``safetensors.numpy.load_file`` and
``safetensors.torch.load_file``); a module's ``state_dict`` uses PyTorch's names and
layouts, so weights move between the two frameworks. Every write goes to a
temporary file in the same directory, is flushed and fsynced, then atomically
renamed over the target (and the directory fsynced): a crash leaves either the
old file or the new one, never a torn one. A CRC-32 of each tensor -- of its dtype,
its shape and its bytes -- is stored in the header metadata, so corruption inside the
data or of a tensor's header entry (``I32`` where ``F32`` was saved) is caught on load,
not only a damaged header or a truncated file.

Loading reads the header first: keys, dtypes and shapes are checked against what the
state is loaded into before any tensor data is read, and only the tensors that will be
used are read (a 2 GiB tensor the model does not have costs nothing).

Example:
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_safetensors({"weight": np.eye(2, dtype=np.float32)}, path, metadata={"note": "hi"})
    >>> load_safetensors(path)["weight"].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> safetensors_metadata(path)["note"]
    'hi'
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Optional, Union

import numpy as np
import safetensors
import safetensors.numpy

import rustyasg.core as rg

PathLike = Union[str, os.PathLike]
CHECKSUM_KEY = "rustyasg.checksums"  # metadata entry: JSON {tensor name: crc32 of dtype, shape and bytes}
LEGACY_CHECKSUM_KEY = "rustyasg.crc32"  # files of 0.1.0: JSON {tensor name: crc32 of its bytes only}
#: SafeTensors dtype names -> numpy dtypes (what ``safetensors.numpy`` reads).
_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32", "I16": "int16",
           "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool"}


class CheckpointError(rg.RustyASGError, ValueError):
    """A file cannot be read, is corrupted, or does not fit what it is loaded into; names the file."""


class CorruptFileError(CheckpointError):
    """The file is missing, truncated or damaged (header, data or checksums)."""


class MismatchError(CheckpointError):
    """The file is sound but its keys, shapes or kinds of state do not fit the objects loaded into."""


# -- crash-safe writes ---------------------------------------------------------------------------
def atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """Run ``write(tmp_path)``, fsync the result and atomically rename it to ``path``.

    The temporary file lives in the target's directory (a rename is atomic only within one
    filesystem) and is named ``.<name>.<random>.tmp``; it is removed if ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _fsync_path(tmp, os.O_RDONLY)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_path(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))  # make the rename itself durable
    return path


def _fsync_path(path, flags) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temporary(name: str) -> bool:
    """True for the names :func:`atomic_write` gives its temporary files."""
    return name.startswith(".") and name.endswith(".tmp")


# -- arrays in, arrays out -------------------------------------------------------------------------
def _as_arrays(state) -> Dict[str, np.ndarray]:
    """A module, a dict of variables or a dict of arrays -> contiguous numpy arrays by name."""
    if hasattr(state, "state_dict") and callable(state.state_dict):
        state = state.state_dict()
    out = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be strings, got {name!r}")
        if isinstance(value, rg.Variable):
            value = value.value()
        elif hasattr(value, "detach"):  # torch tensors, without importing torch
            value = value.detach().cpu().numpy()
        out[name] = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    return out


def crc32(array: np.ndarray) -> int:
    """CRC-32 of an array's dtype, shape and bytes (C order): a header that relabels the bytes fails it.

    >>> a = np.arange(4, dtype=np.float32)
    >>> crc32(a) == crc32(a.copy()), crc32(a) == crc32(a.view(np.int32)), crc32(a) == crc32(a.reshape(2, 2))
    (True, False, False)
    """
    array = np.asarray(array, order="C")
    typed = zlib.crc32(f"{array.dtype.name}{tuple(array.shape)}".encode())
    return zlib.crc32(_raw_bytes(array), typed)


def _bytes_crc32(array: np.ndarray) -> int:
    return zlib.crc32(_raw_bytes(np.asarray(array, order="C")))


def _raw_bytes(array: np.ndarray):
    # a zero-size tensor (an empty buffer in a state dict) has no bytes; memoryview cannot cast it
    return memoryview(array).cast("B") if array.size else b""


def save_safetensors(state, path: PathLike, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write a state dict (a Module, ``{name: Variable}`` or ``{name: array}``) as a SafeTensors file.

    ``metadata`` is a ``str -> str`` mapping stored in the header. The write is atomic.
    """
    arrays = _as_arrays(state)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[CHECKSUM_KEY] = json.dumps({k: crc32(a) for k, a in arrays.items()}, sort_keys=True)
    atomic_write(path, lambda tmp: safetensors.numpy.save_file(arrays, tmp, metadata=meta))


def _open(path: PathLike):
    if not os.path.exists(path):
        raise CorruptFileError(f"{path}: no such file")
    try:
        return safetensors.safe_open(os.fspath(path), framework="numpy")
    except Exception as exc:  # the library raises its own error types for every malformation
        raise CorruptFileError(f"{path}: not a readable SafeTensors file (truncated or corrupted?): {exc}") from None


def safetensors_metadata(path: PathLike) -> Dict[str, str]:
    """The header metadata of a SafeTensors file (reads only the header)."""
    with _open(path) as f:
        return dict(f.metadata() or {})


def safetensors_header(path: PathLike) -> Dict[str, np.ndarray]:
    """Every tensor of a file as a shape-only stand-in, read from the header alone (no data is read).

    Each stand-in is a zero-strided read-only array with the tensor's dtype and shape, taking no
    memory: shape checks (:func:`check_fits`, an optimizer's ``load_state_dict`` checks) run on
    them unchanged before anything is read.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_safetensors({"w": np.ones((1000, 1000), np.float32)}, path)
    >>> w = safetensors_header(path)["w"]
    >>> w.shape, w.dtype, w.strides
    ((1000, 1000), dtype('float32'), (0, 0))
    """
    with _open(path) as f:
        out = {}
        for name in f.keys():
            info = f.get_slice(name)
            dtype = _DTYPES.get(info.get_dtype())
            if dtype is None:
                raise CorruptFileError(f"{path}: tensor {name!r} has dtype {info.get_dtype()}, which numpy cannot "
                                       f"hold; convert the file to one of {sorted(_DTYPES)}")
            out[name] = np.broadcast_to(np.zeros((), dtype), tuple(info.get_shape()))
        return out


def load_safetensors(path: PathLike, verify: bool = True, keys: Optional[Iterable[str]] = None
                     ) -> Dict[str, np.ndarray]:
    """Read the tensors of a SafeTensors file as numpy arrays (in the file's order).

    ``keys`` limits the read to those tensors (the others' bytes are never touched); a key
    the file lacks raises :class:`MismatchError`. With ``verify``, tensors are checked
    against the CRC-32s this module stores -- of dtype, shape and bytes -- (files written by
    other tools have none and are read as they are). Raises :class:`CheckpointError` naming
    the file, and the tensor when its data or header entry is corrupted.
    """
    with _open(path) as f:
        meta = f.metadata() or {}
        names = list(f.keys())
        if keys is not None:
            wanted = set(keys)
            absent = sorted(wanted - set(names))
            if absent:
                raise MismatchError(f"{path}: no tensor(s) {absent} in the file")
            names = [k for k in names if k in wanted]
        try:
            arrays = {k: f.get_tensor(k) for k in names}
        except Exception as exc:
            raise CorruptFileError(f"{path}: cannot read tensor data (truncated or corrupted?): {exc}") from None
    if verify:
        _verify(path, meta, arrays, complete=keys is None)
    return arrays


def _verify(path: PathLike, meta: Mapping[str, str], arrays: Mapping[str, np.ndarray], complete: bool) -> None:
    """Compare ``arrays`` with the header's checksum table (typed, or bytes-only in older files)."""
    key, checksum = ((CHECKSUM_KEY, crc32) if CHECKSUM_KEY in meta else
                     (LEGACY_CHECKSUM_KEY, _bytes_crc32) if LEGACY_CHECKSUM_KEY in meta else (None, None))
    if key is None:
        return
    try:
        expected = json.loads(meta[key])
    except ValueError:
        raise CorruptFileError(f"{path}: corrupted checksum table in the header") from None
    bad = [k for k, a in arrays.items() if expected.get(k) != checksum(a)]
    missing = sorted(set(expected) - set(arrays)) if complete else []
    if bad or missing:
        as_read = ", ".join(f"{k} read as {arrays[k].dtype}{tuple(arrays[k].shape)}" for k in bad)
        raise CorruptFileError(f"{path}: corrupted data: checksum mismatch for {bad}"
                               + (f" (the bytes, dtype or shape differ from what was saved; {as_read})" if bad else "")
                               + (f", tensors missing: {missing}" if missing else ""))


def check_fits(path: PathLike, saved: Mapping[str, np.ndarray], expected: Mapping[str, tuple], what: str,
               strict: bool = True) -> None:
    """Raise :class:`MismatchError` naming the file, the missing/unexpected keys and mismatched shapes."""
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    mismatched = [k for k in expected if k in saved and tuple(np.shape(saved[k])) != tuple(expected[k])]
    problems = []
    if strict and missing:
        problems.append("missing keys: " + ", ".join(f"{k} {tuple(expected[k])}" for k in missing))
    if strict and unexpected:
        problems.append("unexpected keys: " + ", ".join(f"{k} {tuple(np.shape(saved[k]))}" for k in unexpected))
    if mismatched:
        problems.append("shape mismatches: " + ", ".join(
            f"{k} is {tuple(np.shape(saved[k]))} in the file but {tuple(expected[k])} in the {what}"
            for k in mismatched))
    if problems:
        raise MismatchError(f"{path}: does not fit the {what}: " + "; ".join(problems))


def load_safetensors_into(module, path: PathLike, strict: bool = True):
    """Load a SafeTensors state dict into ``module`` (or a ``{name: Variable}`` dict).

    Every key and shape is checked against the file's header before any data is read, and
    only the tensors the module has are read; returns ``(missing, unexpected)``.
    """
    header = safetensors_header(path)
    expected = state_shapes(module)
    check_fits(path, header, expected, _describe(module), strict)
    arrays = load_safetensors(path, keys=[k for k in header if k in expected])
    assign_state(module, arrays, path, strict=False)
    return [k for k in expected if k not in header], [k for k in header if k not in expected]


def assign_state(module, arrays: Mapping[str, np.ndarray], path: PathLike, strict: bool = True):
    """Check ``arrays`` against a Module's (or variable dict's) state, then assign them."""
    check_fits(path, arrays, state_shapes(module), _describe(module), strict)
    if isinstance(module, Mapping):
        for k, var in module.items():
            if k in arrays:
                var.assign(arrays[k].astype(var.dtype, copy=False))
        return [k for k in module if k not in arrays], [k for k in arrays if k not in module]
    return module.load_state_dict(arrays, strict=strict)


def state_shapes(module) -> Dict[str, tuple]:
    """``{state-dict name: shape}`` of a Module or of a ``{name: Variable}`` dict."""
    if isinstance(module, Mapping):
        if not all(isinstance(v, rg.Variable) for v in module.values()):
            raise TypeError("expected a Module or a dict of variables")
        return {k: tuple(v.shape) for k, v in module.items()}
    if hasattr(module, "_state_vars"):  # shapes without reading every value back from the device
        return {k: tuple(v.shape) for k, v in module._state_vars().items()}
    return {k: tuple(np.shape(v)) for k, v in module.state_dict().items()}


def _describe(module) -> str:
    return f"model {type(module).__name__}" if not isinstance(module, Mapping) else "variables"


__all__ = ["CheckpointError", "CorruptFileError", "MismatchError", "atomic_write", "save_safetensors", "load_safetensors", "load_safetensors_into",
           "safetensors_metadata", "safetensors_header", "check_fits", "assign_state", "state_shapes", "crc32"]
