"""Algebraic simplification: rewrite instructions that do nothing.

Rules (each keeps dtype and shape exactly, so the rewrite is invisible):
``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``x ** 1``, ``neg(neg(x))``, ``identity(x)``,
``stop_gradient(x)`` (a program is already differentiated: a kept one became a copy of its
input wherever it joined a fused group, a batch norm's whole input on every step), reshape/broadcast_to/sum_to to the same shape, identity transposes, casts to the same
dtype, and transpose-of-transpose; ``x ** 2`` becomes ``square(x)``; the transpose of a
matmul used once becomes the matmul of the swapped, transposed operands; a sum of slice
gradients over adjacent ranges of one axis becomes one concat (:mod:`.slice_grads`); a
matmul over an inner dimension of 1, ``(..., M, 1) @ (..., 1, N)`` (the input gradient of a
layer with one output unit, say), becomes the broadcast product ``mul`` it is: each result is
one product, so the values are the same, and an elementwise op fuses with its neighbours
where a GEMM call cannot (numpy's matmul took 8 us for a 32 x 1 x 64 product, the
multiplication 3 us, on a 2-vCPU Xeon).
"""

from __future__ import annotations

import numpy as np

from ..program import Instr
from ..shapes import broadcast_shapes
from .rewrite import replace_uses
from .slice_grads import slice_grad_sum


def _const_equals(ins, value) -> bool:
    if ins is None or ins.op != "constant":
        return False
    arr = ins.attrs["value"]
    return arr.size > 0 and bool(np.all(arr == value))


def _swap_last_two(ndim: int) -> tuple:
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


def _is_outer_product(ins, a, b) -> bool:
    """Whether matmul ``ins`` of ``a`` and ``b`` has an inner dimension of 1 and is their broadcast product."""
    if len(a.shape) < 2 or len(b.shape) < 2 or not (type(a.shape[-1]) is int and a.shape[-1] == 1):
        return False
    if a.dtype != ins.dtype or b.dtype != ins.dtype:
        return False
    try:
        return tuple(broadcast_shapes(a.shape, b.shape)) == tuple(ins.shape)
    except ValueError:
        return False


def simplify(program):
    by_id = program.by_id()
    mapping = {}
    uses = {i: len(u) for i, u in program.users().items()}
    for root in program.roots():
        uses[root] = uses.get(root, 0) + 1
    next_id = [program.new_id()]
    kept = []

    def emit(op, inputs, attrs, shape, like):
        """A new instruction (dtype and source of ``like``), kept in program order here."""
        new = Instr(next_id[0], op, tuple(inputs), attrs, tuple(shape), like.dtype, like.source)
        next_id[0] += 1
        by_id[new.id] = new
        kept.append(new)
        return new

    def transposed(arg):
        """``arg`` with its last two axes swapped: an existing source if arg is such a swap, else a new node."""
        swap = _swap_last_two(len(arg.shape))
        if arg.op == "transpose" and tuple(arg.attrs["axes"]) == swap:
            return src(arg.inputs[0])
        return emit("transpose", (arg.id,), {"axes": swap}, (arg.shape[a] for a in swap), arg)

    made_concats: set = set()

    def concat_of(pieces, axis, like):
        """A new concat of ``pieces`` along ``axis`` (dtype and source of ``like``)."""
        shape = list(by_id[pieces[0]].shape)
        shape[axis] = sum(by_id[p].shape[axis] for p in pieces)
        new = emit("concat", pieces, {"axis": axis}, shape, like)
        made_concats.add(new.id)
        return new

    def src(i):
        while i in mapping:
            i = mapping[i]
        return by_id[i]

    for ins in program.instrs:
        ins.inputs = tuple(mapping.get(a, a) for a in ins.inputs)
        args = [src(a) for a in ins.inputs]
        same = lambda a: a.shape == ins.shape and a.dtype == ins.dtype  # noqa: E731
        target = None
        if ins.op in ("add", "sub") and _const_equals(args[1], 0) and same(args[0]):
            target = args[0]
        elif ins.op == "add" and _const_equals(args[0], 0) and same(args[1]):
            target = args[1]
        elif (ins.op == "add" and same(args[0]) and same(args[1])
              and (merged := slice_grad_sum(ins, by_id, uses, made_concats)) is not None):
            axis, lo, hi, pieces = merged
            joined = concat_of(pieces, axis, ins)
            if (lo, hi) == (0, ins.shape[axis]):
                target = joined
            else:
                n = len(ins.shape)
                ins.op, ins.inputs = "slice_grad", (joined.id,)
                ins.attrs = {"starts": tuple(lo if d == axis else 0 for d in range(n)),
                             "stops": tuple(hi if d == axis else ins.shape[d] for d in range(n)),
                             "steps": (1,) * n, "shape": tuple(ins.shape)}
        elif ins.op in ("mul", "div", "pow") and _const_equals(args[1], 1) and same(args[0]):
            target = args[0]
        elif ins.op == "mul" and _const_equals(args[0], 1) and same(args[1]):
            target = args[1]
        elif ins.op == "matmul" and _is_outer_product(ins, *args):
            ins.op, ins.attrs = "mul", {}
        elif ins.op == "pow" and _const_equals(args[1], 2) and same(args[0]):
            ins.op, ins.inputs, ins.attrs = "square", (args[0].id,), {}
        elif ins.op == "neg" and args[0].op == "neg":
            target = src(args[0].inputs[0])
        elif ins.op in ("identity", "stop_gradient", "reshape", "broadcast_to", "sum_to", "cast") and same(args[0]):
            target = args[0]
        elif (ins.op == "transpose" and len(ins.shape) >= 2 and tuple(ins.attrs["axes"]) == _swap_last_two(len(ins.shape))
              and args[0].op == "matmul" and uses.get(args[0].id) == 1
              and all(len(by_id[a].shape) == len(ins.shape) for a in args[0].inputs)
              and by_id[args[0].inputs[0]].shape[:-2] == by_id[args[0].inputs[1]].shape[:-2]):
            # (A @ B)^T = B^T @ A^T: the product is written in the layout its user wants, and
            # transposes of transposed operands cancel (a weight gradient of x @ W.T, say).
            a, b = (src(i) for i in args[0].inputs)
            bt, at = transposed(b), transposed(a)
            ins.op, ins.inputs, ins.attrs = "matmul", (bt.id, at.id), {}
        elif ins.op == "transpose":
            axes = tuple(ins.attrs["axes"])
            if axes == tuple(range(len(axes))):
                target = args[0]
            elif args[0].op == "transpose":
                inner = tuple(args[0].attrs["axes"])
                combined = tuple(inner[a] for a in axes)
                if combined == tuple(range(len(axes))):
                    target = src(args[0].inputs[0])
                else:
                    ins.inputs, ins.attrs = args[0].inputs, {"axes": combined}
        if target is not None and target.id != ins.id:
            mapping[ins.id] = target.id
        kept.append(ins)
    program.instrs = [i for i in kept if i.id not in mapping]
    return replace_uses(program, mapping)
