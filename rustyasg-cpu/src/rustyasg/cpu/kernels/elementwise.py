"""Elementwise ops: the cpu rendering of the core's elementwise table.

Each row of the core's elementwise table (:mod:`rustyasg.core.backend_api`) becomes an :class:`Elementwise`
kernel: its numba expression is what the fusion code generator inlines into one loop per
fused group; an op that runs alone uses the row's numpy ufunc when its operands share the
result's dtype, otherwise a one-op generated kernel. Rows added later (a plugin's op)
are rendered when they are added (see :mod:`rustyasg.cpu.plugin`).

Example:
    >>> KERNELS["relu"].template
    '({T}(0) if {0} < {T}(0) else {0})'
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.backend_api import ELEMENTWISE_TABLE as ROWS
from rustyasg.core.backend_api import GELU_TANH_GATE, GELU_TANH_GRAD_GATED, MAXIMUM, MINIMUM, EwRow

from .protocol import SMALL_ALONE, Elementwise, Impl

__all__ = ["KERNELS", "MAXIMUM", "MINIMUM", "render"]


def _small_cast(x, out):
    """numpy's cast, with floats to integers by the core's rule (what the generated loop computes)."""
    from rustyasg.core.backend_api import float_to_int

    to_int = x.dtype.kind == "f" and out.dtype.kind in "iu"
    np.copyto(out, float_to_int(x, out.dtype) if to_int else x, casting="unsafe")


def _cast_alone(ins, args):
    """Casts from or to 16-bit floats, which numba cannot compute on: bfloat16 by bit shifts
    (:mod:`.bfloat16`), float16 as numpy copies; a small cast (a classifier's label mask turned
    into weights) as numpy's, one numba compile fewer on a cold start."""
    from rustyasg.core.backend_api import bfloat16

    from .bfloat16 import from_bfloat16, to_bfloat16

    if args[0].dtype == bfloat16 and ins.dtype != bfloat16:
        return Impl(run=from_bfloat16, label="cast.from_bfloat16")
    if ins.dtype == bfloat16 and args[0].dtype != bfloat16:
        return Impl(run=to_bfloat16, label="cast.to_bfloat16")
    if np.float16 in (ins.dtype, args[0].dtype):
        return Impl(run=lambda x, out: np.copyto(out, x, casting="unsafe"), elementwise=True, label="numpy.cast")
    if ins.size <= SMALL_ALONE and args[0].dtype.kind in "biuf" and ins.dtype.kind in "biuf":
        return Impl(run=_small_cast, elementwise=True, label="numpy.cast")
    return None


def _copy_where(cond, x, y, out):
    np.copyto(out, y)
    np.copyto(out, x, where=cond)


def _where_alone(ins, args):
    """A small ``where`` (a ReLU gradient next to a GEMM, say) as two numpy copies: its generated
    loop, of mixed operand dtypes, would be one more numba compile on a cold start."""
    if ins.size > SMALL_ALONE or args[0].dtype != np.bool_ or any(a.dtype != ins.dtype for a in args[1:]):
        return None
    return Impl(run=_copy_where, elementwise=True, label="numpy.where")


#: Builders for ops that need cpu-specific handling when they run alone.
ALONE = {"cast": _cast_alone, "where": _where_alone}


def _cast_formula(core_formula):
    """The core's cast, with integer targets converted by the core's float -> int rule (:mod:`.convert`)."""
    from .convert import VIA

    def formula(args, dtype, attrs):
        via = VIA.get(dtype.name)
        if via is None:
            return core_formula(args, dtype, attrs)
        inner = f"{via}({args[0]})"
        return inner if dtype.name in ("int32", "int64") else f"np.{dtype.name}({inner})"
    return formula


def render(row: EwRow) -> Elementwise:
    """The cpu kernel of one table row."""
    kw = dict(numpy=row.ufunc, cast_inputs=row.cast_inputs, predicate=row.predicate, alone=ALONE.get(row.name))
    if row.name == "cast":
        return Elementwise(formula=_cast_formula(row.numba), **kw)
    if callable(row.numba):
        return Elementwise(formula=row.numba, **kw)
    return Elementwise(row.numba, **kw)


KERNELS = {name: render(row) for name, row in ROWS.items() if row.numba is not None}
# The tanh-GELU's gate, and its gradient from the gate, for a training step that computes the gate once
# (``cpu_gelu_gate``): the core's formulas, so the values are those of ``gelu_tanh`` and its gradient.
KERNELS["cpu.gelu_tanh_gate"] = Elementwise(GELU_TANH_GATE, cast_inputs=True)
KERNELS["cpu.gelu_tanh_grad_gated"] = Elementwise(GELU_TANH_GRAD_GATED, cast_inputs=True)
