"""Sums of slice gradients over adjacent ranges of one axis become one concat.

A tensor cut into pieces (``q``, ``k``, ``v`` out of one fused projection) gets, in the
backward pass, ``slice_grad(dq) + slice_grad(dk) + slice_grad(dv)``: a zero-padded copy of the
whole tensor per piece, then their sum. When the pieces are adjacent step-1 ranges of one axis,
that sum is ``slice_grad(concat(dq, dk, dv))``, and when they cover the axis, just the concat:
one copy of the gradients instead of three padded tensors written and read back.

Example::

    >>> from rustyasg.core.program import Instr
    >>> sg = Instr(3, "slice_grad", (1,), {"starts": (0, 4), "stops": (None, 8), "steps": (1, 1),
    ...                                    "shape": (2, 12)}, (2, 12), "float32")
    >>> slice_range(sg)
    (1, 4, 8)
"""

from __future__ import annotations

from typing import List, Optional, Tuple


def slice_range(ins) -> Optional[Tuple[int, int, int]]:
    """``(axis, start, stop)`` when ``slice_grad`` ``ins`` places its input at a step-1 range of
    one axis and all of every other axis; None otherwise (steps, several cut axes, symbolic sizes)."""
    shape = ins.attrs["shape"]
    cut: Optional[Tuple[int, int, int]] = None
    for d, (a, b, s) in enumerate(zip(ins.attrs["starts"], ins.attrs["stops"], ins.attrs["steps"])):
        if not all(v is None or type(v) is int for v in (a, b, s, shape[d])):
            return None
        lo, hi, step = slice(a, b, s).indices(shape[d])
        if step != 1 or hi < lo:
            return None
        if (lo, hi) != (0, shape[d]):
            if cut is not None:
                return None
            cut = (d, lo, hi)
    return cut if cut is not None else (0, 0, shape[0]) if shape else None


def summed_slice_grads(ins, by_id, uses) -> List:
    """The terms of the sum ``ins``: through additions of its own shape that nothing else
    reads, down to the first operand that is not such an addition."""
    terms, stack = [], [ins]
    while stack:
        node = stack.pop()
        if node.op == "add" and (node is ins or uses.get(node.id) == 1) and all(
                tuple(by_id[a].shape) == tuple(ins.shape) and by_id[a].dtype == ins.dtype for a in node.inputs):
            stack.extend(by_id[a] for a in reversed(node.inputs))
        else:
            terms.append(node)
    return terms


def merged_pieces(terms, by_id, made_here) -> Optional[Tuple[int, int, int, List[int]]]:
    """For a sum of slice gradients (``terms``, each read only by the sum) of one shape whose
    ranges of one axis meet end to end, in any order: ``(axis, start, stop, pieces)``, the
    pieces being the value ids to concatenate in order (a concat of ``made_here``, made by an
    earlier merge, is opened up into its pieces); None for anything else."""
    if len(terms) < 2 or any(t.op != "slice_grad" for t in terms):
        return None
    if len({(tuple(t.attrs["shape"]), t.dtype) for t in terms}) != 1:
        return None
    ranges = [slice_range(t) for t in terms]
    if any(r is None for r in ranges) or len({r[0] for r in ranges}) != 1:  # type: ignore[index]
        return None
    order = sorted(range(len(terms)), key=lambda k: ranges[k][1])  # type: ignore[index]
    if any(ranges[a][2] != ranges[b][1] for a, b in zip(order, order[1:])):  # type: ignore[index]
        return None
    axis = ranges[0][0]  # type: ignore[index]
    pieces: List[int] = []
    for k in order:
        src = by_id[terms[k].inputs[0]]
        if src.id in made_here and src.attrs["axis"] == axis:
            pieces.extend(src.inputs)
        else:
            pieces.append(src.id)
    return axis, ranges[order[0]][1], ranges[order[-1]][2], pieces  # type: ignore[index]


def slice_grad_sum(ins, by_id, uses, made_here) -> Optional[Tuple[int, int, int, List[int]]]:
    """:func:`merged_pieces` of the terms of ``add`` ``ins`` when every term is read only by it."""
    if ins.op != "add":
        return None
    terms = summed_slice_grads(ins, by_id, uses)
    if any(uses.get(t.id) != 1 for t in terms):
        return None
    return merged_pieces(terms, by_id, made_here)
