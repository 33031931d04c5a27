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


from rustyasg.core.graph import apply
from rustyasg.core.registry import Attr, Example, InputSpec, OpDef, TensorType, as_int, as_str

from .communicator import REDUCE_OPS, DistributedError, lookup

PLUGIN = "rustyasg-dist"
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")


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


def all_gather(x, comm=None, name=None):
    """Every rank's ``x`` stacked along axis 0, in rank order, as a graph node."""
    return apply("all_gather", x, name=name, **_comm_attrs(comm))


def reduce_scatter(x, op: str = "sum", comm=None, name=None):
    """This rank's block of axis 0 of the reduction of ``x`` over ranks, as a graph node."""
    return apply("reduce_scatter", x, reduce=op, name=name, **_comm_attrs(comm))


def broadcast(x, root: int = 0, comm=None, name=None):
    """Rank ``root``'s ``x`` on every rank, as a graph node."""
    return apply("broadcast", x, root=root, name=name, **_comm_attrs(comm))
