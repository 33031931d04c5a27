"""Collectives as graph ops: ``all_reduce``, ``all_gather``, ``reduce_scatter``, ``broadcast``.

Each op carries its communicator's key and world size as attributes (the size fixes the
output shape while the graph is built). The float64 reference runs the collective for
real through :func:`~.communicator.lookup`, so the reference backend is a distributed
oracle too; the cpu and wgpu kernels are in :mod:`.kernels`.

Gradient rules follow the SPMD reading (the differentiated loss is the sum of every
rank's loss): the cotangent of an all-reduce is all-reduced, of an all-gather is
reduce-scattered, and the other way round.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4, 2), "float32", name="x")
    >>> y = all_reduce(x, "sum")
    >>> y.op, y.shape
    ('all_reduce', (4, 2))
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.graph import apply
from rustyasg.core.registry import Attr, Example, InputSpec, OpDef, TensorType, as_int, as_str

from .communicator import REDUCE_OPS, DistributedError, lookup

PLUGIN = "rustyasg-dist"
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")
#: The overlapped all-reduce of a gradient bucket, split in two so the step can compute in between.
OVERLAPPED = ("all_reduce_start", "all_reduce_wait")


def _check_dtype(t, op):
    if t.dtype.kind not in "fiu":
        raise TypeError(f"{op} needs a numeric tensor, got {t.dtype}")


def _reduce_op(v) -> str:
    v = str(v)
    if v not in REDUCE_OPS:
        raise ValueError(f"op must be one of {REDUCE_OPS}, got {v!r}")
    return v


def _same_infer(name):
    def infer(ts, comm, size, reduce="sum", root=0):
        _check_dtype(ts[0], name)
        if reduce == "mean" and ts[0].dtype.kind != "f":
            raise TypeError(f"a 'mean' all_reduce needs a floating tensor, got {ts[0].dtype}")
        return TensorType(ts[0].shape, ts[0].dtype)
    return infer


def _gather_infer(ts, comm, size):
    t = ts[0]
    _check_dtype(t, "all_gather")
    if not t.shape:
        raise ValueError("all_gather needs at least one axis (blocks are stacked along axis 0)")
    return TensorType((t.shape[0] * size,) + tuple(t.shape[1:]), t.dtype)


def _scatter_infer(ts, comm, size, reduce):
    t = ts[0]
    _check_dtype(t, "reduce_scatter")
    if not t.shape or (isinstance(t.shape[0], int) and t.shape[0] % size):
        raise ValueError(f"reduce_scatter: axis 0 of {tuple(t.shape)} must split into {size} equal blocks")
    return TensorType((t.shape[0] // size,) + tuple(t.shape[1:]), t.dtype)


def _start_infer(ts, comm, size, reduce):
    if not ts:
        raise ValueError("all_reduce_start needs at least one tensor")
    dtypes = {t.dtype for t in ts}
    if len(dtypes) > 1:
        raise TypeError(f"all_reduce_start packs one dtype per bucket, got {sorted(map(str, dtypes))}")
    _same_infer("all_reduce_start")(ts[:1], comm, size, reduce)
    total = 0
    for t in ts:
        if not all(isinstance(d, int) for d in t.shape):
            raise ValueError(f"all_reduce_start packs tensors of static shape, got {tuple(t.shape)}")
        total += int(np.prod(t.shape, dtype=np.int64))
    return TensorType((total,), ts[0].dtype)


def _wait_infer(ts, comm, size, reduce):
    return TensorType(ts[0].shape, ts[0].dtype)


def communicator_for(comm, size):
    """The live communicator ``comm``, checked against the size the graph was built for."""
    c = lookup(comm)
    if c.world_size != size:
        raise DistributedError(f"a collective built for {size} rank(s) runs on communicator {comm!r} of "
                               f"{c.world_size}; rebuild the graph in this job")
    return c


def _ref_all_reduce(x, comm, size, reduce):
    return communicator_for(comm, size).all_reduce(x, reduce)


def _ref_all_gather(x, comm, size):
    return communicator_for(comm, size).all_gather(x)


def _ref_reduce_scatter(x, comm, size, reduce):
    return communicator_for(comm, size).reduce_scatter(x, reduce)


def _ref_all_reduce_start(*xs, comm, size, reduce):
    packed = np.concatenate([np.ravel(x) for x in xs]) if xs else np.zeros(0)
    return communicator_for(comm, size).all_reduce(packed, reduce)


def _ref_all_reduce_wait(x, comm, size, reduce):
    return np.array(x, copy=True)


def _ref_broadcast(x, comm, size, root):
    return communicator_for(comm, size).broadcast(x, root)


def _grad_all_reduce(g, y, x, comm, size, reduce):
    if reduce in ("max", "min"):
        return (None,)
    return (apply("all_reduce", g, comm=comm, size=size, reduce=reduce),)


def _grad_all_gather(g, y, x, comm, size):
    return (apply("reduce_scatter", g, comm=comm, size=size, reduce="sum"),)


def _grad_reduce_scatter(g, y, x, comm, size, reduce):
    if reduce in ("max", "min"):
        return (None,)
    gathered = apply("all_gather", g, comm=comm, size=size)
    return (gathered / float(size) if reduce == "mean" else gathered,)


def _grad_broadcast(g, y, x, comm, size, root):
    total = apply("all_reduce", g, comm=comm, size=size, reduce="sum")
    return (total if lookup(comm).rank == root else total * 0.0,)


_COMM = {"comm": Attr(as_str, "world", "communicator key"), "size": Attr(as_int, doc="world size")}
_WORLD1 = {"comm": "world", "size": 1}  # conformance runs in one process


def _examples(**attrs):
    return (Example((InputSpec((4, 3)),), {**_WORLD1, **attrs}),)


OPDEFS = (
    OpDef("all_reduce", _same_infer("all_reduce"), _ref_all_reduce, _grad_all_reduce,
          {**_COMM, "reduce": Attr(_reduce_op, "sum")}, kind="collective", plugin=PLUGIN,
          examples=_examples(reduce="sum") + _examples(reduce="mean"),
          doc="Reduce ``x`` elementwise over every rank (sum, mean, max, min); every rank gets the result."),
    OpDef("all_reduce_start", _start_infer, _ref_all_reduce_start, None, {**_COMM, "reduce": Attr(_reduce_op, "sum")},
          kind="collective", plugin=PLUGIN, num_inputs=None, schedule="asap",
          examples=(Example((InputSpec((4, 3)), InputSpec((5,))), {**_WORLD1, "reduce": "mean"}),),
          doc="Start the all-reduce of the inputs packed into one flat vector (a gradient bucket); its "
              "result is ready only through ``all_reduce_wait``. Issued as soon as its inputs exist, so the "
              "transfer overlaps the rest of the backward pass."),
    OpDef("all_reduce_wait", _wait_infer, _ref_all_reduce_wait, None, {**_COMM, "reduce": Attr(_reduce_op, "sum")},
          kind="collective", plugin=PLUGIN, schedule="late",
          examples=(Example((InputSpec((7,)),), {**_WORLD1, "reduce": "sum"}),),
          doc="The result of an ``all_reduce_start``, once the transfer is complete."),
    OpDef("all_gather", _gather_infer, _ref_all_gather, _grad_all_gather, dict(_COMM), kind="collective",
          plugin=PLUGIN, examples=_examples(),
          doc="Stack every rank's ``x`` along axis 0, in rank order (``size * x.shape[0]`` rows)."),
    OpDef("reduce_scatter", _scatter_infer, _ref_reduce_scatter, _grad_reduce_scatter,
          {**_COMM, "reduce": Attr(_reduce_op, "sum")}, kind="collective", plugin=PLUGIN,
          examples=_examples(reduce="sum"),
          doc="Reduce over ranks, then keep block ``rank`` of axis 0 (``x.shape[0] / size`` rows)."),
    OpDef("broadcast", _same_infer("broadcast"), _ref_broadcast, _grad_broadcast,
          {**_COMM, "root": Attr(as_int, 0)}, kind="collective", plugin=PLUGIN, examples=_examples(root=0),
          doc="Every rank gets rank ``root``'s ``x``."),
)


def _comm_attrs(comm) -> dict:
    c = lookup("world") if comm is None else (lookup(comm) if isinstance(comm, str) else comm)
    return {"comm": c.key, "size": c.world_size}


def all_reduce(x, op: str = "sum", comm=None, name=None):
    """``op`` of ``x`` over every rank of ``comm`` (default: the world), as a graph node.

    >>> import rustyasg.core as rg
    >>> all_reduce(rg.input((3,), name="g"), "mean").attrs["reduce"]
    'mean'
    """
    return apply("all_reduce", x, reduce=op, name=name, **_comm_attrs(comm))


def all_reduce_overlapped(tensors, op: str = "sum", comm=None, name=None):
    """``tensors`` packed into one flat vector and all-reduced, overlapping what runs meanwhile.

    Two graph nodes: ``all_reduce_start`` is scheduled as soon as every tensor exists
    and returns at once (the transfer proceeds in the background); ``all_reduce_wait``
    runs where the result is first needed. The gradient buckets of :func:`data_parallel`
    use it, so each bucket travels while the backward pass computes the next one.
    Not differentiable (differentiate :func:`all_reduce` instead).

    >>> import rustyasg.core as rg
    >>> all_reduce_overlapped([rg.input((2, 3), name="a"), rg.input((4,), name="b")], "mean").shape
    (10,)
    """
    attrs = dict(reduce=op, **_comm_attrs(comm))
    started = apply("all_reduce_start", *tensors, name=None if name is None else f"{name}_start", **attrs)
    return apply("all_reduce_wait", started, name=name, **attrs)


def all_gather(x, comm=None, name=None):
    """Every rank's ``x`` stacked along axis 0, in rank order, as a graph node."""
    return apply("all_gather", x, name=name, **_comm_attrs(comm))


def reduce_scatter(x, op: str = "sum", comm=None, name=None):
    """This rank's block of axis 0 of the reduction of ``x`` over ranks, as a graph node."""
    return apply("reduce_scatter", x, reduce=op, name=name, **_comm_attrs(comm))


def broadcast(x, root: int = 0, comm=None, name=None):
    """Rank ``root``'s ``x`` on every rank, as a graph node."""
    return apply("broadcast", x, root=root, name=name, **_comm_attrs(comm))
