"""The two compiled functions of a training run: the train step and the eval step.

Both are traced once, from the first batch's shapes and dtypes, with a symbolic
batch dimension shared by inputs and targets:

- the **train step** is forward + loss + ``grad`` + optimizer update + buffer updates
  (BatchNorm running statistics) in one :func:`rustyasg.core.function`; it returns the
  loss and applies every update on the backend;
- the **eval step** is the forward in ``model.eval()`` mode and returns the outputs and
  the loss, with no updates.

Example:
    >>> import numpy as np, rustyasg.core as rg, rustyasg.nn as nn
    >>> model = nn.Linear(3, 2, bias=False)
    >>> opt = nn.optim.SGD(model.parameters(), lr=0.1)
    >>> batch = (np.zeros((4, 3), np.float32), np.zeros(4, np.int64))
    >>> step = build_train_step(model, nn.cross_entropy, opt, batch, backend="reference")
    >>> float(step(*flatten_batch(batch)))   # log(2): zero inputs, no bias: the logits tie
    0.6931471824645996
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

BATCH_DIM = "batch"


def split_batch(batch) -> Tuple[Tuple[np.ndarray, ...], np.ndarray]:
    """``(inputs, target)`` of a batch ``(x, y)``, where ``x`` may be a tuple of arrays.

    >>> xs, y = split_batch((np.zeros((2, 3)), np.zeros(2)))
    >>> len(xs), y.shape
    (1, (2,))
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"training data must yield (x, y) pairs of numpy batches, got {_describe(batch)}")
    x, y = batch
    xs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    return tuple(np.asarray(a) for a in xs), np.asarray(y)


def flatten_batch(batch) -> List[np.ndarray]:
    """The positional arguments of a compiled step: the inputs, then the target."""
    xs, y = split_batch(batch)
    return [*xs, y]


def batch_size(batch) -> int:
    """Number of samples in a batch (the length of its target)."""
    _, y = split_batch(batch)
    return int(y.shape[0]) if y.ndim else 1


def _describe(obj) -> str:
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} item(s)"
    return f"a {type(obj).__name__}"


def symbolic_inputs(batch) -> Tuple[List[Tensor], Tensor]:
    """Symbolic inputs shaped like ``batch`` with a shared symbolic batch dimension."""
    xs, y = split_batch(batch)
    for i, a in enumerate([*xs, y]):
        if a.ndim == 0:
            raise ValueError(f"batch item {i} is a scalar; every item needs a leading batch dimension")
    n = {a.shape[0] for a in (*xs, y)}
    if len(n) != 1:
        raise ValueError(f"inputs and target disagree on the batch size: "
                         f"{[a.shape for a in xs]} vs target {y.shape}")
    names = ["x"] if len(xs) == 1 else [f"x{i}" for i in range(len(xs))]
    sym_x = [rg.input((BATCH_DIM,) + a.shape[1:], a.dtype, name=nm) for nm, a in zip(names, xs)]
    sym_y = rg.input((BATCH_DIM,) + y.shape[1:], y.dtype, name="y")
    return sym_x, sym_y


Forward = Callable[..., Any]


def _trace(model, loss_fn: Callable, forward: Optional[Forward], xs: Sequence[Tensor], y: Tensor, training: bool):
    """Trace forward and loss in the given mode; returns ``(outputs, loss)``."""
    model.train(training)
    for m in model.modules():  # buffer updates must come from this trace only
        m.clear_updates()
    out = forward(model, *xs) if forward is not None else model(*xs)
    loss = loss_fn(out, y)
    if not isinstance(loss, Tensor) or loss.shape != ():
        raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r}")
    return out, loss


def build_train_step(model, loss_fn: Callable, optimizer, batch, backend=None, forward: Optional[Forward] = None,
                     clip_grad_norm=None, clip_grad_value=None, check_finite: bool = False, precision=None,
                     memory_budget: Optional[int] = None) -> rg.Function:
    """Compile forward + backward + optimizer update + buffer updates; the function returns the loss.

    ``forward(model, *inputs)`` replaces ``model(*inputs)`` when given. Clipping limits go to
    ``optimizer.updates`` (applied inside the step). With ``check_finite`` the function returns
    ``[loss, state_check]`` as one vector: ``state_check`` is 0 while every updated float state
    (weights, moments, buffers) is finite and NaN once any is not (see :func:`state_check`).
    ``precision`` ("bf16", "f16") and ``memory_budget`` (bytes) are ``rg.function``'s whole-step
    options: mixed precision with float32 master weights, and rematerialization to a planned peak.
    """
    xs, y = symbolic_inputs(batch)
    _, loss = _trace(model, loss_fn, forward, xs, y, training=True)
    kw = {}
    if clip_grad_norm is not None:
        kw["clip_grad_norm"] = clip_grad_norm
    if clip_grad_value is not None:
        kw["clip_grad_value"] = clip_grad_value
    updates = dict(optimizer.updates(loss, **kw))
    updates.update(model.state_updates())
    output = rg.stack([loss, state_check(updates.values()).astype(loss.dtype)]) if check_finite else loss
    return rg.function([*xs, y], output, updates=updates, backend=backend, name="train_step", precision=precision,
                       memory_budget=memory_budget)


def state_check(values) -> Tensor:
    """A float32 scalar that is 0 when every float tensor of ``values`` is finite, NaN otherwise.

    ``v * 0`` is 0 for a finite value and NaN for NaN and +-inf, and a sum keeps a NaN: one
    fused pass over the new state inside the step, with no host round trip of its own (the
    trainer reads it back with the loss). (Not ``v - v``: a reassociating compiler may cancel
    ``acc + v - v`` to ``acc``.)

    >>> a = rg.constant(np.array([1.0, -2.0], np.float32))
    >>> b = rg.constant(np.array([np.inf], np.float32))
    >>> rg.evaluate(state_check([a])).item(), bool(np.isnan(rg.evaluate(state_check([a, b]))))
    (0.0, True)
    """
    terms = [rg.sum(v * 0.0).astype("float32") for v in values if v.dtype.kind == "f"]
    if not terms:
        return rg.constant(np.zeros((), np.float32))
    # One stacked sum, not a chain of adds: the chain fuses into one kernel with an argument per
    # state tensor (50 for a small CNN), whose JIT cost 0.5 s of the first step (measured).
    return rg.sum(rg.stack(terms)) if len(terms) > 1 else terms[0]


def build_eval_step(model, loss_fn: Callable, batch, backend=None, forward: Optional[Forward] = None) -> rg.Function:
    """Compile the ``model.eval()`` forward; the function returns ``[outputs, loss]``.

    The model is left in training mode afterwards (the mode only matters while tracing).
    """
    xs, y = symbolic_inputs(batch)
    try:
        out, loss = _trace(model, loss_fn, forward, xs, y, training=False)
    finally:
        model.train(True)
    if not isinstance(out, Tensor):
        raise TypeError(f"the model's forward must return one tensor for evaluation, got {type(out).__name__}")
    leaked = model.state_updates()
    for m in model.modules():
        m.clear_updates()
    if leaked:
        names = sorted(v.name or "?" for v in leaked)
        raise RuntimeError(f"evaluation forward recorded buffer updates for {names}; eval mode must not change state")
    return rg.function([*xs, y], [out, loss], backend=backend, name="eval_step")
