"""Elementwise fusion: maximal groups of same-shape float elementwise instructions, one kernel each.

Which instructions fuse (:func:`fusable`): core ops of kind ``elementwise`` that the
fused generator knows (rows of the core's elementwise table with a WGSL expression,
:data:`~rustyasg.wgpu.kernels.elementwise.OPS`, via :func:`ew_step`) and that compute in the *float domain*: every value is carried as
f32 inside the kernel (bool as 0/1, ints converted on load or store). Integer
arithmetic and comparisons (rows marked ``exact_ints``) stay exact in their own kernels
(:mod:`.kernels.ew_ops`).

Grouping and scheduling are the compiler kit's (:func:`rustyasg.core.compile.plan_units`,
convex by construction); this module declares what the wgpu backend fuses and how
a fused instruction becomes steps of the generated kernel (:func:`ew_step`).

Example::

    >>> class I: op, attrs = "relu", {}
    >>> ew_step(I())
    ([('relu', ())], 1)
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from rustyasg.core.backend_api import LOW_PRECISION

from rustyasg.core.backend_api import ELEMENTWISE_TABLE as ROWS
from rustyasg.core.backend_api import OPS as CORE_OPS

from .kernels.elementwise import OPS as EW_OPS

F32_MAX = 3.4028234663852886e38
#: Ops computed exactly when every operand and the result are integers (float rows otherwise).
EXACT_ON_INTS_ONLY = frozenset({"pow"})


def float_fusable_op(op: str) -> bool:
    """Whether the fused float kernel computes ``op`` (a table row with WGSL, or clamp's steps)."""
    return op in EW_OPS or op == "clamp"


def _is_int(dt) -> bool:
    return np.dtype(dt).kind in "iu"


def int_domain(instr, in_dtypes: Sequence[np.dtype]) -> bool:
    """True when ``instr`` must compute on exact integers (see module doc)."""
    if instr.op == "cast":
        return not any(np.dtype(d).kind == "f" for d in list(in_dtypes) + [instr.dtype])
    if instr.op in EXACT_ON_INTS_ONLY:  # integer powers wrap as numpy's: exact, never through f32
        return all(_is_int(d) for d in list(in_dtypes) + [instr.dtype])
    row = ROWS.get(instr.op)
    if row is None or not row.exact_ints:
        return False
    return any(_is_int(d) for d in list(in_dtypes) + [instr.dtype])


def ew_step(instr) -> Tuple[List[Tuple[str, tuple]], int]:
    """The fused-generator steps for one instruction: ``[(op, literal args)], arity``.

    Attributes become literal arguments appended after the operands; a step's
    operand ``None`` stands for the previous step's result.

    Example::

        >>> class I: op, attrs = "clamp", {"min": None, "max": 1.0}
        >>> ew_step(I())
        ([('minimum', (1.0,))], 1)
    """
    op, a = instr.op, instr.attrs
    if op == "clamp":  # either bound may be None: one step per bound
        steps = []
        if a["min"] is not None:
            steps.append(("maximum", (a["min"],)))
        if a["max"] is not None:
            steps.append(("minimum", (a["max"],)))
        return steps or [("identity", ())], 1
    row = ROWS[op]
    return [(op, tuple(a[k] for k in row.attrs))], row.arity


def fusable(instr, in_dtypes: Sequence[np.dtype]) -> bool:
    """Whether ``instr`` can be part of a fused float elementwise kernel."""
    opdef = CORE_OPS.get(instr.op)
    if opdef is None or opdef.kind != "elementwise" or instr.op == "one_hot":
        return False
    if not float_fusable_op(instr.op):
        return False
    if instr.op == "cast" and np.dtype(instr.dtype) in LOW_PRECISION:
        return False  # a fused kernel keeps values in f32 registers: the cast must round through storage
    return not int_domain(instr, in_dtypes)


def scalar_constant(instr) -> Optional[float]:
    """The value of a 0-d float/bool constant instruction (passed to fused kernels as a uniform)."""
    if instr.op != "constant" or instr.shape != ():
        return None
    value = np.asarray(instr.attrs["value"])
    if value.dtype.kind in "iu" and abs(int(value)) >= (1 << 24):
        return None  # not exact in f32: keep it a buffer
    with np.errstate(over="ignore"):  # beyond the f32 range is +-inf in the kernel, as a cast would give
        return float(np.float32(value))
