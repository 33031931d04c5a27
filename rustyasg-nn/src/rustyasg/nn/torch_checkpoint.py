"""PyTorch checkpoints (``torch.save`` files) read without PyTorch and without running code.

A ``.pt``/``.pth``/``.bin`` file is a pickle whose tensors point at raw storages: in the zip
format (PyTorch >= 1.6) the pickle is ``<name>/data.pkl`` and each storage ``<name>/data/<key>``;
in the legacy format the storages follow the pickle in the same stream. A pickle can call any
importable function, so it is read here by a restricted unpickler that resolves only the globals
a checkpoint of tensors needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
storage types, dtypes, ...), each mapped onto a numpy-producing stand-in; any other global is
refused with :class:`UnsafeCheckpointError` naming it, before anything is called.

Tensors come back as numpy arrays (``bfloat16`` widened to ``float32``, which is exact);
everything else (dicts, lists, numbers, strings) as plain Python objects.

Example:
    >>> import os, tempfile, zipfile, pickle, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.pt")
    >>> with zipfile.ZipFile(path, "w") as z:  # what torch.save({"w": torch.ones(2)}, path) writes
    ...     z.writestr("tiny/data.pkl", b"\\x80\\x02}q\\x00X\\x01\\x00\\x00\\x00wq\\x01ctorch._utils\\n_rebuild_tensor_v2"
    ...                b"\\nq\\x02((X\\x07\\x00\\x00\\x00storageq\\x03ctorch\\nFloatStorage\\nq\\x04X\\x01\\x00\\x00\\x000"
    ...                b"X\\x03\\x00\\x00\\x00cpuK\\x02tQK\\x00K\\x02\\x85K\\x01\\x85\\x89ccollections\\nOrderedDict\\n)R"
    ...                b"tRs.")
    ...     z.writestr("tiny/data/0", np.ones(2, np.float32).tobytes())
    >>> load_torch_checkpoint(path)["w"]
    array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import _compat_pickle
import io
import mmap
import os
import pickle
import struct
import tarfile
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from .bfloat16 import widen_bfloat16
from .serialization import CheckpointError, PathLike

__all__ = ["UnsafeCheckpointError", "read_torch_checkpoint", "load_torch_checkpoint", "find_state_dict",
           "SAFE_GLOBALS"]


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint's pickle refers to a global that a file of tensors never needs; nothing was run."""


# -- storages and dtypes ----------------------------------------------------------------------------
# numpy has no bfloat16: such storages are read as uint16 and widened to float32 (exact).
_BF16 = "bfloat16"

#: torch dtype name -> numpy dtype (or ``"bfloat16"``).
TORCH_DTYPES: Dict[str, Any] = {
    "float64": np.float64, "double": np.float64, "float32": np.float32, "float": np.float32,
    "float16": np.float16, "half": np.float16, "bfloat16": _BF16,
    "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16,
    "short": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32,
    "uint64": np.uint64, "bool": np.bool_, "complex64": np.complex64, "cfloat": np.complex64,
    "complex128": np.complex128, "cdouble": np.complex128,
}

#: legacy typed-storage class name -> torch dtype name.
STORAGE_TYPES: Dict[str, str] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UInt16Storage": "uint16", "UInt32Storage": "uint32",
    "UInt64Storage": "uint64", "UntypedStorage": "uint8",
}


class _TorchDType:
    """Stand-in for a ``torch.dtype`` global (``torch.float32``)."""

    def __init__(self, name: str):
        self.name = name
        self.numpy = TORCH_DTYPES[name]
        # the dtype storages of this type are read as (bfloat16: its bits, widened later)
        self.storage_dtype = np.dtype(np.uint16 if self.numpy is _BF16 else self.numpy)
        self.itemsize = self.storage_dtype.itemsize

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageType(_TorchDType):
    """Stand-in for a storage class global (``torch.FloatStorage``)."""


