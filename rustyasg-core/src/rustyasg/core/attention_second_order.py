"""Second derivatives of the fused attention: the gradient rules of ``attention_lse`` and
``attention_backward``, which differentiate their composed form (matmul, where, exp).

They call :func:`rustyasg.core.autograd.grad`, which the op modules must not import
(autograd builds on them), so they are installed on the registered ops here, when
``rustyasg.core`` is imported.

Example:
    >>> import rustyasg.core as rg
    >>> rg.OPS["attention_lse"].grad is not None
    True
"""

from __future__ import annotations

import numpy as np

from .autograd import grad
from .graph import constant
from .ops.elementwise import exp, log, where
from .ops.linalg import matmul
from .ops.misc import stop_gradient
from .ops.reduce import max as reduce_max
from .ops.reduce import sum as reduce_sum
from .registry import OPS


def _composed_scores(q, k, keep, scale, causal):
    """The masked scores ``(*B, L, S)`` from matmul and where: the route a second derivative takes."""
    L, S = q.shape[-2], k.shape[-2]
    s = matmul(q, k.mT) * scale
    mask = None
    if causal:
        if not (isinstance(L, int) and isinstance(S, int)):
            raise ValueError("a second derivative of causal attention needs concrete lengths")
        mask = constant(np.tril(np.ones((L, S), bool)))
    if keep:
        kk = keep[0].reshape(tuple(keep[0].shape[:-1]) + (1, S))
        mask = kk if mask is None else (mask & kk)
    return s if mask is None else where(mask, s, -np.inf)


def _second_order(op_name):
    """Gradient rule of ``attention_lse`` / ``attention_backward``: differentiate their composed form."""

    def rule(g, y, *inputs, scale, causal, wrt=None):
        n = 6 if op_name == "attention_backward" else 2
        # Partials only: lse and delta depend on q, k, v themselves, and the outer walk follows
        # those paths; the inner one must stop at the operands.
        args, keep = [stop_gradient(t) for t in inputs[:n]], inputs[n:]
        s = _composed_scores(args[0], args[1], keep, scale, causal)
        if op_name == "attention_lse":
            m = reduce_max(s, axis=-1, keepdims=True)
            value = log(reduce_sum(exp(s - m), axis=-1)) + reduce_max(s, axis=-1)
        else:
            q, k, v, dout, lse, delta = args
            p = exp(s - lse.reshape(tuple(lse.shape) + (1,)))
            ds = p * (matmul(dout, v.mT) - delta.reshape(tuple(delta.shape) + (1,)))
            value = {"q": lambda: matmul(ds, k) * scale, "k": lambda: matmul(ds.mT, q) * scale,
                     "v": lambda: matmul(p.mT, dout)}[wrt]()
        return tuple(grad(value, args, grad_y=g)) + (None,) * len(keep)

    return rule


for _name in ("attention_lse", "attention_backward"):
    OPS[_name].grad = _second_order(_name)
