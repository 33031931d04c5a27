"""Device storage of each dtype: the WGSL to read and write an element, and the kernel prelude.

Data only (no kernel machinery), so generators (:mod:`.elementwise`, :mod:`.ew_ops`) and
the kernel interface (:mod:`.api`, which re-exports all of it) both import it.

Example::

    >>> storage_for("float64", True).name, header(STORAGES["f16"]).strip()
    ('f32', 'enable f16;')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np

from rustyasg.core.backend_api import bfloat16

# WGSL helpers for the (lo, hi) int64 storage: conversions through f32 and i32.
I64_WGSL = """
fn i64_to_f32(v: vec2<u32>) -> f32 {
    if ((v.y & 0x80000000u) != 0u) {
        let lo = ~v.x + 1u;
        let hi = ~v.y + select(0u, 1u, lo == 0u);
        return -(f32(hi) * 4294967296.0 + f32(lo));
    }
    return f32(v.y) * 4294967296.0 + f32(v.x);
}
fn i64_from_i32(v: i32) -> vec2<u32> {
    return vec2<u32>(bitcast<u32>(v), select(0u, 0xffffffffu, v < 0));
}
fn i64_from_f32(x: f32) -> vec2<u32> {
    // Truncation toward zero; NaN, +-inf and |x| >= 2**63 give int64's minimum (the core's rule).
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) {
        return vec2<u32>(0u, 0x80000000u);
    }
    let a = trunc(abs(x));
    let hi = floor(a / 4294967296.0);
    let lo = a - hi * 4294967296.0;
    var v = vec2<u32>(u32(lo), u32(hi));
    if (x < 0.0) {
        let nlo = ~v.x + 1u;
        v = vec2<u32>(nlo, ~v.y + select(0u, 1u, nlo == 0u));
    }
    return v;
}
"""


# f32 -> i32 by the core's rule (WGSL's i32() saturates): NaN, +-inf and out-of-range give int32's minimum.
I32_WGSL = """
fn i32_from_f32(x: f32) -> i32 {
    return select(bitcast<i32>(0x80000000u), i32(x), x >= -2147483648.0 && x < 2147483648.0);
}
"""


#: f32 -> bfloat16 word, rounded to nearest-even; NaN stays a quiet NaN (as ml_dtypes converts).
BF16_WGSL = """
fn bf16_from_f32(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; }
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}
"""


def f32_literal(value: float) -> str:
    """A WGSL f32 expression for ``value`` rounded to f32 as numpy does; inf and NaN, which have
    no WGSL literal (and may not be constant expressions), by their bits read at run time
    (``f32_from_bits``, in :data:`~rustyasg.wgpu.pipelines.LINEAR_WORKGROUP_WGSL`).

    >>> f32_literal(0.1), f32_literal(-np.inf), f32_literal(np.nan)
    ('0.10000000149011612', 'f32_from_bits(0xff800000u)', 'f32_from_bits(0x7fc00000u)')
    """
    with np.errstate(over="ignore"):
        v = np.float32(value)
    if np.isfinite(v):
        return repr(float(v))
    bits = 0x7fc00000 if np.isnan(v) else 0x7f800000 if v > 0 else 0xff800000
    return f"f32_from_bits({bits:#x}u)"


@dataclass(frozen=True)
class Storage:
    """How one dtype is laid out in a GPU buffer, and the WGSL to read and write it.

    ``name`` is one of ``f32``, ``f16``, ``bf16``, ``i32``, ``i64``, ``bool``; ``elem`` the WGSL
    element type; ``itemsize`` bytes per element on the device. ``bf16`` keeps each
    bfloat16's 16-bit word in a ``u32`` (WGSL has no 16-bit integer, and two values per
    word would need atomic writes): read by a 16-bit shift, written rounded to nearest-even.

    Example::

        >>> STORAGES["f16"].load("xs", "i")
        'f32(xs[i])'
        >>> STORAGES["i64"].store("ys", "i", "v")
        'ys[i] = i64_from_f32(v)'
    """

    name: str
    elem: str
    itemsize: int

    @property
    def array(self) -> str:
        """WGSL type of a storage binding of this storage: ``array<elem>``."""
        return f"array<{self.elem}>"

    @property
    def is_float(self) -> bool:
        return self.name in ("f32", "f16", "bf16")

    def load(self, arr: str, idx: str) -> str:
        """WGSL expression: element ``idx`` of ``arr`` as ``f32``."""
        if self.name == "f32":
            return f"{arr}[{idx}]"
        if self.name == "i64":
            return f"i64_to_f32({arr}[{idx}])"
        if self.name == "bf16":
            return f"bitcast<f32>({arr}[{idx}] << 16u)"
        return f"f32({arr}[{idx}])"

    def from_f32(self, value: str) -> str:
        """WGSL expression converting the ``f32`` expression ``value`` to ``elem``."""
        return {"f32": f"{value}", "f16": f"f16({value})", "bf16": f"bf16_from_f32({value})", "i32": f"i32_from_f32({value})",
                "i64": f"i64_from_f32({value})", "bool": f"select(0u, 1u, ({value}) != 0.0)"}[self.name]

    def store(self, arr: str, idx: str, value: str) -> str:
        """WGSL statement (no ``;``): store the ``f32`` expression ``value`` at ``arr[idx]``."""
        return f"{arr}[{idx}] = {self.from_f32(value)}"

    def index(self, arr: str, idx: str) -> str:
        """WGSL expression: element ``idx`` of an integer array as ``i32`` (for index operands)."""
        if self.name == "i64":
            return f"bitcast<i32>({arr}[{idx}].x)"
        if self.name == "i32":
            return f"{arr}[{idx}]"
        return f"i32({arr}[{idx}])"

    def store_index(self, arr: str, idx: str, value: str) -> str:
        """WGSL statement: store the ``i32`` expression ``value`` (argmax, pooling indices)."""
        if self.name == "i64":
            return f"{arr}[{idx}] = i64_from_i32({value})"
        return f"{arr}[{idx}] = {self.from_i32(value)}"

    def from_i32(self, value: str) -> str:
        return {"f32": f"f32({value})", "f16": f"f16(f32({value}))", "bf16": f"bf16_from_f32(f32({value}))",
                "i32": f"{value}",
                "i64": f"i64_from_i32({value})", "bool": f"select(0u, 1u, ({value}) != 0)"}[self.name]

    def literal(self, value: float) -> str:
        """WGSL constant of this storage's element type holding ``value`` (e.g. a pad value)."""
        if self.name == "f32":
            return f32_literal(value)
        if self.name == "f16":  # rounded to f16 first; inf and NaN through f32_literal's bits
            with np.errstate(over="ignore"):
                return f"f16({f32_literal(float(np.float16(value)))})"
        if self.name == "i32":
            return f"i32({int(value)})"
        if self.name == "bf16":
            return f"{int(np.array(value, bfloat16).view(np.uint16))}u"
        if self.name == "bool":
            return "1u" if value else "0u"
        word = int(value) & 0xFFFFFFFFFFFFFFFF
        return f"vec2<u32>({word & 0xFFFFFFFF}u, {word >> 32}u)"

    def to_device(self, array: np.ndarray) -> np.ndarray:
        """Host array converted to the bytes this storage keeps on the device."""
        if self.name == "bf16":
            return np.ascontiguousarray(np.asarray(array, bfloat16).view(np.uint16), dtype=np.uint32)
        host = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i64": np.int64, "bool": np.uint32}
        return np.ascontiguousarray(array, dtype=host[self.name])

    def to_host(self, raw: bytes, shape, dtype) -> np.ndarray:
        """Device bytes back to a numpy array of ``dtype``."""
        host = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i64": np.int64, "bool": np.uint32,
                "bf16": np.uint32}
        count = int(np.prod(shape, dtype=np.int64))
        arr = np.frombuffer(raw, dtype=host[self.name], count=count).reshape(shape)
        if self.name == "bf16":
            arr = arr.astype(np.uint16).view(bfloat16)
        return arr.astype(dtype) if arr.dtype != dtype else arr.copy()


