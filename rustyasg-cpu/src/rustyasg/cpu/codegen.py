"""Generate one numba kernel for a fused group of elementwise ops (+ reductions).

A group computes every member for one element of its iteration shape ``S`` in
a single loop nest, reading each operand once and writing only the values
needed outside the group. Dimensions are collapsed first: adjacent axes along
which every operand is either present or broadcast merge into one loop, so a
``(B, T, C) + (C,)`` bias add is a 2-deep loop ``[B*T, C]`` and a same-shape
chain is one flat loop. The source depends on the formulas, dtypes and that
broadcast *pattern* only, never on sizes, so one compiled kernel serves every
batch size and every layer with the same structure.

Reductions (sum, mean, max, min, sum_to) of a member over some axes accumulate
in the same loop nest: in a register when the reduced axes are innermost
(row sums, full reductions), else into the output array (column sums such as
bias gradients).

Example:
    >>> import numpy as np
    >>> from rustyasg.core.program import Instr
    >>> f32 = np.dtype("float32")
    >>> a = Instr(0, "input", (), {}, (4, 3), f32); b = Instr(1, "input", (), {}, (3,), f32)
    >>> s = Instr(2, "add", (0, 1), {}, (4, 3), f32); t = Instr(3, "tanh", (2,), {}, (4, 3), f32)
    >>> from rustyasg.cpu.kernels.elementwise import KERNELS
    >>> code = generate([s, t], [3], {0: a, 1: b}, KERNELS)
    >>> [shape for _, shape in code.operands]
    [(4, 3), (3,), (4, 3)]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from rustyasg.core.backend_api import ELEMENTWISE_TABLE as ROWS
from rustyasg.core.backend_api import MAXIMUM, MINIMUM, normalize_axes, sum_to_axes
from rustyasg.core.backend_api import bfloat16 as BF16

from .kernels.bfloat16 import WORD_CODECS
from .kernels.fastmath import FAST
from .kernels.protocol import Reduction, literal

#: 16-bit floats in generated kernels: (load, round, store) helpers by dtype (see kernels/bfloat16.py).
WORDS = {np.dtype(BF16): WORD_CODECS["bfloat16"], np.dtype(np.float16): WORD_CODECS["float16"]}


@dataclass
class GroupCode:
    """Generated source for a group and how to call it.

    ``operands``: ``(instr id, collapsed shape)`` in call order (external arrays,
    then outputs); ``split``: the kernel takes ``(lo, hi)``, a range of its outer loop,
    and can run in chunks on several threads; ``work``: elements times the members'
    weights (the elementwise table's cost classes).
    """

    source: str
    operands: List[Tuple[int, tuple]]
    outputs: List[int]
    split: bool
    work: int
    loop_shape: tuple = ()
    sizes: tuple = ()  # loop sizes no operand spans (a broadcast summed away), passed after the arrays


#: The modules generated kernels import helpers from (every one is in the stamp below).
HELPER_FILES = ("jit.py", "kernels/fastmath.py", "kernels/bfloat16.py", "kernels/convert.py")


def _helpers_stamp() -> str:
    """Hash of the helper sources the generated files depend on.

    numba caches a kernel by its own file only; embedding this stamp in every
    generated file means editing a helper produces new files instead of stale code.
    """
    here = Path(__file__).parent
    h = hashlib.sha1()
    for rel in HELPER_FILES:
        h.update((here / rel).read_bytes())
    return h.hexdigest()[:16]


_STAMP = None

#: The float32 helpers of :data:`.kernels.fastmath.FAST` that ``math`` does not provide.
FAST_HELPERS = ", ".join(sorted({f for pair in FAST.values() for f in pair if not f.startswith("math.")}))


def helpers_stamp() -> str:
    global _STAMP
    if _STAMP is None:
        _STAMP = _helpers_stamp()
    return _STAMP


def reduced_axes(ins, in_shape) -> Tuple[int, ...]:
    """Axes of ``in_shape`` that a reduction instruction sums over."""
    if ins.op == "sum_to":
        return sum_to_axes(in_shape, ins.attrs["shape"])
    return normalize_axes(ins.attrs.get("axis"), len(in_shape))


def _cost(op: str) -> int:
    """Work per element: the table's cost class (heavy ops weigh more when deciding whether a
    kernel is worth splitting across threads)."""
    row = ROWS.get(op)
    return row.cost if row is not None else 1


def _presence_of(shape, S) -> List[bool]:
    n = len(S)
    aligned = [None] * (n - len(shape)) + list(shape)
    return [aligned[d] is not None and aligned[d] == S[d] and S[d] != 1 for d in range(n)]


def _collapse(S, patterns: Sequence[List[bool]], full: Sequence[bool] = ()):
    """Drop size-1 axes and merge neighbours that every operand treats alike.

    A loop of one element keeps one axis, spanned by the operands ``full`` marks (those of the
    loop's rank): a lower-rank operand stays a broadcast, read once, as in the same group over
    more elements, so the two are one kernel (an optimizer's update of a 1-element bias and of a
    weight).
    """
    keep = [d for d in range(len(S)) if S[d] != 1]
    if not keep:
        return [1], [[full[k] if k < len(full) else True] for k in range(len(patterns))]
    sizes, pats = [S[keep[0]]], [[p[keep[0]]] for p in patterns]
    for d in keep[1:]:
        if all(p[d] == q[-1] for p, q in zip(patterns, pats)):
            sizes[-1] *= S[d]
        else:
            sizes.append(S[d])
            for p, q in zip(patterns, pats):
                q.append(p[d])
    return sizes, pats


def _init_value(combine: str, dtype) -> str:
    dtype = np.dtype(dtype)
    if combine == "sum":
        return literal(0, dtype)
    if dtype.kind == "f":
        return literal(float("-inf") if combine == "max" else float("inf"), dtype)
    info = np.iinfo(dtype)
    return literal(info.min if combine == "max" else info.max, dtype)


def _combine(combine: str, target: str, value: str) -> str:
    if combine == "sum":
        return f"{target} = accumulate({target}, {value})"
    # numpy's max/min reductions propagate NaN; Python's max/min drop it depending on the order.
    return f"{target} = {(MAXIMUM if combine == 'max' else MINIMUM).format(target, value)}"


def _scale_loop(arr: str, ndim: int, split: bool, scale: str) -> List[str]:
    """Lines multiplying every element of ``arr`` (``ndim`` axes; a split kernel: its rows
    ``lo:hi`` only) by ``scale``, as explicit loops.

    Not the array expression ``arr[:] = arr[:] * scale``: numba lowers that through its
    array-expression machinery, which took ~2 s of compilation for a batch-norm mean kernel
    whose loops compile in 0.15 s (measured).
    """
    lines, idx = [], []
    for d in range(max(ndim, 1)):
        rng = "range(np.uint64(lo), np.uint64(hi))" if (d == 0 and split) else f"range({arr}.shape[{d}])"
        lines.append("    " * d + f"for j{d} in {rng}:")
        idx.append(f"j{d}")
    at = f"{arr}[{', '.join(idx)}]"
    lines.append("    " * max(ndim, 1) + f"{at} = {at} * {scale}")
    return lines


def generate(members: Sequence, outputs: Sequence[int], by_id: Mapping[int, object],
             table: Mapping[str, object]) -> GroupCode:
    """Source of one kernel computing ``members`` (Instrs in topological order).

    ``outputs``: member ids whose values leave the group; ``by_id`` resolves
    external operands; ``table`` maps op names to their cpu kernels.
    """
    member_ids = {m.id for m in members}
    dtype_of = {m.id: m.dtype for m in members}
    red = [m for m in members if isinstance(table[m.op], Reduction)]
    ew = [m for m in members if not isinstance(table[m.op], Reduction)]
    S = tuple(ew[0].shape) if ew else tuple(by_id[red[0].inputs[0]].shape)

    # External operands: scalar constants become literals, everything else an array argument.
    ext_ids: List[int] = []
    literals: Dict[int, str] = {}
    for m in members:
        for a in m.inputs:
            if a in member_ids or a in ext_ids or a in literals:
                continue
            src = by_id[a]
            if src.op == "constant" and src.size == 1:
                value = np.asarray(src.attrs["value"]).reshape(-1)[0]
                lit_dtype = np.float32 if src.dtype in WORDS else src.dtype  # carried as float32
                literals[a] = literal(float(value) if src.dtype in WORDS else value.item(), lit_dtype)
            else:
                ext_ids.append(a)
    ew_outs = [o for o in outputs if o not in {r.id for r in red}]
    red_outs = [r for r in red if r.id in outputs]
    patterns = [_presence_of(by_id[a].shape, S) for a in ext_ids]
    patterns += [_presence_of(S, S) for _ in ew_outs]
    red_axes = {r.id: reduced_axes(r, S) for r in red_outs}
    patterns += [[d not in red_axes[r.id] and S[d] != 1 for d in range(len(S))] for r in red_outs]
    sizes, pats = _collapse(S, patterns, [len(by_id[a].shape) == len(S) for a in ext_ids])
    rank = len(sizes)

    names: Dict[int, str] = {}
    arrays = []  # (name, pattern, instr id)
    for k, a in enumerate(ext_ids):
        arrays.append((f"x{k}", pats[k], a))
    off = len(ext_ids)
    for k, o in enumerate(ew_outs):
        arrays.append((f"y{k}", pats[off + k], o))
    off += len(ew_outs)
    for k, r in enumerate(red_outs):
        arrays.append((f"r{k}", pats[off + k], r.id))

    def index(pattern):
        idx = [f"i{d}" for d in range(rank) if pattern[d]]
        return ", ".join(idx) if idx else "0"

    body: List[str] = []
    head: List[str] = []
    # Loop sizes come from any operand that spans the dimension.
    free = []  # dimensions no operand spans: sum(broadcast_to(x)) reduces a pure broadcast
    for d in range(rank):
        spanning = next((x for x in arrays if x[1][d]), None)
        if spanning is None:
            free.append(d)
            continue
        name, pattern, _ = spanning
        head.append(f"n{d} = {name}.shape[{sum(pattern[:d])}]")
    for k, a in enumerate(ext_ids):
        pattern = pats[k]
        load = f"x{k}[{index(pattern)}]" if any(pattern) else f"x{k}[0]"
        if by_id[a].dtype in WORDS:  # 16-bit floats arrive as 16-bit words: widened on load
            load = f"{WORDS[by_id[a].dtype][0]}({load})"
        (body if any(pattern) else head).append(f"a{k} = {load}")
        names[a] = f"a{k}"
    names.update(literals)

    red_plan = []  # (reduction instr, array name, prefix depth or None, mean inverse expr)
    for k, r in enumerate(red_outs):
        pattern = pats[off + k]
        prefix = next((j for j in range(rank + 1) if pattern[:j] == [True] * j and pattern[j:] == [False] * (rank - j)), None)
        if prefix == rank:
            prefix = None  # nothing reduced after collapsing: accumulate directly
        red_plan.append((r, f"r{k}", prefix, pattern))
    # A group of scalars (an optimizer's bias corrections) calls math's float64 functions: the
    # float32 helpers pay for themselves in SIMD loops, and each costs a numba compile on a cold
    # start (such a group was the demo's only user of exp32). Scalars are scalars at every batch
    # size, so one kernel still serves them all.
    libm = not S
    for m in members:
        kernel = table[m.op]
        if isinstance(kernel, Reduction):
            continue
        args = []
        for a in m.inputs:
            expr = names[a]
            src_dt = dtype_of[a] if a in member_ids else by_id[a].dtype
            if kernel.cast_inputs and np.dtype(src_dt) != m.dtype and m.dtype.kind == "f":
                expr = f"np.{m.dtype.name}({expr})"
            args.append(expr)
        name = f"v{len(names)}"
        if m.dtype in WORDS:  # only casts make 16-bit floats here (cpu_float16): round, keep float32
            body.append(f"{name} = {WORDS[m.dtype][1]}(np.float32({args[0]}))")
            names[m.id] = name
            continue
        expr = kernel.render(args, m.dtype, m.attrs, libm=libm)
        body.append(f"{name} = {expr}" if m.dtype.kind == "b" else f"{name} = np.{m.dtype.name}({expr})")
        names[m.id] = name
    for k, o in enumerate(ew_outs):
        value = f"{WORDS[dtype_of[o]][2]}({names[o]})" if dtype_of[o] in WORDS else names[o]
        body.append(f"y{k}[{index(pats[len(ext_ids) + k])}] = {value}")

    # Threads split the outer loop (see threads.py), only when no reduction runs along it. A loop
    # of one element takes (lo, hi) too: one source, one kernel, for every size of the group.
    split = all(pattern[0] for _, _, _, pattern in red_plan)
    inits_at: Dict[int, List[str]] = {}
    stores_at: Dict[int, List[str]] = {}
    tail: List[str] = []
    for r, arr, prefix, pattern in red_plan:
        kernel = table[r.op]
        value = names[r.inputs[0]]
        init = _init_value(kernel.combine, r.dtype)
        count = " * ".join(f"n{d}" for d in range(rank) if not pattern[d]) or "1"
        scale = f" * np.{r.dtype.name}(1.0 / ({count}))" if kernel.mean else ""
        if prefix is None:
            rows = "lo:hi" if split else ":"  # a split kernel initialises only its own rows
            head.append(f"{arr}[{rows}] = {init}")
            body.append(_combine(kernel.combine, f"{arr}[{index(pattern)}]", value))
            if kernel.mean:
                tail += _scale_loop(arr, sum(pattern), split, f"np.{r.dtype.name}(1.0 / ({count}))")
        else:
            acc = f"acc_{arr}"
            inits_at.setdefault(prefix, []).append(f"{acc} = {init}")
            body.append(_combine(kernel.combine, acc, value))
            idx = ", ".join(f"i{d}" for d in range(prefix)) or "0"
            stores_at.setdefault(prefix, []).append(f"{arr}[{idx}] = {acc}{scale}")

    def nest() -> List[str]:
        lines = [f"    {x}" for x in head + inits_at.get(0, [])]
        for d in range(rank):
            ind = "    " * (d + 1)
            # An unsigned range: with signed bounds numba adds negative-index wraparound to every
            # access and the loop no longer vectorizes (9x slower, measured).
            rng = "range(np.uint64(lo), np.uint64(hi))" if (d == 0 and split) else f"range(n{d})"
            lines.append(f"{ind}for i{d} in {rng}:")
            lines += [f"{ind}    {x}" for x in inits_at.get(d + 1, [])]
        ind = "    " * (rank + 1)
        lines += [f"{ind}{x}" for x in body]
        for d in reversed(range(rank)):
            ind = "    " * (d + 1)
            lines += [f"{ind}{x}" for x in stores_at.get(d, [])]
        lines += [f"    {x}" for x in tail]
        return lines

    size = int(np.prod(S, dtype=np.int64)) if S else 1
    params = ", ".join([name for name, _, _ in arrays] + [f"n{d}" for d in free] + (["lo", "hi"] if split else []))
    src = [f"# Generated by rustyasg.cpu.codegen (helpers {helpers_stamp()}); do not edit.",
           "import math", "import numpy as np",
           "from rustyasg.cpu.jit import accumulate, elementwise_jit",
           f"from rustyasg.cpu.kernels.fastmath import {FAST_HELPERS}",
           "from rustyasg.cpu.kernels.convert import to_int32, to_int64",
           "from rustyasg.cpu.kernels.bfloat16 import (bf16_to_f32, f32_to_bf16, round_bf16, f16_to_f32, "
           "f32_to_f16, round_f16)", "",
           "", "@elementwise_jit", f"def kernel({params}):"]
    src += nest()
    operands = []
    for name, pattern, iid in arrays:
        shape = tuple(sizes[d] for d in range(rank) if pattern[d]) or (1,)
        operands.append((iid, shape))
    return GroupCode("\n".join(src) + "\n", operands, list(ew_outs) + [r.id for r in red_outs], split,
                     size * sum(_cost(m.op) for m in members), tuple(sizes),
                     tuple(sizes[d] for d in free))
