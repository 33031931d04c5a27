"""8/16-bit integers and uint32 on wgpu: stored in a wider word, computed wide, wrapped back.

WGSL has no 8/16-bit integers and RustyASG keeps uint32 exact in the int64 word pair, so
int8, uint8 and int16 live in ``i32`` words and uint32 in ``i64`` words
(:data:`~rustyasg.wgpu.kernels.storage.WIDENED`; the host converts on upload and readback).
A stored value is always inside its dtype's range; three mechanisms keep it there:

- exact integer elementwise kernels (add, mul, neg, floor_divide, shifts, pow, integer casts
  ...) compute in 64 bits and wrap their result into the output dtype before the store
  (:func:`~rustyasg.wgpu.kernels.ew_ops.int_kernel_wgsl`), so no extra kernel is spent;
- :func:`narrow_integers`, this program rewrite, for everything else that can leave the range:
  an op the float kernels compute (a float -> int8 cast) writes int32 instead (int64 for
  uint32: the core's float -> int rule goes through them), and a
  non-elementwise op that sums or multiplies (``sum_to``, ``scatter_add``, a ``cumsum`` kept
  narrow) computes in the wide dtype; in both cases a cast back to the narrow dtype wraps;
- the compiler treats a cast between one storage as a view only when no value can leave the
  target's range (:func:`~rustyasg.wgpu.kernels.storage.holds`): int8 -> int32 is free,
  int32 -> int8 is a wrapping kernel.

Ops that only move or select values (transpose, gather, concat, max ...) read and write the
narrow dtype as it is. ``bitcast`` between same-size integers is the wrapping cast
(int8 -> uint8, int32 <-> uint32); uint32 <-> float32 goes through int32.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.core.program import lower
    >>> x = rg.input((3,), "float32", name="x")
    >>> p = narrow_integers(lower([x], [x.astype("int8")], [], [((3,), np.dtype("float32"))]))
    >>> [(i.op, str(i.dtype)) for i in p.instrs]
    [('input', 'float32'), ('cast', 'int32'), ('cast', 'int8')]
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.backend_api import OPS, Instr
from rustyasg.core.compile.emit import Emitter

from .fusion import int_domain
from .kernels.storage import WIDENED

_SOURCES = ("input", "variable", "constant")
#: Non-elementwise ops whose every output element is one of their input elements (or a
#: declared fill): their narrow results stay in range without a wrap.
SELECTING = frozenset({"broadcast_to", "concat", "flip", "gather", "pad", "reshape", "slice", "slice_grad", "take",
                       "transpose", "max", "min", "identity", "stop_gradient", "zeros_like", "ones_like",
                       "broadcast", "all_gather"})


def _bitcast_plan(src: np.dtype, dst: np.dtype):
    """The casts and bitcasts replacing a bitcast that touches a widened dtype, or None to keep it."""
    if src not in WIDENED and dst not in WIDENED:
        return None
    ints = (src.kind in "iu", dst.kind in "iu")
    if all(ints):
        return [("cast", dst)]  # same size: the wrapping cast keeps the bits (int8 -1 -> uint8 255)
    if src == np.uint32 and dst == np.float32:
        return [("cast", np.dtype(np.int32)), ("bitcast", dst)]
    if src == np.float32 and dst == np.uint32:
        return [("bitcast", np.dtype(np.int32)), ("cast", dst)]
    return None  # int16 <-> 16-bit floats: the kernel refuses it with its message


def narrow_integers(program):
    """Keep every widened-dtype value in its range on wgpu (see the module docstring)."""
    if not any(i.dtype in WIDENED for i in program.instrs):
        return program
    by_id = program.by_id()
    em = Emitter(program)
    out = []

    def emit(op, inputs, attrs, shape, dtype, like, keep_id=False):
        iid = like.id if keep_id else em.fresh_id()
        ins = Instr(iid, op, tuple(inputs), attrs, tuple(shape), np.dtype(dtype), like.source,
                    like.name if keep_id else None)
        out.append(ins)
        by_id[iid] = ins
        return ins

    for ins in program.instrs:
        in_dtypes = [by_id[a].dtype for a in ins.inputs]
        if ins.op == "bitcast":
            plan = _bitcast_plan(by_id[ins.inputs[0]].dtype, ins.dtype)
            if plan is not None:
                cur = ins.inputs[0]
                for k, (op, dt) in enumerate(plan):
                    attrs = {"dtype": dt}
                    cur = emit(op, [cur], attrs, ins.shape, dt, ins, keep_id=k == len(plan) - 1).id
                continue
        if ins.dtype not in WIDENED or ins.op in _SOURCES or ins.op in SELECTING:
            out.append(ins)
            continue
        kind = OPS[ins.op].kind if ins.op in OPS else None
        if kind == "elementwise":
            if int_domain(ins, in_dtypes):
                out.append(ins)  # the exact integer kernel wraps on store
                continue
            # computed by the float kernels (a float -> int8 cast): store int32 (8/16-bit targets)
            # or int64 (uint32), the core's float -> int rule, and wrap in a cast
            wide, inputs = np.dtype(np.int32 if ins.dtype.itemsize <= 2 else np.int64), ins.inputs
        else:
            # sums and products run in the wide dtype: its inputs are views (no copy)
            wide = WIDENED[ins.dtype]
            inputs = tuple(emit("cast", [a], {"dtype": WIDENED[d]}, by_id[a].shape, WIDENED[d], ins).id
                           if d in WIDENED else a for a, d in zip(ins.inputs, in_dtypes))
        attrs = dict(ins.attrs)
        if attrs.get("dtype") is not None and np.dtype(attrs["dtype"]) == ins.dtype:
            attrs["dtype"] = wide
        inner = emit(ins.op, inputs, attrs, ins.shape, wide, ins)
        emit("cast", [inner.id], {"dtype": ins.dtype}, ins.shape, ins.dtype, ins, keep_id=True)
    program.instrs = out
    return program
