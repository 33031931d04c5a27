"""Graph-to-graph reverse-mode differentiation.

:func:`grad` walks the graph from the output back to the requested tensors and
emits the vector-Jacobian products as *more graph*, using each op's gradient
rule. The result is ordinary symbolic tensors: they can be compiled, combined
with an optimizer update into one step, or differentiated again.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((), "float64", name="x")
    >>> (dx,) = rg.grad(x * x * x, [x])
    >>> (d2x,) = rg.grad(dx, [x])          # second derivative 6x
    >>> rg.evaluate(d2x, {x: 2.0})
    array(12.)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from . import dtypes, graph
from .errors import NotDifferentiableError
from .graph import Tensor, as_tensor, toposort
from .naming import gradient_of
from .registry import OPS

_NON_DIFF_OUTPUT = (dtypes.bool_, dtypes.int32, dtypes.int64)


@dataclass(frozen=True)
class GradientCall:
    """What one :func:`grad` call built, for passes that rewrite a whole training step.

    ``seed``: id of the cotangent node of ``y`` (``ones_like(y)`` when ``seeded``, i.e. no
    ``grad_y`` was given: dynamic loss scaling multiplies exactly this node). ``results``: ids
    of the returned gradients. Nodes built by the call have ids in ``[first_id, end_id)``:
    a result's users inside that range are other gradients' computations, users outside it
    (an optimizer update) consume the finished gradient.
    """

    seed: int
    results: tuple
    first_id: int
    end_id: int
    seeded: bool

    def built(self, node_id: int) -> bool:
        """Whether this call created node ``node_id``."""
        return self.first_id <= node_id < self.end_id


#: Seed id -> GradientCall, forgotten when the seed tensor is (see :func:`gradient_calls`).
_CALLS: Dict[int, GradientCall] = {}
_SEEDS: Dict[int, weakref.ref] = {}


def _record(seed: Tensor, call: GradientCall) -> None:
    key = seed.id
    _CALLS[key] = call
    _SEEDS[key] = weakref.ref(seed, lambda _ref, k=key: (_CALLS.pop(k, None), _SEEDS.pop(k, None)))


def gradient_calls(node_ids) -> list:
    """The :class:`GradientCall` s whose seed is among ``node_ids`` (e.g. a program's instruction ids).

    >>> import rustyasg.core as rg
    >>> from rustyasg.core.autograd import gradient_calls
    >>> x = rg.input((), "float64", name="x")
    >>> (g,) = rg.grad(x * x, [x])
    >>> [c.results == (g.id,) for c in gradient_calls({n.id for n in rg.graph.toposort([g])})]
    [True]
    """
    ids = set(node_ids)
    return [c for k, c in list(_CALLS.items()) if k in ids]


def gradient_calls_building(node_ids) -> list:
    """The :class:`GradientCall` s that built some node among ``node_ids`` (a seed may be folded away)."""
    ids = sorted(set(node_ids))
    if not ids:
        return []
    import bisect

    out = []
    for c in list(_CALLS.values()):
        k = bisect.bisect_left(ids, c.first_id)
        if k < len(ids) and ids[k] < c.end_id:
            out.append(c)
    return out


def _unbroadcast(g: Tensor, like: Tensor) -> Tensor:
    """Sum a gradient over the axes along which ``like`` was broadcast."""
    if tuple(g.shape) == tuple(like.shape):
        return g
    from .ops import sum_to

    return sum_to(g, shape=like.shape)


def grad(y: Tensor, wrt: Sequence[Tensor], grad_y: Optional[Tensor] = None,
         unconnected: str = "zero") -> list:
    """Gradients of ``y`` with respect to each tensor in ``wrt``, as graph tensors.

    - ``y`` must be a scalar unless ``grad_y`` (the cotangent, shaped like ``y``) is given.
    - ``unconnected``: what to return for a ``wrt`` that ``y`` does not depend on:
      ``"zero"`` (zeros of its shape, JAX's choice), ``"none"`` (PyTorch's ``None``),
      or ``"error"``.
    - ``stop_gradient(t)`` makes ``t`` a constant for differentiation.
    - Integer and bool tensors carry no gradient.
    """
    if isinstance(wrt, Tensor):
        raise TypeError("grad(y, wrt): wrt must be a list of tensors, e.g. grad(loss, [w])")
    first_id = next(graph._ids)
    seeded = grad_y is None
    if grad_y is None:
        if y.shape != ():
            raise ValueError(f"grad of a non-scalar {y.describe()} needs grad_y (a cotangent shaped like y)")
        from .ops import ones_like_scalar

        grad_y = ones_like_scalar(y)
    else:
        grad_y = as_tensor(grad_y, y)
    if not dtypes.is_floating(y.dtype):
        raise TypeError(f"grad of a {y.dtype} tensor: only floating-point outputs are differentiable")

    order = toposort([y])
    wanted = {t.id for t in wrt}
    # Which nodes lie on a path from some wrt tensor to y: only they need gradients.
    depends: Dict[int, bool] = {}
    for node in order:
        depends[node.id] = node.id in wanted or any(depends[i.id] for i in node.inputs)

    cotangents: Dict[int, Tensor] = {y.id: grad_y}
    for node in reversed(order):
        g = cotangents.get(node.id)
        if g is None or not node.inputs:
            continue
        needs = [depends[i.id] and dtypes.is_floating(i.dtype) for i in node.inputs]
        if not any(needs):
            continue
        opdef = OPS[node.op]
        if opdef.grad is None:
            raise NotDifferentiableError(
                f"op {node.op!r} (created at {node.source}) has no gradient rule, but the gradient "
                f"flows through it; wrap the input in stop_gradient() if that is intended")
        with gradient_of(node):  # every node built here records which forward node it differentiates
            grads = opdef.grad(g, node, *node.inputs, **node.attrs)
            if len(grads) != len(node.inputs):
                raise RuntimeError(f"gradient rule of {node.op!r} returned {len(grads)} gradients "
                                   f"for {len(node.inputs)} inputs")
            for inp, gi, need in zip(node.inputs, grads, needs):
                if gi is None or not need:
                    continue
                gi = _unbroadcast(as_tensor(gi, inp), inp)
                if gi.dtype != inp.dtype:
                    gi = gi.astype(inp.dtype)
                prev = cotangents.get(inp.id)
                cotangents[inp.id] = gi if prev is None else prev + gi

    results = []
    for t in wrt:
        g = cotangents.get(t.id)
        if g is None:
            if unconnected == "error":
                raise ValueError(f"{t!r} does not influence the output {y!r}")
            if unconnected == "none":
                results.append(None)
                continue
            from .functional import zeros_like

            g = zeros_like(t)
        results.append(g)
    _record(grad_y, GradientCall(grad_y.id, tuple(r.id for r in results if r is not None), first_id,
                                 next(graph._ids), seeded))
    return results


def value_and_grad_graph(y: Tensor, wrt: Sequence[Tensor]):
    """``(y, grad(y, wrt))``: the common pair for a training step."""
    return y, grad(y, wrt)
