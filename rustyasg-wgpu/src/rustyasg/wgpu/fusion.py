"""Elementwise fusion: maximal groups of same-shape float elementwise instructions, one kernel each.

Which instructions fuse (:func:`fusable`): core ops of kind ``elementwise`` that the
fused generator knows (:data:`~rustyasg.wgpu.kernels.elementwise.OPS`, via
:func:`ew_step`) and that compute in the *float domain*: every value is carried as
f32 inside the kernel (bool as 0/1, ints converted on load or store). Integer
arithmetic and comparisons stay exact in their own kernels (:mod:`.kernels.ew_ops`).

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

from rustyasg.core.registry import OPS as CORE_OPS

from .kernels.elementwise import OPS as EW_OPS

F32_MAX = 3.4028234663852886e38
#: Ops computed exactly on integers when an operand or the result is int32/int64.
INT_OPS = frozenset({
    "add", "sub", "mul", "neg", "abs", "sign", "square", "maximum", "minimum", "relu", "clamp",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "where", "identity",
    "stop_gradient", "cast", "floor_divide", "mod", "floor", "ceil", "round",
    "logical_not", "logical_and", "logical_or",
})
#: Ops the fused float kernel computes (the generator's table plus those lowered onto it).
FLOAT_EW_OPS = frozenset(EW_OPS) | {"cast", "stop_gradient", "identity", "leaky_relu", "elu", "softplus", "clamp"}


def _is_int(dt) -> bool:
    return np.dtype(dt).kind in "iu"


def int_domain(instr, in_dtypes: Sequence[np.dtype]) -> bool:
    """True when ``instr`` must compute on exact integers (see module doc)."""
    if instr.op == "cast":
        return not any(np.dtype(d).kind == "f" for d in list(in_dtypes) + [instr.dtype])
    if instr.op not in INT_OPS:
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
    if op in ("cast", "stop_gradient", "identity"):
        return [("identity", ())], 1
    if op == "leaky_relu":
        return [("leaky_relu", (a["negative_slope"],))], 1
    if op == "elu":
        return [("elu", (a["alpha"],))], 1
    if op == "softplus":
        return [("softplus", (a["beta"], a["threshold"]))], 1
    if op == "clamp":
        steps = []
        if a["min"] is not None:
            steps.append(("maximum", (a["min"],)))
        if a["max"] is not None:
            steps.append(("minimum", (a["max"],)))
        return steps or [("identity", ())], 1
    return [(op, ())], EW_OPS[op][0]


def fusable(instr, in_dtypes: Sequence[np.dtype]) -> bool:
    """Whether ``instr`` can be part of a fused float elementwise kernel."""
    opdef = CORE_OPS.get(instr.op)
    if opdef is None or opdef.kind != "elementwise" or instr.op == "one_hot":
        return False
    if instr.op not in FLOAT_EW_OPS:
        return False
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