STORAGES: Dict[str, Storage] = {
    "f32": Storage("f32", "f32", 4),
    "f16": Storage("f16", "f16", 2),
    "bf16": Storage("bf16", "u32", 4),
    "i32": Storage("i32", "i32", 4),
    "i64": Storage("i64", "vec2<u32>", 8),
    "bool": Storage("bool", "u32", 4),
}


#: Integer dtypes WGSL has no word for, and the wider dtype whose storage holds them on the device:
#: the host converts on upload and readback, kernels compute in the wide word and wrap a result
#: back into the narrow range (:func:`wrap_bits`, :mod:`rustyasg.wgpu.narrow_ints`).
WIDENED = {np.dtype(np.int8): np.dtype(np.int32), np.dtype(np.uint8): np.dtype(np.int32),
           np.dtype(np.int16): np.dtype(np.int32), np.dtype(np.uint16): np.dtype(np.int32),
           np.dtype(np.uint32): np.dtype(np.int64)}


def wrap_bits(dtype):
    """``(bits, signed)`` a value stored for ``dtype`` is wrapped to, or ``None`` when the word is the dtype.

    Example::

        >>> wrap_bits(np.int8), wrap_bits(np.uint32), wrap_bits(np.int32)
        ((8, True), (32, False), None)
    """
    dt = np.dtype(dtype)
    return (8 * dt.itemsize, dt.kind == "i") if dt in WIDENED else None


