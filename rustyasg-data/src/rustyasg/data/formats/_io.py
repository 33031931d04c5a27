"""Shared file plumbing for the format readers: existence checks, gzip, and safe unpickling.

Every reader goes through these helpers so that a missing, truncated or corrupt file always
becomes the same :class:`~rustyasg.data.errors.DataFormatError` subclass with the path in it.

>>> import tempfile, gzip, os
>>> p = os.path.join(tempfile.mkdtemp(), "x.gz")
>>> with gzip.open(p, "wb") as f: _ = f.write(b"hello")
>>> read_bytes(p, "a greeting")
b'hello'
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MalformedDataError, MissingDataFileError, TruncatedDataError

_GZIP_MAGIC = b"\x1f\x8b"


def require_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path, or :class:`MissingDataFileError` saying what file was expected there."""
    p = Path(path)
    if not p.is_file():
        problem = "is a directory, not a file" if p.is_dir() else "no such file"
        raise MissingDataFileError(p, problem, expected)
    return p


def find_file(directory: Path, names: list[str], expected: str) -> Path:
    """The first of ``names`` (each also tried with ``.gz``) that exists in ``directory``."""
    candidates = [directory / n for name in names for n in (name, name + ".gz")]
    for c in candidates:
        if c.is_file():
            return c
    tried = ", ".join(c.name for c in candidates)
    raise MissingDataFileError(directory, f"none of these files exist: {tried}", expected)


def read_bytes(path: str | os.PathLike, expected: str) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    p = require_file(path, expected)
    raw = p.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        if p.suffix == ".gz":
            raise MalformedDataError(p, "has a .gz suffix but is not gzip-compressed", expected)
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise TruncatedDataError(p, "gzip stream ends early (incomplete download?)", expected) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise MalformedDataError(p, f"corrupt gzip data ({e})", expected) from None


# Only what numpy arrays, dicts, lists and bytes need: a data file has no business importing
# anything else, and refusing it turns "pickle runs arbitrary code" into a format error.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.dtypes", "UInt8DType"),
    ("numpy.dtypes", "Int64DType"),
    ("numpy.dtypes", "Float32DType"),
    ("numpy.dtypes", "Float64DType"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
}

_NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a data pickle must not contain")
        if _NUMPY_2 and module.startswith("numpy.core."):
            # Old pickles name numpy.core; numpy 2 renamed it and warns on the old path.
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


def load_pickle(path: str | os.PathLike, expected: str, encoding: str = "latin1") -> Any:
    """Unpickle a (possibly gzipped) data file, allowing only numpy arrays and plain containers.

    ``encoding`` is how Python 2 ``str`` objects are decoded: ``latin1`` keeps numpy buffers
    intact (the classic ``mnist.pkl.gz``), ``bytes`` keeps them as bytes (the CIFAR batches).
    """
    data = read_bytes(path, expected)
    try:
        return _DataUnpickler(io.BytesIO(data), encoding=encoding).load()
    except EOFError:
        raise TruncatedDataError(path, "pickle stream ends early", expected) from None
    except pickle.UnpicklingError as e:
        if "truncated" in str(e):
            raise TruncatedDataError(path, "pickle stream ends early", expected) from None
        raise MalformedDataError(path, f"not a valid data pickle ({e})", expected) from None
    except Exception as e:  # any other unpickling failure means the bytes are not this format
        raise MalformedDataError(path, f"not a valid data pickle ({type(e).__name__}: {e})", expected) from None
