"""ONNX translators of ``svdvals`` and ``svdvals_grad``: one-sided Jacobi unrolled over static shapes.

ONNX has no SVD operator. The matrices (a tall matrix's columns, a wide one's rows, divided by
their largest ``|a|``) are orthogonalised by Hestenes' plane rotations, the same method as the
wgpu kernels: each round rotates a set of disjoint column pairs at once (two ``Gather``s, the
three dot products, the rotation, one ``Concat`` and a ``Gather`` back into place), a sweep is
the ``k - 1`` rounds of a round-robin schedule, and ``SWEEPS`` sweeps are unrolled (quadratic
convergence: enough for the ``k <= MAX_K`` columns exported). A pair already orthogonal to
rounding is not rotated. ``TopK`` orders the column norms; the gradient ``U diag(g) Vh`` scatters
``g`` back to the columns. A matrix holding NaN or inf gives NaN, as on the other backends.

Example:
    >>> round_robin(4)
    [([3, 1], [0, 2]), ([3, 2], [1, 0]), ([3, 0], [2, 1])]
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .translate import OnnxExportError

SWEEPS = 12
MAX_K = 64


def round_robin(k: int) -> List[Tuple[List[int], List[int]]]:
    """The rounds of disjoint pairs ``(firsts, seconds)`` that together pair every two of ``k`` columns."""
    k2 = k + (k & 1)
    rounds = []
    for r in range(k2 - 1):
        pairs = [(k2 - 1, r)] + [((r + q) % (k2 - 1), (r + k2 - 1 - q) % (k2 - 1)) for q in range(1, k2 // 2)]
        pairs = [(i, j) for i, j in pairs if i < k and j < k]
        rounds.append(([i for i, _ in pairs], [j for _, j in pairs]))
    return rounds


def _shape(node):
    shape = tuple(node.input_shapes[0])
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        raise OnnxExportError(f"{node.op} is unrolled over its matrices' columns: give every axis a size, "
                              f"got {shape}")
    m, n = int(shape[-2]), int(shape[-1])
    if min(m, n) > MAX_K:
        raise OnnxExportError(f"{node.op} of {m}x{n} matrices: the ONNX form unrolls the Jacobi sweeps over "
                              f"min(m, n) = {min(m, n)} columns, at most {MAX_K} are exported")
    return shape, m, n, int(np.prod(shape[:-2], dtype=np.int64))


def _jacobi(b, node, with_v: bool):
    """``(W, V, norms, bad, scale)`` of the flattened batch: ``W = A V`` with orthogonal columns."""
    dt = node.input_dtypes[0]
    shape, m, n, batch = _shape(node)
    a = b.op("Reshape", node.inputs[0], b.ints([batch, m, n]))
    w = a if m >= n else b.op("Transpose", a, perm=[0, 2, 1])  # (batch, L, k)
    k = min(m, n)
    zero, one, two = b.const(0.0, dt), b.const(1.0, dt), b.const(2.0, dt)
    bad = b.op("ReduceMax", b.op("Cast", b.op("Or", b.op("IsNaN", w), b.op("IsInf", w)), to=1),
               b.ints([1, 2]), keepdims=1)  # (batch, 1, 1), 1.0 where the matrix is not finite
    w = b.op("Where", b.op("IsNaN", w), zero, w)
    w = b.op("Where", b.op("IsInf", w), zero, w)
    scale = b.op("ReduceMax", b.op("Abs", w), b.ints([1, 2]), keepdims=1)
    scale = b.op("Where", b.op("Equal", scale, zero), one, scale)
    w = b.op("Div", w, scale)
    v = b.const(np.broadcast_to(np.eye(k, dtype=dt), (batch, k, k)).copy()) if with_v else None
    tol = b.const(np.finfo(dt).eps * 4 * max(m, n) ** 0.5, dt)
    rounds = round_robin(k)
    for _ in range(SWEEPS if k > 1 else 0):
        for firsts, seconds in rounds:
            if not firsts:
                continue
            rest = [c for c in range(k) if c not in firsts and c not in seconds]
            order = firsts + seconds + rest
            back = b.ints(list(np.argsort(order)))
            i, j = b.ints(firsts), b.ints(seconds)
            x, y = b.op("Gather", w, i, axis=2), b.op("Gather", w, j, axis=2)
            al = b.op("ReduceSum", b.op("Mul", x, x), b.ints([1]), keepdims=1)
            be = b.op("ReduceSum", b.op("Mul", y, y), b.ints([1]), keepdims=1)
            ga = b.op("ReduceSum", b.op("Mul", x, y), b.ints([1]), keepdims=1)
            skip = b.op("LessOrEqual", b.op("Abs", ga), b.op("Mul", tol, b.op("Sqrt", b.op("Mul", al, be))))
            zeta = b.op("Div", b.op("Sub", be, al), b.op("Mul", two, b.op("Where", skip, one, ga)))
            sign = b.op("Where", b.op("Less", zeta, zero), b.const(-1.0, dt), one)
            t = b.op("Div", sign, b.op("Add", b.op("Abs", zeta), b.op("Sqrt", b.op("Add", one, b.op("Mul", zeta, zeta)))))
            t = b.op("Where", skip, zero, t)
            c = b.op("Div", one, b.op("Sqrt", b.op("Add", one, b.op("Mul", t, t))))
            s = b.op("Mul", c, t)

            def rotate(mat, xs, ys):
                new_x = b.op("Sub", b.op("Mul", c, xs), b.op("Mul", s, ys))
                new_y = b.op("Add", b.op("Mul", s, xs), b.op("Mul", c, ys))
                parts = [new_x, new_y] + ([b.op("Gather", mat, b.ints(rest), axis=2)] if rest else [])
                return b.op("Gather", b.op("Concat", *parts, axis=2), back, axis=2)

            w_new = rotate(w, x, y)
            if with_v:
                v = rotate(v, b.op("Gather", v, i, axis=2), b.op("Gather", v, j, axis=2))
            w = w_new
    norms = b.op("Sqrt", b.op("ReduceSum", b.op("Mul", w, w), b.ints([1]), keepdims=0))  # (batch, k)
    return w, v, norms, bad, scale, (shape, m, n, batch, k, dt)


def _empty(b, node):
    return b.const(np.zeros(tuple(int(d) for d in node.shape), node.dtype))


def svdvals(b, node):
    shape, m, n, batch = _shape(node)
    if batch == 0 or min(m, n) == 0:
        return _empty(b, node)
    _, _, norms, bad, scale, (_, _, _, _, k, dt) = _jacobi(b, node, with_v=False)
    values, _ = b.op("TopK", norms, b.ints([k]), axis=-1, largest=1, sorted=1, outputs=2)
    values = b.op("Mul", values, b.op("Reshape", scale, b.ints([batch, 1])))
    values = b.op("Where", b.op("Greater", b.op("Reshape", bad, b.ints([batch, 1])), b.const(0.0, np.float32)),
                  b.const(np.nan, dt), values)
    return b.op("Reshape", values, b.ints(list(shape[:-2]) + [k]))


def svdvals_grad(b, node):
    shape, m, n, batch = _shape(node)
    if batch == 0 or min(m, n) == 0:
        return _empty(b, node)
    w, v, norms, bad, _, (_, _, _, _, k, dt) = _jacobi(b, node, with_v=True)
    _, order = b.op("TopK", norms, b.ints([k]), axis=-1, largest=1, sorted=1, outputs=2)
    g = b.op("Reshape", node.inputs[1], b.ints([batch, k]))
    g_by_column = b.op("ScatterElements", b.const(np.zeros((batch, k), dt)), order, g, axis=1)
    zero = b.const(0.0, dt)
    positive = b.op("Greater", norms, zero)
    weights = b.op("Where", positive, b.op("Div", g_by_column, b.op("Where", positive, norms, b.const(1.0, dt))), zero)
    scaled = b.op("Mul", w, b.op("Unsqueeze", weights, b.ints([1])))  # (batch, L, k)
    grad = b.op("MatMul", scaled, b.op("Transpose", v, perm=[0, 2, 1]))  # (batch, L, k) in the tall orientation
    if m < n:
        grad = b.op("Transpose", grad, perm=[0, 2, 1])
    grad = b.op("Where", b.op("Greater", bad, b.const(0.0, np.float32)), b.const(np.nan, dt), grad)
    return b.op("Reshape", grad, b.ints(list(shape)))


TRANSLATORS = {"svdvals": svdvals, "svdvals_grad": svdvals_grad}