class _Storage:
    """A storage's raw bytes (``data``, or read on first use through ``load()``) and its declared type."""

    def __init__(self, dtype: _TorchDType, load: Optional[Callable[[], memoryview]], order: str = "<"):
        self.dtype, self._load, self.order, self.data = dtype, load, order, None

    def array(self, dtype: _TorchDType) -> np.ndarray:
        """The storage as a flat array of ``dtype`` (its bits as uint16 for bfloat16), file byte order."""
        if self.data is None:
            if self._load is None:
                raise CheckpointError("malformed checkpoint: a tensor's storage has no data")
            self.data = self._load()
        np_dtype = dtype.storage_dtype.newbyteorder(self.order)
        return np.frombuffer(self.data, np_dtype, len(self.data) // np_dtype.itemsize)


# -- stand-ins for the globals a checkpoint may name ------------------------------------------------
def _rebuild_tensor(storage: _Storage, offset: int, size, stride, dtype: Optional[_TorchDType] = None,
                    metadata=None) -> np.ndarray:
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"malformed checkpoint: a tensor refers to {type(storage).__name__}, not a storage")
    dtype = dtype or storage.dtype
    flat = storage.array(dtype)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or offset < 0:
        raise CheckpointError(f"malformed checkpoint: tensor size {size} / stride {stride} / offset {offset}")
    if all(size):  # the last element read must lie inside the storage (as_strided does not check)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise CheckpointError(f"malformed checkpoint: a tensor of size {size} at offset {offset} reads past "
                                  f"its storage of {flat.size} elements (truncated file?)")
    view = np.lib.stride_tricks.as_strided(flat[offset:] if flat.size else flat, size,
                                           tuple(s * flat.itemsize for s in stride), writeable=False)
    out = np.array(view, order="C")  # an own, C-contiguous copy (the file may be closed after)
    out = out.astype(out.dtype.newbyteorder("="), copy=False)
    if dtype.numpy is _BF16:
        out = widen_bfloat16(out)
    if metadata and metadata.get("neg"):
        out = -out
    if metadata and metadata.get("conj"):
        out = np.conj(out)
    return out


def _rebuild_tensor_v1(storage, offset, size, stride):
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _rebuild_tensor(storage, offset, size, stride, metadata=metadata)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not isinstance(dtype, _TorchDType):
        raise CheckpointError(f"malformed checkpoint: tensor dtype {dtype!r}")
    return _rebuild_tensor(storage, offset, size, stride, dtype, metadata)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


