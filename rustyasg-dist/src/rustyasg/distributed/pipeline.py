"""Pipeline parallelism: a model split into stages, one per rank, fed micro-batches (GPipe).

Rank ``r`` holds stage ``r`` (a module) and its optimizer. One :meth:`Pipeline.step`:

1. cuts the batch into ``micro_batches`` equal parts; for each, stage 0 runs its forward and
   sends the activation to rank 1, which runs its forward and sends on, ... and the last
   stage computes the micro-batch's loss (all forwards first: GPipe's schedule);
2. runs the backwards in reverse micro-batch order: the last stage differentiates its loss,
   every stage receives the gradient of its output, recomputes its forward from the stashed
   input (GPipe's re-materialisation: only stage inputs are kept, not every activation),
   adds ``1/M`` of its parameter gradients into accumulators on the backend and sends the
   gradient of its input back;
3. every stage applies its optimizer to the accumulated gradients, which are the gradients of
   the mean loss over the whole batch: the same update as the unsplit model's.

Each stage compiles three functions once (forward, backward, update); activations and their
gradients travel between ranks as numpy arrays with MPI point-to-point messages (a small
header first, so a stage needs no advance knowledge of its input's shape).
Stages should not draw random numbers (dropout): the recomputed forward would draw anew.

Example (one process: a single stage is the whole model)::

    >>> import numpy as np, rustyasg.nn as nn
    >>> model = nn.Linear(3, 1)
    >>> pipe = Pipeline(model, nn.optim.SGD(model.parameters(), lr=0.1), loss_fn=nn.mse_loss,
    ...                 micro_batches=2, backend="reference")
    >>> x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    >>> loss = pipe.step(x, y); loss >= 0
    True
"""

from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

import rustyasg.core as rg

from .communicator import DistributedError
from .data_parallel import _comm

_DTYPES = [np.dtype(d) for d in ("float32", "float64", "float16", "int64", "int32", "bool")]
_HEADER = 8  # ndim, dtype code, up to six dims
_TAG_ACT, _TAG_GRAD = 11, 12