def holds(dst, src) -> bool:
    """Whether every ``src`` value, stored in ``dst``'s word, is already a ``dst`` value (a cast is a view).

    Example::

        >>> holds(np.int32, np.int8), holds(np.int8, np.int32), holds(np.float32, np.float64)
        (True, False, True)
    """
    dst, src = np.dtype(dst), np.dtype(src)
    return dst not in WIDENED or np.can_cast(src, dst, "safe")


def storage_for(dtype, has_f16: bool) -> Storage:
    """The :class:`Storage` a numpy dtype gets on an adapter (see the module table).

    Example::

        >>> storage_for(np.float64, True).name, storage_for(np.float16, False).name
        ('f32', 'f32')
    """
    dt = np.dtype(dtype)
    if dt == np.float16:
        return STORAGES["f16" if has_f16 else "f32"]
    if dt == bfloat16:
        return STORAGES["bf16"]
    if dt.kind == "f":
        return STORAGES["f32"]
    if dt == np.bool_:
        return STORAGES["bool"]
    if dt == np.int64:
        return STORAGES["i64"]
    if dt == np.int32 or dt in WIDENED and WIDENED[dt] == np.int32:
        return STORAGES["i32"]
    if dt in WIDENED:
        return STORAGES["i64"]
    if dt.kind in "iu":  # uint64 above 2**63 fits no signed word pair: refused, never a wrong answer
        raise TypeError(f"the wgpu backend has no {dt} tensors (values above 2**63 do not fit its exact int64 "
                        f"words); cast to int64 before the graph reaches the device, or use backend='cpu'")
    raise TypeError(f"wgpu backend: no device storage for dtype {dt}")




def header(*storages: Storage) -> str:
    """WGSL prelude for kernels using these storages (``enable f16;``, int64 helpers)."""
    names = {s.name for s in storages}
    text = "enable f16;\n" if "f16" in names else ""
    if "i32" in names:
        text += I32_WGSL
    if "i64" in names:
        text += I64_WGSL
    if "bf16" in names:
        text += BF16_WGSL
    return text