class _TensorType:
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` (arguments of ``_rebuild_from_type_v2``)."""


def _rebuild_from_type_v2(func, new_type, args, state):
    if not getattr(func, "rebuilds_tensor", False) or new_type is not _TensorType:
        raise UnsafeCheckpointError(f"a tensor subclass rebuilt through {func!r} / {new_type!r} is not a plain tensor")
    return func(*args)


def _latin1_encode(text, encoding="latin1"):
    # protocol-2 pickles spell bytes objects as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(f"_codecs.encode is only allowed for latin1 bytes, got {encoding!r}")
    return text.encode("latin1")


def _device(*args):
    return str(args[0]) if args else "cpu"


def _numpy_scalar(dtype, data=None):
    # numpy scalars (np.float64(0.5)) as pickled by numpy: a dtype and the value's bytes
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafeCheckpointError(f"numpy scalar of dtype {dtype!r}")
    return np.frombuffer(data, dtype, 1)[0]


def _numpy_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec)
    if dtype.hasobject:
        raise UnsafeCheckpointError(f"numpy dtype {spec!r} holds Python objects")
    return dtype


_REBUILDERS = (_rebuild_tensor_v1, _rebuild_tensor_v2, _rebuild_tensor_v3)
for _f in _REBUILDERS:
    _f.rebuilds_tensor = True

#: ``(module, name)`` -> what the restricted unpickler hands out for it. Nothing else resolves.
SAFE_GLOBALS: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor_v1,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TensorType,
    ("torch.nn.parameter", "Parameter"): _TensorType,
    ("torch", "Size"): tuple,
    ("torch", "device"): _device,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}
SAFE_GLOBALS.update({("torch", name): _TorchDType(name) for name in TORCH_DTYPES})
SAFE_GLOBALS.update({("torch", name): _StorageType(dtype) for name, dtype in STORAGE_TYPES.items()})
SAFE_GLOBALS[("torch.storage", "UntypedStorage")] = _StorageType("uint8")
SAFE_GLOBALS[("torch.storage", "TypedStorage")] = _StorageType("uint8")


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`SAFE_GLOBALS`; storage ``key`` bytes come from ``load_storage(key)``.

    ``deferred``: tensors are rebuilt later (:class:`_Pending`), for files whose storage bytes
    follow the pickle.
    """

    def __init__(self, file, path, load_storage, deferred: bool = False, order: str = "<"):
        super().__init__(file, encoding="utf-8")
        self._path, self._load_storage, self._deferred, self._order = path, load_storage, deferred, order
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        # protocol-2 pickles spell Python 3 names the Python 2 way (__builtin__.set)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            found = SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._path}: refused: the checkpoint's pickle refers to the global '{module}.{name}', which a "
                f"file of tensors never needs (loading never runs code from a file). If you trust this file, "
                f"load it in PyTorch and re-save only its tensors (torch.save(model.state_dict(), path)).") from None
        if self._deferred and found in _REBUILDERS:
            return _deferred(found)
        return found

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise CheckpointError(f"{self._path}: malformed checkpoint: persistent id {pid!r}")
        if pid[0] == "module":  # legacy files embed a module's source text next to it: not needed
            return None
        if pid[0] != "storage" or len(pid) < 5 or not isinstance(pid[1], _StorageType):
            raise UnsafeCheckpointError(f"{self._path}: refused: unknown persistent object {pid[:2]!r}")
        dtype, key = pid[1], str(pid[2])
        if key not in self.storages:
            load = None if self._load_storage is None else (lambda k=key: self._load_storage(k))
            self.storages[key] = _Storage(dtype, load, self._order)
        storage = self.storages[key]
        view = pid[5] if len(pid) > 5 else None
        if view:  # legacy storage views: (view_key, offset, size) in elements of the base storage
            view_key, offset, size = view
            item = storage.dtype.itemsize
            storage = self.storages.setdefault(
                str(view_key), _Storage(dtype, lambda b=storage, o=int(offset), s=int(size), i=item:
                                        (b.array(b.dtype), b.data)[1][o * i:(o + s) * i], self._order))
        return storage


def _deferred(rebuild):
    def pending(*args):
        return _Pending(rebuild, args)

    pending.rebuilds_tensor = True
    return pending


# -- file formats ----------------------------------------------------------------------------------------
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def read_torch_checkpoint(path: PathLike) -> Any:
    """Everything a ``torch.save`` file holds, with tensors as numpy arrays, without importing torch.

    Reads the zip format and the legacy (pre-1.6) stream format. Raises
    :class:`UnsafeCheckpointError` if the pickle names a global outside :data:`SAFE_GLOBALS`,
    :class:`~rustyasg.nn.CheckpointError` for a missing, truncated or unknown file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    if tarfile.is_tarfile(path):
        raise CheckpointError(f"{path}: the tar checkpoint format of PyTorch < 0.4 is not supported; "
                              f"load it with that PyTorch and save it again")
    return _read_legacy(path)


def _read_zip(path: str) -> Any:
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointError(f"{path}: a zip file but not a PyTorch checkpoint (no <name>/data.pkl inside)")
        prefix = pkl[0][: -len("data.pkl")]
        order = zf.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped; zipfile would have failed first
            mm = None

        def load_storage(key):
            name = f"{prefix}data/{key}"
            try:
                info = zf.getinfo(name)
            except KeyError:
                raise CheckpointError(f"{path}: truncated checkpoint: storage {name!r} is missing") from None
            if info.compress_type != zipfile.ZIP_STORED or mm is None:
                return memoryview(zf.read(name))
            # stored entries are read in place: the data follows the local header
            head = mm[info.header_offset:info.header_offset + 30]
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                raise CheckpointError(f"{path}: corrupted zip entry {name!r}")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            if start + info.file_size > len(mm):
                raise CheckpointError(f"{path}: truncated checkpoint: storage {name!r} ends past the file")
            return memoryview(mm)[start:start + info.file_size]

        unpickler = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), path, load_storage,
                                         order="<" if order == "little" else ">")
        return _checked_load(unpickler, path, "pickle")


def _read_legacy(path: str) -> Any:
    """The pre-1.6 format: magic, protocol, sys info, the object, storage keys, then each storage's data.

    The storages' bytes follow the object, so its tensors are rebuilt once they are read.
    """
    with open(path, "rb") as fh:
        def load(what, deferred=False, order="<"):
            unpickler = _RestrictedUnpickler(fh, path, None, deferred, order)
            return _checked_load(unpickler, path, what), unpickler

        magic = load("header")[0]
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no zip archive and no legacy magic number)")
        load("protocol version")
        info = load("system info")[0]
        order = "<" if not isinstance(info, dict) or info.get("little_endian", True) else ">"
        obj, unpickler = load("object", deferred=True, order=order)
        keys = load("storage keys")[0]
        for key in keys:  # each: int64 element count, then the elements
            storage = unpickler.storages.get(str(key))
            head = fh.read(8)
            if storage is None or len(head) < 8:
                raise CheckpointError(f"{path}: truncated checkpoint: storage {key!r} is missing")
            nbytes = struct.unpack(order + "q", head)[0] * storage.dtype.itemsize
            data = fh.read(nbytes)
            if nbytes < 0 or len(data) < nbytes:
                raise CheckpointError(f"{path}: truncated checkpoint: storage {key!r} ends past the file")
            storage.data = memoryview(data)
        return _resolve(obj)


def _checked_load(unpickler: "_RestrictedUnpickler", path: str, what: str) -> Any:
    try:
        return unpickler.load()
    except (CheckpointError, MemoryError):
        raise
    except Exception as exc:  # pickle raises many kinds for damaged data
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (its {what}: "
                              f"{type(exc).__name__}: {exc})") from None


class _Pending:
    """A tensor of a legacy file, rebuilt once its storage's bytes are read."""

    def __init__(self, rebuild, args):
        self.rebuild, self.args = rebuild, args


def _resolve(obj):
    """Replace the pending tensors of a legacy file by arrays."""
    if isinstance(obj, _Pending):
        return obj.rebuild(*obj.args)
    if isinstance(obj, dict):
        out = type(obj)((k, _resolve(v)) for k, v in obj.items())
        if getattr(obj, "__dict__", None):
            out.__dict__.update(obj.__dict__)
        return out
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(_resolve(v) for v in obj)
    return obj


# -- state dicts ------------------------------------------------------------------------------------------
#: Keys under which training scripts commonly nest the model's state dict, in the order tried.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "params", "model_ema", "ema")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def find_state_dict(obj, key: Optional[str] = None, path: PathLike = "checkpoint") -> Dict[str, np.ndarray]:
    """The ``{name: array}`` state dict inside a loaded checkpoint.

    ``obj`` itself when it is one; else ``obj[key]`` (``key`` may be dotted: ``"model.ema"``), or
    the first of :data:`STATE_DICT_KEYS` holding one. Non-array entries of a nested state dict
    (a few scripts store step counters beside the weights) are left out.

    >>> find_state_dict({"model": {"w": np.zeros(2)}, "step": 3})["w"].shape
    (2,)
    """
    if key is not None:
        node = obj
        for part in key.split("."):
            if isinstance(node, Mapping) and part not in node and part.lstrip("-").isdigit():
                part = int(part)  # optimizer states are keyed by parameter index
            if not isinstance(node, Mapping) or part not in node:
                raise CheckpointError(f"{path}: no entry {key!r} in the checkpoint (top-level keys: "
                                      f"{_keys(obj)})")
            node = node[part]
        candidates = [node]
    else:
        candidates = [obj] + [obj[k] for k in STATE_DICT_KEYS if isinstance(obj, Mapping) and k in obj]
    for c in candidates:
        if isinstance(c, Mapping):
            arrays = OrderedDict((k, v) for k, v in c.items() if isinstance(k, str) and isinstance(v, np.ndarray))
            if arrays and (len(arrays) == len(c) or c is not obj):
                return arrays
    raise CheckpointError(f"{path}: no state dict of tensors found (top-level keys: {_keys(obj)}); "
                          f"pass key= (--key) naming the entry that holds the weights")


def _keys(obj) -> str:
    return ", ".join(map(repr, list(obj)[:20])) if isinstance(obj, Mapping) else type(obj).__name__


def load_torch_checkpoint(path: PathLike, key: Optional[str] = None) -> Dict[str, np.ndarray]:
    """The state dict of a ``torch.save`` file as ``{name: numpy array}``, without importing torch.

    ``key`` selects a nested entry (``"model"`` of a training checkpoint); by default the file's
    object itself or the first common entry holding tensors (see :func:`find_state_dict`).
    Load it into a model with :func:`rustyasg.nn.load_state_dict_from` (renaming torchvision,
    nanoGPT, timm and Hugging Face names).
    """
    return find_state_dict(read_torch_checkpoint(path), key, path)
