"""The ``cpu_fusion`` pass: the compiler kit's plan for the cpu backend.

The cpu backend declares what it fuses: an instruction whose kernel is an
:class:`~rustyasg.cpu.kernels.protocol.Elementwise` formula, iterated over its own
shape, and a reduction (sum, mean, max, min, sum_to) of a numeric operand, iterated
over the operand's shape and accumulated in the same loop. The grouping and the
order come from :func:`rustyasg.core.compile.plan_units` (convex by construction);
the pass writes the result to ``program.plan`` and the executable generates and
binds one kernel per fused unit. Members whose values are needed elsewhere are
the unit's ``writes``; the rest never touch memory.

Disable fusion with ``rustyasg.function(..., disabled_passes=("cpu_fusion",))``:
the executable then plans every instruction as its own unit.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4, 3), name="x")
    >>> f = rg.function([x], rg.tanh(x * 2.0 + 1.0).sum(), backend="cpu")
    >>> [len(u.members) for u in f.lower(np.ones((4, 3), np.float32)).plan.groups]
    [4]
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.compile import ELEMENTWISE, REDUCTION, Plan, plan_units, schedule_hints

from rustyasg.core.backend_api import LOW_PRECISION

from .kernels.protocol import Elementwise, Reduction

LEAVES = ("input", "variable", "constant")


#: How many instructions back a widening may join its operand's group (see ``reach`` below).
WIDENING_REACH = 32
#: How many instructions back a reduction may join its operand's group (a sum joined to a group far back
#: delayed that whole group, and the values it keeps, to the sum's place).
FUSION_REACH = 64
#: Ops scheduled as soon as they can run (see ``hint`` below).
WEIGHT_GRADIENTS = ("conv2d_backward_weight", "cpu.conv2d_gemm_weight")


def _kernel_table():
    from rustyasg.core.plugins import load_kernels

    return load_kernels("cpu")


def cpu_plan(program, fuse: bool = True, table=None) -> Plan:
    """The units (fused groups of two or more, single instructions) of ``program`` in order."""
    table = _kernel_table() if table is None else table
    by_id = program.by_id()

    def role(iid):
        ins = by_id[iid]
        kernel = table.get(ins.op)
        if not fuse:
            return None
        low = LOW_PRECISION.intersection((ins.dtype, *(by_id[a].dtype for a in ins.inputs)))
        if low and not (ins.op == "cast" and len(low) == 1 and
                        {ins.dtype, by_id[ins.inputs[0]].dtype} <= low | {np.dtype(np.float32)}):
            return None  # 16-bit floats are only stored (cpu_float16); their casts fuse (word conversions)
        if isinstance(kernel, Elementwise):
            return ELEMENTWISE
        if isinstance(kernel, Reduction) and ins.dtype.kind in "fiu":
            return REDUCTION
        return None

    def shape(iid):
        ins = by_id[iid]
        return by_id[ins.inputs[0]].shape if role(iid) == REDUCTION else ins.shape

    readers = {}
    for i in program.instrs:
        for a in i.inputs:
            readers.setdefault(a, []).append(i)

    def for_gemm_only(v) -> bool:
        users = readers.get(v, ())
        return bool(users) and all(u.op == "matmul" or (u.op in ("reshape", "transpose") and for_gemm_only(u.id))
                                   for u in users)

    def reach(iid):
        # a widening is made right before its reader (cpu_float16): joined to the group that made
        # its 16-bit operand long before, it would be one more float32 output stored until then.
        # One read only by GEMMs joins a group only to undo the narrowing just made of a
        # non-fused result (one pass: round trip to bfloat16 and back); otherwise it stays a kernel
        # of its own (a contiguous copy at memory speed): as one more float32 output of a long
        # elementwise kernel it halved that loop's vector width (GELU backward 1.8 -> 3.6 ms)
        ins = by_id[iid]
        if ins.op == "cast" and by_id[ins.inputs[0]].dtype in LOW_PRECISION and ins.dtype not in LOW_PRECISION:
            narrowed = by_id[ins.inputs[0]]
            round_trip = narrowed.op == "cast" and role(narrowed.inputs[0]) is None
            return WIDENING_REACH if round_trip or not for_gemm_only(iid) else 0
        return FUSION_REACH if role(iid) == REDUCTION else None

    hints = schedule_hints(program)
    sixteen_bit = any(i.dtype in LOW_PRECISION for i in program.instrs)

    def hint(iid):
        # a convolution's weight gradient runs as soon as its output gradient exists, with the
        # casts of its operands and result: it is the last reader of the input's columns (or of
        # the input), which program order (every weight gradient after the whole backward pass)
        # would keep alive to the end of the backward pass
        # (the widened output gradient; not a widened input, which is ready in the forward pass).
        # Under rematerialization the program's order is the one the remat pass planned its peak on;
        # a float32 program keeps program order (its shared columns are read by both GEMMs anyway,
        # and the input gradient's GEMM then finds the output gradient still in cache)
        ins = by_id[iid]
        if not sixteen_bit or program.options.get("remat"):
            return hints(iid)
        if ins.op in WEIGHT_GRADIENTS or (ins.op == "cast" and (
                by_id[ins.inputs[0]].op in WEIGHT_GRADIENTS
                or (readers.get(iid) and all(u.op in WEIGHT_GRADIENTS and u.inputs[0] == iid != u.inputs[1]
                                             for u in readers[iid])))):
            return "asap"
        return hints(iid)

    order = [i.id for i in program.instrs if i.op not in LEAVES]
    return plan_units(order, lambda i: by_id[i].inputs, role, shape, roots=program.roots(), min_group=2,
                      hint_of=hint, reach_of=reach)


def cpu_fusion(program):
    """Write the cpu plan onto ``program`` (see the module docstring)."""
    program.plan = cpu_plan(program)
    return program
