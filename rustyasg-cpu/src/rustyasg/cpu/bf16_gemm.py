"""The ``cpu_bf16_gemm`` pass: bfloat16 matmuls multiply the 16-bit words (MKL), not widened copies.

``cpu_float16`` computes every bfloat16 instruction in float32 between casts, so a bfloat16
matmul becomes ``matmul(cast(a), cast(b))`` on float32 copies of its operands (each moved
by the transposes and reshapes that fed it). Where MKL's bfloat16 GEMM is in use
(:func:`.kernels.mkl.use_bf16_gemm`), this pass gives such a matmul the 16-bit operands
themselves, moved the same way, as a ``cpu.matmul_bf16`` with the same float32 result: the
widening copies (a pass over memory each) disappear, and the product runs on the
processor's bfloat16 units. Convolutions (:data:`CONVOLUTIONS`) whose operands are all widened
bfloat16 values read those values instead: their kernels then build bfloat16 columns and run
their GEMMs through MKL (:mod:`.kernels.conv`), with the same float32 result. Nothing changes for values, dtypes or results: the products of
bfloat16 numbers are exact in float32 and both GEMMs accumulate in float32.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> a = rg.input((4, 8), "bfloat16", name="a")
    >>> f = rg.function([a], rg.matmul(a, a.mT), backend="cpu")
    >>> ops = [i.op for i in f.lower(np.ones((4, 8), rg.bfloat16)).instrs]
    >>> from rustyasg.cpu.kernels.mkl import use_bf16_gemm
    >>> ("cpu.matmul_bf16" in ops) == use_bf16_gemm()
    True
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from rustyasg.core.backend_api import bfloat16


#: Moves a widened operand may pass through on its way to the matmul (replayed on the 16-bit value).
MOVES = ("reshape", "transpose")
OP = "cpu.matmul_bf16"
#: Ops whose cpu kernels take bfloat16 operands and give the float32 result through MKL's GEMM.
CONVOLUTIONS = ("conv2d", "conv2d_backward_weight", "conv2d_backward_input")


def _narrow_source(by_id, value) -> Optional[Tuple[object, List[object]]]:
    """``(bfloat16 instruction, moves from it to value)`` when ``value`` is a widened bfloat16
    value moved by :data:`MOVES` only; else None."""
    chain, cur = [], by_id[value]
    while cur.op in MOVES:
        chain.append(cur)
        cur = by_id[cur.inputs[0]]
    if cur.op == "cast" and cur.dtype == np.float32 and by_id[cur.inputs[0]].dtype == bfloat16:
        return by_id[cur.inputs[0]], chain[::-1]
    return None


def bf16_gemm(program):
    """Turn float32 matmuls of two widened bfloat16 operands into ``cpu.matmul_bf16`` (see the module doc)."""
    from .kernels.mkl import use_bf16_gemm  # here, not at import: registering passes loads no numba

    bf16 = np.dtype(bfloat16)
    if not any(i.dtype == bf16 for i in program.instrs) or not use_bf16_gemm():
        return program
    from rustyasg.core.passes import dce
    from rustyasg.core.program import Instr

    by_id = program.by_id()
    next_id = program.new_id()
    out, changed = [], False
    for ins in program.instrs:
        if ins.op == "matmul" and ins.dtype == np.float32 and all(len(by_id[a].shape) >= 2 for a in ins.inputs):
            sources = [_narrow_source(by_id, a) for a in ins.inputs]
            if all(s is not None for s in sources):
                operands = []
                for root, moves in sources:
                    cur = root.id
                    for move in moves:
                        moved = Instr(next_id, move.op, (cur,), dict(move.attrs), move.shape, bf16, move.source)
                        next_id += 1
                        by_id[moved.id] = moved
                        out.append(moved)
                        cur = moved.id
                    operands.append(cur)
                ins.op, ins.inputs = OP, tuple(operands)
                changed = True
        elif ins.op in CONVOLUTIONS and ins.dtype == np.float32:
            sources = [_narrow_source(by_id, a) for a in ins.inputs]
            if all(s is not None and not s[1] for s in sources):
                ins.inputs = tuple(root.id for root, _ in sources)
                changed = True
        out.append(ins)
    program.instrs = out
    return dce(program) if changed else program
