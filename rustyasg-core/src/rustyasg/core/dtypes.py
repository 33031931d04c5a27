"""Data types and the one type-promotion table of RustyASG.

Dtypes are plain :class:`numpy.dtype` objects so compiled functions take and
return numpy arrays without conversion.

Promotion follows a single lattice, lowest first::

    bool < uint8, int8 < int16 < int32 < int64 < float16 < bfloat16 < float32 < float64

with PyTorch's rules among integers: uint8 and int8 meet at int16; uint32 and uint64 (stored and
computed, but not promoted) meet only themselves, bool and the floats.

The result of a binary op between two tensors is the higher of the two, except that
float16 and bfloat16 (neither holds the other) meet at float32, as in PyTorch.
bfloat16 is ``ml_dtypes.bfloat16``, the numpy dtype JAX and ONNX use.
Python scalars are *weak*: they never upcast a tensor (``x * 2.0`` stays
float32 for a float32 ``x``). A Python float meeting an integer or bool
tensor gives the default float type, float32, as in PyTorch and JAX.

Example:
    >>> promote_types(float32, float64)
    dtype('float64')
    >>> result_type_with_scalar(int32, 2.5)
    dtype('float32')
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

bool_ = np.dtype(np.bool_)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = np.dtype(np.int16)
uint32 = np.dtype(np.uint32)
uint64 = np.dtype(np.uint64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
float16 = np.dtype(np.float16)
bfloat16 = np.dtype(ml_dtypes.bfloat16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)

#: All dtypes a symbolic tensor may carry, lowest to highest in promotion order.
LATTICE = (bool_, uint8, int8, int16, uint32, int32, uint64, int64, float16, bfloat16, float32, float64)
_RANK = {dt: i for i, dt in enumerate(LATTICE)}
DEFAULT_FLOAT = float32
DEFAULT_INT = int64

FLOATING = frozenset({float16, bfloat16, float32, float64})
#: The 16-bit floats mixed precision computes in.
LOW_PRECISION = frozenset({float16, bfloat16})
INTEGER = frozenset({int8, uint8, int16, int32, int64, uint32, uint64})
#: Unsigned integers PyTorch stores but does not promote with other integers.
UNPROMOTED = frozenset({uint32, uint64})

_ALIASES = {
    "bool": bool_, "int8": int8, "uint8": uint8, "int16": int16, "uint32": uint32, "uint64": uint64,
    "int32": int32, "int64": int64, "float16": float16, "half": float16,
    "bfloat16": bfloat16, "bf16": bfloat16, "f16": float16,
    "float32": float32, "float": float32, "float64": float64, "double": float64,
}


def as_dtype(value) -> np.dtype:
    """Normalise a dtype-like value (name, numpy type, dtype) to a supported dtype.

    >>> as_dtype("float32")
    dtype('float32')
    """
    if isinstance(value, str) and value in _ALIASES:
        return _ALIASES[value]
    dt = np.dtype(value)
    if dt not in _RANK:
        names = ", ".join(str(d) for d in LATTICE)
        raise TypeError(f"unsupported dtype {dt}; RustyASG tensors are one of: {names}")
    return dt


def is_floating(dt) -> bool:
    """True for float16, bfloat16, float32 and float64."""
    return np.dtype(dt) in FLOATING


def is_integer(dt) -> bool:
    """True for the integer dtypes (int8, uint8, int16, int32, int64, uint32, uint64)."""
    return np.dtype(dt) in INTEGER


def promote_types(a, b) -> np.dtype:
    """The higher of two dtypes in the promotion lattice (float16 with bfloat16: float32).

    >>> promote_types("float16", "bfloat16")
    dtype('float32')
    """
    a, b = as_dtype(a), as_dtype(b)
    if a == b:
        return a
    if a in LOW_PRECISION and b in LOW_PRECISION:
        return float32
    if a in INTEGER and b in INTEGER:
        if a in UNPROMOTED or b in UNPROMOTED:  # as PyTorch: uint32/uint64 meet only themselves, bool and floats
            raise TypeError(f"no promotion between {a} and {b} (uint32 and uint64 combine only with their own "
                            "dtype, bool and floats, as in PyTorch); cast one operand first")
        return np.promote_types(a, b)  # uint8 with int8 is int16, as PyTorch
    return a if _RANK[a] >= _RANK[b] else b


def scalar_kind(value) -> str:
    """'bool', 'int' or 'float' for a Python/numpy scalar."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    raise TypeError(f"not a scalar: {value!r} ({type(value).__name__})")


def result_type_with_scalar(dt, value) -> np.dtype:
    """dtype of ``tensor(dt) <op> python_scalar``: the scalar is weak."""
    dt = as_dtype(dt)
    kind = scalar_kind(value)
    if kind == "float" and not is_floating(dt):
        return DEFAULT_FLOAT
    if kind == "int" and dt == bool_:
        return DEFAULT_INT
    return dt


def scalar_dtype(value) -> np.dtype:
    """dtype a lone Python scalar becomes when it must be a tensor on its own."""
    return {"bool": bool_, "int": DEFAULT_INT, "float": DEFAULT_FLOAT}[scalar_kind(value)]
