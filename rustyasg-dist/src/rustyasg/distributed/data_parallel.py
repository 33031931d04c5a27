"""Data parallelism: every rank runs the same step on its shard of the batch.

:func:`data_parallel` wraps an optimizer (``rustyasg.nn.optim``): its ``updates(loss)``
differentiates the rank's loss, all-reduces the gradients to their mean over ranks in
buckets (:mod:`.buckets`), and hands them to the wrapped optimizer's update rule, so the
all-reduce is part of the one compiled step. With equal shards the mean of the ranks'
mean gradients is the gradient of the whole batch: every rank applies the same update
and the parameters stay equal without ever being sent again. :func:`broadcast_variables`
makes them equal at the start (rank 0's values).

Example (one process is a world of one)::

    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.optim import SGD
    >>> w = rg.variable(np.array([1.0, -2.0]), name="w")
    >>> opt = data_parallel(SGD([w], lr=0.5))
    >>> step = rg.function([], rg.sum(w * w), updates=opt.updates(rg.sum(w * w)), backend="reference")
    >>> _ = step(); w.value()
    array([0., 0.])
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Variable
from rustyasg.core.graph import toposort

from .buckets import DEFAULT_BUCKET_BYTES, all_reduce_buckets
from .communicator import DistributedError, lookup


def _comm(comm):
    return lookup("world") if comm is None else (lookup(comm) if isinstance(comm, str) else comm)


def broadcast_variables(variables: Iterable[Variable], root: int = 0, comm=None) -> None:
    """Give every rank rank ``root``'s values of ``variables`` (one message per dtype).

    >>> import numpy as np, rustyasg.core as rg
    >>> v = rg.variable(np.arange(3.0), name="v")
    >>> broadcast_variables([v]); v.value().tolist()
    [0.0, 1.0, 2.0]
    """
    comm = _comm(comm)
    variables = list(variables)
    by_dtype: Dict[np.dtype, List[Variable]] = {}
    for v in variables:
        by_dtype.setdefault(np.dtype(v.dtype), []).append(v)
    for dtype, group in sorted(by_dtype.items(), key=lambda kv: kv[0].str):
        flat = np.concatenate([np.asarray(v.value(), dtype).reshape(-1) for v in group]) if group else None
        flat = comm.broadcast(flat, root)
        offset = 0
        for v in group:
            n = int(np.prod(v.shape, dtype=np.int64))
            v.assign(flat[offset:offset + n].reshape(v.shape))
            offset += n


def check_equal_across_ranks(variables: Iterable[Variable], comm=None) -> float:
    """Largest difference between any rank's values and rank 0's (0.0 when all agree)."""
    comm = _comm(comm)
    worst = 0.0
    for v in variables:
        mine = np.asarray(v.value(), np.float64)
        ref = comm.broadcast(mine, 0)
        worst = max(worst, float(np.max(np.abs(mine - ref), initial=0.0)))
    return float(comm.all_reduce(np.array(worst), "max"))


class WrappedOptimizer:
    """Shares the wrapped optimizer's groups (schedulers keep working on the original) and delegates."""

    def __init__(self, optimizer, comm=None):
        if not hasattr(optimizer, "update_param") or not hasattr(optimizer, "param_groups"):
            raise TypeError(f"expected a rustyasg.nn.optim optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.comm = _comm(comm)

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def params(self) -> List[Variable]:
        return self.optimizer.params()

    def __getattr__(self, name: str) -> Any:  # defaults, grad_norm, ... of the wrapped optimizer
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def _local_gradients(self, loss, grads) -> List[Optional[rg.Tensor]]:
        params = self.params()
        if (loss is None) == (grads is None):
            raise TypeError(f"{type(self).__name__}.updates: give either loss or grads")
        if loss is not None:
            return rg.grad(loss, params, unconnected="none")
        if isinstance(grads, dict):
            return [grads.get(p) for p in params]
        return list(grads)

    def __repr__(self):
        return f"{type(self).__name__}({self.optimizer!r}, ranks={self.comm.world_size})"


class DataParallelOptimizer(WrappedOptimizer):
    """``updates(loss)`` = local gradients -> bucketed mean all-reduce -> the wrapped update rule."""

    def __init__(self, optimizer, comm=None, bucket_bytes: int = DEFAULT_BUCKET_BYTES, overlap: bool = True):
        super().__init__(optimizer, comm)
        self.bucket_bytes = int(bucket_bytes)
        self.overlap = bool(overlap)

    def updates(self, loss=None, grads=None, **clip) -> Dict[Variable, rg.Tensor]:
        local = self._local_gradients(loss, grads)
        reduced = all_reduce_buckets(local, "mean", self.comm, self.bucket_bytes, self.overlap)
        return self.optimizer.updates(grads=reduced, **clip)

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.optimizer.load_state_dict(state_dict)


def data_parallel(step_or_optimizer, *, zero: int = 0, comm=None,
                  bucket_mb: float = DEFAULT_BUCKET_BYTES / 2 ** 20, overlap: bool = True):
    """Data parallel over the ranks, for a compiled training step or for an optimizer.

    - ``data_parallel(step)``: ``step`` is an ``rg.function`` whose first output is the loss and
      whose updates apply gradients of it (any update rule). Returns the same step with every
      gradient of the loss w.r.t. the updated trainable variables replaced by its mean over ranks
      (bucketed all-reduce), after giving every rank rank 0's values of the updated variables.
    - ``data_parallel(optimizer)``: a ``rustyasg.nn.optim`` optimizer whose ``updates(loss)``
      averages the gradients over ranks first (``zero=1``: ZeRO-1, its state sharded over ranks);
      call :func:`broadcast_variables` on the model before the first step.

    ``overlap`` (default): each bucket's all-reduce starts as soon as its gradients exist and
    travels while the backward pass goes on (see :func:`~.buckets.all_reduce_buckets`).

    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.array([1.0, -2.0]), name="w")
    >>> loss = rg.sum(w * w)
    >>> (g,) = rg.grad(loss, [w])
    >>> step = data_parallel(rg.function([], loss, updates={w: w - 0.25 * g}, backend="reference"))
    >>> _ = step(); w.value()
    array([ 0.5, -1. ])
    """
    if isinstance(step_or_optimizer, rg.Function):
        if zero:
            raise DistributedError("ZeRO-1 needs the optimizer: data_parallel(optimizer, zero=1)")
        return _data_parallel_step(step_or_optimizer, _comm(comm), int(bucket_mb * 2 ** 20), overlap)
    optimizer = step_or_optimizer
    if zero not in (0, 1):
        raise DistributedError(f"zero must be 0 (plain data parallel) or 1 (sharded optimizer state), got {zero}")
    if zero == 1:
        from .zero import ZeroOptimizer

        return ZeroOptimizer(optimizer, comm)
    return DataParallelOptimizer(optimizer, comm, int(bucket_mb * 2 ** 20), overlap)


# -- data_parallel(step): the gradients inside a built step, found by their structure --------------------
def _structural_keys(roots) -> Dict[int, Any]:
    """A key per node equal for nodes that compute the same thing from the same leaves."""
    keys: Dict[int, Any] = {}
    for node in toposort(list(roots)):
        if node.op in ("input", "variable"):
            keys[node.id] = (node.op, node.id)
        elif node.op == "constant":
            value = np.asarray(node.attrs["value"])
            keys[node.id] = ("constant", value.dtype.str, value.shape, value.tobytes())
        else:
            attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
            keys[node.id] = (node.op, tuple(keys[i.id] for i in node.inputs), attrs, tuple(map(str, node.shape)),
                             str(node.dtype))
    return keys


def _data_parallel_step(step, comm, bucket_bytes: int, overlap: bool = True):
    if not step.outputs or step.outputs[0].shape != ():
        raise DistributedError("data_parallel(step): the step's first output must be the scalar loss")
    loss = step.outputs[0]
    params = [v for v, _ in step.updates if getattr(v, "trainable", False)]
    if not params:
        raise DistributedError("data_parallel(step): the step updates no trainable variable")
    fresh = rg.grad(loss, params, unconnected="none")
    keys = _structural_keys([g for g in fresh if g is not None] + [value for _, value in step.updates])
    grad_index = {keys[g.id]: i for i, g in enumerate(fresh) if g is not None}
    reduced = all_reduce_buckets(fresh, "mean", comm, bucket_bytes, overlap)
    found = set()
    new: Dict[int, rg.Tensor] = {}
    for node in toposort([value for _, value in step.updates]):
        i = grad_index.get(keys[node.id])
        if i is not None:
            new[node.id] = reduced[i]
            found.add(i)
        elif node.inputs and any(new[a.id] is not a for a in node.inputs):
            new[node.id] = rg.apply(node.op, *[new[a.id] for a in node.inputs], name=node.name, **node.attrs)
        else:
            new[node.id] = node
    missing = [params[i].name for i, g in enumerate(fresh) if g is not None and i not in found]
    if missing:
        raise DistributedError(f"data_parallel(step): the updates do not use the gradients of {missing} as "
                               f"rg.grad(loss, ...) builds them; build the step with data_parallel(optimizer)")
    broadcast_variables([v for v, _ in step.updates], 0, comm)
    return rg.Function(step.inputs, step.outputs[0] if step._single else step.outputs,
                       [(v, new[value.id]) for v, value in step.updates], backend=step.backend,
                       disabled_passes=step.disabled_passes, name=step.name)
