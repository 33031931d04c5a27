"""Linear algebra: batched matmul with broadcasting batch dimensions.

The ``matmul`` op takes operands of rank >= 2; the user function
:func:`rustyasg.core.matmul` adds numpy's 1-D promotion rules on top.

Example:
    >>> import rustyasg.core as rg
    >>> a, b = rg.input((8, 2, 3), name="a"), rg.input((3, 5), name="b")
    >>> rg.matmul(a, b).shape
    (8, 2, 5)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Example, InputSpec, TensorType
from ..builders import builder
from ..shapes import broadcast_shapes, format_shape, same_dim
from ._define import defop


def _matmul_infer(ts):
    a, b = ts
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise ValueError("the matmul op needs rank >= 2 operands (rustyasg.core.matmul handles 1-D)")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions differ: {format_shape(a.shape)} @ {format_shape(b.shape)} "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    if a.dtype == dtypes.bool_:
        raise TypeError("matmul of bool tensors")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return TensorType(batch + (a.shape[-2], b.shape[-1]), a.dtype)


def _mT(t):
    nd = len(t.shape)
    return t.transpose(tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _matmul_grad(g, y, a, b):
    return (matmul_op(g, _mT(b)), matmul_op(_mT(a), g))


matmul_op = defop("matmul", infer=_matmul_infer, reference=np.matmul, grad=_matmul_grad, kind="linalg",
                  num_inputs=2, promote=True, precision="low",
                  examples=(Example((InputSpec((4, 3)), InputSpec((3, 5)))),
                            Example((InputSpec((2, 4, 3)), InputSpec((3, 2)))),
                            Example((InputSpec((2, 1, 4, 3)), InputSpec((3, 3, 2))))),
                  doc="Batched matrix product; batch dimensions broadcast.")


@builder("matmul")
def matmul(a, b, name=None):
    """``a @ b`` with numpy's rules, including 1-D operands.

    >>> import rustyasg.core as rg
    >>> v = rg.input((3,), name="v")
    >>> rg.matmul(rg.input((2, 3), name="m"), v).shape
    (2,)
    """
    from ..graph import as_tensor

    a, b = as_tensor(a), as_tensor(b)
    if not a.shape or not b.shape:
        raise ValueError(f"{a.describe()} @ {b.describe()}: a 0-d operand has no matrix dimension; use * for scaling")
    inner_a, inner_b = a.shape[-1], b.shape[-2 if len(b.shape) > 1 else -1]
    if not same_dim(inner_a, inner_b):  # checked here so the message shows the shapes as written
        raise ValueError(f"inner dimensions differ: {format_shape(a.shape)} @ {format_shape(b.shape)} "
                         f"({inner_a} != {inner_b})")
    squeeze_a, squeeze_b = len(a.shape) == 1, len(b.shape) == 1
    if squeeze_a:
        a = a.reshape((1,) + a.shape)
    if squeeze_b:
        b = b.reshape(b.shape + (1,))
    out = matmul_op(a, b, name=None if (squeeze_a or squeeze_b) else name)
    if squeeze_a or squeeze_b:
        shape = out.shape[:-2] + (() if squeeze_a else out.shape[-2:-1]) + (() if squeeze_b else out.shape[-1:])
        out = out.reshape(shape)
    return out