class Pipeline:
    """One pipeline stage on this rank; see the module docstring.

    Args:
        stage: this rank's module (rank 0 gets the model's input, the last rank's output
            goes to ``loss_fn``).
        optimizer: a ``rustyasg.nn.optim`` optimizer over ``stage``'s parameters (``None`` for a stage
            without parameters, such as an activation).
        loss_fn: ``loss_fn(outputs, y) -> scalar`` (a mean over the micro-batch); used on the last rank.
        micro_batches: parts each batch is cut into (the batch size must divide evenly).
    """

    def __init__(self, stage, optimizer, loss_fn: Optional[Callable] = None, micro_batches: int = 4, comm=None,
                 backend=None):
        self.comm = _comm(comm)
        self.stage, self.optimizer, self.loss_fn = stage, optimizer, loss_fn
        self.micro_batches, self.backend = int(micro_batches), backend
        self.rank, self.stages = self.comm.rank, self.comm.world_size
        self.first, self.last = self.rank == 0, self.rank == self.stages - 1
        if self.last and loss_fn is None:
            raise DistributedError("Pipeline: the last stage needs loss_fn")
        if self.micro_batches < 1:
            raise DistributedError(f"Pipeline: micro_batches must be >= 1, got {micro_batches}")
        self.params = list(optimizer.params()) if optimizer is not None else []
        self._forward = self._backward = self._apply = None
        self.accumulators: List = []

    # -- messages --------------------------------------------------------------------------------
    def _send(self, array: np.ndarray, dest: int, tag: int) -> None:
        array = np.asarray(array, order="C")
        if array.ndim > _HEADER - 2:
            raise DistributedError(f"Pipeline: activations of {array.ndim} dimensions (at most {_HEADER - 2})")
        header = np.zeros(_HEADER, np.int64)
        header[0], header[1] = array.ndim, _DTYPES.index(array.dtype)
        header[2:2 + array.ndim] = array.shape
        self.comm.send(header, dest, tag)
        self.comm.send(array, dest, tag)

    def _recv(self, source: int, tag: int) -> np.ndarray:
        header = self.comm.recv((_HEADER,), np.int64, source, tag)
        ndim = int(header[0])
        return self.comm.recv(tuple(int(d) for d in header[2:2 + ndim]), _DTYPES[int(header[1])], source, tag)

    # -- compiled pieces ---------------------------------------------------------------------------
    def _build(self, a_in: np.ndarray, y: Optional[np.ndarray]) -> None:
        x = rg.input(a_in.shape, a_in.dtype, name="stage_input")
        out = self.stage(x)
        scale = 1.0 / self.micro_batches
        self.accumulators = [rg.variable(np.zeros(p.shape, p.dtype), name=f"{p.name}.grad_sum", trainable=False)
                             for p in self.params]
        wrt = list(self.params) + ([] if self.first else [x])
        if self.last:
            target = rg.input(y.shape, y.dtype, name="target")
            loss = self.loss_fn(out, target)
            grads = rg.grad(loss, wrt, unconnected="none")
            inputs, outputs = [x, target], [loss]
        else:
            g_out = rg.input(tuple(out.shape), out.dtype, name="output_grad")
            grads = rg.grad(rg.sum(out * g_out), wrt, unconnected="none")
            inputs, outputs = [x, g_out], []
            self._forward = rg.function([x], out, backend=self.backend, name="stage_forward")
        if self.last:
            self._forward = rg.function([x, target], loss, backend=self.backend, name="stage_loss")
        updates = {acc: acc + g * scale for acc, g in zip(self.accumulators, grads) if g is not None}
        if not self.first:
            outputs = outputs + [grads[-1]]
        self._backward = rg.function(inputs, outputs, updates=updates, backend=self.backend, name="stage_backward")
        if self.params:
            param_grads = [acc if g is not None else None for acc, g in zip(self.accumulators, grads)]
            apply = dict(self.optimizer.updates(grads=param_grads))
            apply.update({acc: acc * 0.0 for acc in self.accumulators})
            self._apply = rg.function([], [], updates=apply, backend=self.backend, name="stage_update")

    # -- one training step -------------------------------------------------------------------------------
    def step(self, x: Optional[np.ndarray], y: Optional[np.ndarray]) -> float:
        """Train on one batch; ``x`` is read on the first rank, ``y`` on the last. Returns the mean loss."""
        m = self.micro_batches
        xs = self._split(x, "x") if self.first else [None] * m
        ys = self._split(y, "y") if self.last else [None] * m
        stash: List[np.ndarray] = []
        losses = []
        for i in range(m):  # all forwards
            a_in = xs[i] if self.first else self._recv(self.rank - 1, _TAG_ACT)
            if self._backward is None:
                self._build(a_in, ys[i])
            stash.append(a_in)
            if self.last:
                losses.append(float(self._to_host(self._forward(a_in, ys[i], fetch=False))))
            else:
                self._send(self._to_host(self._forward(a_in, fetch=False)), self.rank + 1, _TAG_ACT)
        for i in reversed(range(m)):  # all backwards, last micro-batch first
            if self.last:
                result = self._backward(stash[i], ys[i], fetch=False)
            else:
                result = self._backward(stash[i], self._recv(self.rank + 1, _TAG_GRAD), fetch=False)
            if not self.first:
                self._send(self._to_host(result[-1]), self.rank - 1, _TAG_GRAD)
        if self._apply is not None:
            self._apply()
        loss = np.array(np.mean(losses) if self.last else 0.0)
        return float(self.comm.broadcast(loss, self.stages - 1))

    def _to_host(self, handle) -> np.ndarray:
        return np.asarray(self._backward.backend.to_host(handle) if not isinstance(handle, np.ndarray) else handle)

    def _split(self, a, what: str) -> List[np.ndarray]:
        if a is None:
            raise DistributedError(f"Pipeline.step: rank {self.rank} needs {what}")
        a = np.asarray(a)
        if a.shape[0] % self.micro_batches:
            raise DistributedError(f"Pipeline.step: batch of {a.shape[0]} does not split into "
                                   f"{self.micro_batches} equal micro-batches")
        return np.split(a, self.micro_batches)
