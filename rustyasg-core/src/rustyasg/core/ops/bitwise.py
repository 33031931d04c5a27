"""Bitwise ops on integers and bools: and, or, xor, not, left and right shifts (PyTorch's ``&``, ``|``,
``^``, ``~``, ``<<``, ``>>``).

Each is a row of the elementwise table, exact on integers on every backend (the wgpu backend
computes them on the two 32-bit words of a 64-bit integer). On bools, and/or/xor/not are the
logical ones, as in PyTorch. Right shifts of signed integers are arithmetic (the sign is kept).
A shift by the width of the type or more gives 0 (-1 for a negative number shifted right), as
PyTorch's.

``bitcast`` reads a tensor's bytes as another dtype of the same size.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> a = rg.constant(np.array([12, -8], np.int64))
    >>> (a & 10).numpy(), (a >> 2).numpy(), (~a).numpy()
    (array([8, 8]), array([ 3, -2]), array([-13,   7]))
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType
from ..shapes import broadcast_shapes
from ._define import defop
from .elementwise_table import COMPARE, define_elementwise

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift",
           "bitcast"]


def _int_or_bool(types, **_):
    for t in types:
        if not (dtypes.is_integer(t.dtype) or t.dtype == dtypes.bool_):
            raise TypeError(f"bitwise ops need integer or bool tensors, got {t.dtype}")
    shape = broadcast_shapes(*(t.shape for t in types)) if len(types) > 1 else types[0].shape
    return TensorType(shape, types[0].dtype)


def _int_only(types, **_):
    for t in types:
        if not dtypes.is_integer(t.dtype):
            raise TypeError(f"shifts need integer tensors, got {t.dtype}")
    return _int_or_bool(types)


def _bits(dtype) -> int:
    return np.dtype(dtype).itemsize * 8


def _truth_ref(fn):
    """``fn`` of integers/bools; a float operand (only the wgpu row tests feed one: its float kernels carry
    bools as 1.0/0.0) counts as its truth value."""
    def ref(*xs):
        return fn(*[x.astype(bool) if x.dtype.kind == "f" else x for x in map(np.asarray, xs)])
    return ref


def _shift_ref(left):
    def ref(a, b):
        a, b = np.asarray(a), np.asarray(b).astype(np.int64)
        bits = _bits(a.dtype)
        big = (b >= bits) | (b < 0)
        safe = np.where(big, 0, b).astype(a.dtype)
        out = np.left_shift(a, safe) if left else np.right_shift(a, safe)
        overflow = np.zeros_like(out) if left else np.where(a < 0, -1, 0).astype(a.dtype)
        return np.where(big, overflow, out)
    return ref


def _shift_numba(left):
    def formula(args, dtype, attrs):
        a, b = args
        bits = _bits(dtype)
        over = f"{_T(dtype)}(0)" if left else f"({_T(dtype)}(-1) if {a} < 0 else {_T(dtype)}(0))"
        op = "<<" if left else ">>"
        return f"({over} if ({b} >= {bits} or {b} < 0) else {_T(dtype)}({a} {op} {b}))"
    return formula


def _T(dtype):
    return f"np.{np.dtype(dtype).name}"


def _logic_numba(op):
    def formula(args, dtype, attrs):
        a, b = args
        if dtype.kind == "b":
            return f"(({a} != 0) {op} ({b} != 0))"
        return f"({a} {op} {b})"
    return formula


def _not_numba(args, dtype, attrs):
    return f"(not {args[0]})" if dtype.kind == "b" else f"(~{args[0]})"


# Bools reach the wgpu backend's float kernels as 1.0/0.0; integers its exact 64-bit kernels.
_TRUTH = "({0} != {T}(0.0)) %s ({1} != {T}(0.0))"
_SEL = "select({T}(0.0), {T}(1.0), %s)"
_INTS = (InputSpec((3, 4), dtype="int64", low=-50, high=50), InputSpec((4,), dtype="int64", low=-50, high=50))
_SHIFTS = (InputSpec((3, 4), dtype="int64", low=-50, high=50), InputSpec((4,), dtype="int64", low=0, high=70))
_ROW = dict(exact_ints=True, nan=COMPARE)


def _ex(specs):
    return (Example(specs, check_grad=False),)


bitwise_and = define_elementwise("bitwise_and", _truth_ref(np.bitwise_and), None,
                                 "Bitwise and (logical and on bools).", arity=2,
                                 numba=_logic_numba("&"), wgsl=_SEL % (_TRUTH % "&"), infer=_int_or_bool,
                                 examples=_ex(_INTS), **_ROW)
bitwise_or = define_elementwise("bitwise_or", _truth_ref(np.bitwise_or), None,
                                "Bitwise or (logical or on bools).", arity=2,
                                numba=_logic_numba("|"), wgsl=_SEL % (_TRUTH % "|"), infer=_int_or_bool,
                                examples=_ex(_INTS), **_ROW)
bitwise_xor = define_elementwise("bitwise_xor", _truth_ref(np.bitwise_xor), None,
                                 "Bitwise exclusive or (``!=`` on bools).",
                                 arity=2, numba=_logic_numba("^"), wgsl=_SEL % (_TRUTH % "!="), infer=_int_or_bool,
                                 examples=_ex(_INTS), **_ROW)
bitwise_not = define_elementwise("bitwise_not", _truth_ref(np.invert), None,
                                 "Bitwise not, ``-x - 1`` (logical not on bools).",
                                 numba=_not_numba, wgsl=_SEL % "{0} == {T}(0.0)", infer=_int_or_bool,
                                 examples=_ex(_INTS[:1]), **_ROW)
bitwise_left_shift = define_elementwise("bitwise_left_shift", _shift_ref(True), None,
                                        "``a << b``; 0 once ``b`` reaches the type's width.", arity=2,
                                        numba=_shift_numba(True), infer=_int_only, examples=_ex(_SHIFTS), **_ROW)
bitwise_right_shift = define_elementwise("bitwise_right_shift", _shift_ref(False), None,
                                         "``a >> b``, arithmetic (the sign is kept); 0 or -1 once ``b`` reaches the "
                                         "type's width.", arity=2, numba=_shift_numba(False), infer=_int_only,
                                         examples=_ex(_SHIFTS), **_ROW)


# --- bitcast -------------------------------------------------------------------------------------
def _bitcast_infer(types, dtype, source):
    t = types[0]
    dtype = dtypes.as_dtype(dtype)
    if t.dtype == dtypes.bool_ or dtype == dtypes.bool_:
        raise TypeError("bitcast does not take bool (its bytes are not a number's bits)")
    if t.dtype.itemsize != dtype.itemsize:
        raise TypeError(f"bitcast needs dtypes of one size: {t.dtype} has {t.dtype.itemsize} bytes, "
                        f"{dtype} has {dtype.itemsize}")
    return TensorType(t.shape, dtype)


def _bitcast_ref(x, dtype, source):
    # The reference backend hands float operands over in float64; their own dtype holds them exactly.
    return np.ascontiguousarray(np.asarray(x).astype(source)).view(dtype)


_bitcast_op = defop("bitcast", infer=_bitcast_infer, reference=_bitcast_ref, grad=None, kind="movement",
                    attrs={"dtype": Attr(dtypes.as_dtype), "source": Attr(dtypes.as_dtype)},
                    # names, not dtypes: a conformance run in float16 must not retype the attributes
                    examples=(Example((InputSpec((3, 5), dtype="int32", low=0, high=1 << 30),),
                                      {"dtype": "float32", "source": "int32"}, check_grad=False),),
                    doc="The same bytes read as another dtype of the same size (``Tensor.view(dtype)``).")


def bitcast(x, dtype):
    """The bits of ``x`` read as ``dtype`` (same item size; ``torch.Tensor.view(dtype)``); not differentiable.

    >>> import numpy as np, rustyasg.core as rg
    >>> rg.bitcast(rg.constant(np.float32([1.0, -2.0])), "int32").numpy()
    array([ 1065353216, -1073741824], dtype=int32)
    """
    from ..graph import as_tensor

    x = as_tensor(x)
    return _bitcast_op(x, dtype=dtype, source=x.dtype)
