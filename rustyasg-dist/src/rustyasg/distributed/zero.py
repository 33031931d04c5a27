"""ZeRO-1: each rank keeps and updates 1/N of the optimizer state, then all-gathers the parameters.

Per parameter group, the parameters (those the loss reaches) are viewed as one flat
vector, zero-padded to a multiple of the world size N and cut into N equal shards. In
the compiled step every rank:

1. reduce-scatters the flat gradient: it receives the mean over ranks of its own shard only;
2. runs the wrapped optimizer's update rule (``update_param``: Adam, AdamW, SGD ...) on its
   shard of the parameters with its shard of the moments (the only state it holds);
3. all-gathers the updated shards into the full parameters.

The update rules are elementwise, so this is the same arithmetic as plain data parallel;
the optimizer state per rank shrinks N-fold (:meth:`ZeroOptimizer.memory_report`), and the
traffic is the same as one all-reduce (a reduce-scatter plus an all-gather).
``clip_grad_norm`` (2-norm or inf-norm) reduces the shards' partial norms over ranks.

Checkpoints hold the whole state in the wrapped optimizer's (PyTorch) layout:
:meth:`gather_state` (a collective on every rank) assembles it for rank 0 to write, and
:meth:`load_state_dict` on every rank keeps its own shard.

Example (one process: a single shard):
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn.optim import Adam
    >>> w = rg.variable(np.array([1.0, -1.0]), name="w")
    >>> opt = ZeroOptimizer(Adam([w], lr=0.1))
    >>> step = rg.function([], w.sum(), updates=opt.updates(w.sum()), backend="reference")
    >>> _ = step(); np.round(w.value(), 6)
    array([ 0.9, -1.1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Variable

from .communicator import DistributedError
from .data_parallel import WrappedOptimizer
from .ops import all_gather, all_reduce, reduce_scatter


@dataclass
class _Shard:
    """One parameter group's flat layout and this rank's slice of it."""

    group: int
    params: List[Variable]
    sizes: List[int]
    shard_size: int
    dtype: np.dtype
    variable: Optional[Variable] = None
    keys: List[str] = field(default_factory=list)

    @property
    def padding(self) -> int:
        return self.shard_size * self.world - sum(self.sizes)

    world: int = 1


class ZeroOptimizer(WrappedOptimizer):
    """The ZeRO-1 form of a ``rustyasg.nn.optim`` optimizer; see the module docstring."""

    def __init__(self, optimizer, comm=None):
        super().__init__(optimizer, comm)
        self.state: Dict[int, Dict[str, Variable]] = {}  # group index -> this rank's shard of each state tensor
        self.shards: List[_Shard] = []
        self.grad_norm = None
        self._pending: Optional[Dict[Any, Dict[str, Any]]] = None
        self._gathered: Optional[Dict[str, Any]] = None

    # -- the step ----------------------------------------------------------------------------------
    def updates(self, loss=None, grads=None, clip_grad_norm=None, clip_grad_value=None,
                norm_type: float = 2.0) -> Dict[Variable, rg.Tensor]:
        from rustyasg.nn.optim.optimizer import StateView

        local = self._local_gradients(loss, grads)
        grad_of = {id(p): g for p, g in zip(self.params(), local)}
        n, rank = self.comm.world_size, self.comm.rank
        self.shards, shard_grads = [], []
        for gi, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if grad_of[id(p)] is not None]
            if not params:
                continue
            dtypes = {np.dtype(p.dtype) for p in params}
            if len(dtypes) > 1:
                raise DistributedError(f"ZeRO-1 shards each parameter group as one flat vector; group {gi} mixes "
                                       f"dtypes {sorted(d.name for d in dtypes)}: put them in separate groups")
            sizes = [int(np.prod(p.shape, dtype=np.int64)) for p in params]
            shard = _Shard(gi, params, sizes, math.ceil(sum(sizes) / n), dtypes.pop(), world=n)
            pieces = [rg.reshape(grad_of[id(p)].astype(shard.dtype), (-1,)) for p in params]
            if shard.padding:
                pieces.append(rg.zeros((shard.padding,), shard.dtype))
            flat = rg.concat(*pieces, axis=0) if len(pieces) > 1 else pieces[0]
            self.shards.append(shard)
            shard_grads.append(reduce_scatter(flat, "mean", self.comm, name=f"zero_grad_shard{gi}"))
        if clip_grad_value is not None:
            v = clip_grad_value
            shard_grads = [rg.minimum(rg.maximum(g, -v), v) for g in shard_grads]
        self.grad_norm = None
        if clip_grad_norm is not None:
            shard_grads = self._clip_by_norm(shard_grads, clip_grad_norm, float(norm_type))
        out: Dict[Variable, rg.Tensor] = {}
        for shard, g in zip(self.shards, shard_grads):
            group = self.param_groups[shard.group]
            shard.variable = rg.variable(self._shard_values(shard, rank), name=f"zero.group{shard.group}.params",
                                         trainable=False)
            new = self.optimizer.update_param(shard.variable, g, StateView(self, shard.group, shard.variable),
                                              group.scalars(shard.dtype), group.freeze_structure())
            out.update(new)
            shard.keys = sorted(self.state.get(shard.group, {}))
            full = all_gather(new[shard.variable], self.comm, name=f"zero_params{shard.group}")
            offset = 0
            for p, size in zip(shard.params, shard.sizes):
                out[p] = rg.reshape(rg.narrow(full, 0, offset, size), tuple(p.shape))
                offset += size
        if self._pending is not None:
            self._load_shards(self._pending)
            self._pending = None
        return out

    def _clip_by_norm(self, grads, max_norm, norm_type: float):
        if norm_type == 2.0:
            partial = sum(rg.sum(g.astype("float64") * g.astype("float64")) for g in grads)
            norm = rg.sqrt(all_reduce(partial, "sum", self.comm))
        elif math.isinf(norm_type):
            partial = rg.stack([rg.max(rg.abs(g)).astype("float64") for g in grads]).max()
            norm = all_reduce(partial, "max", self.comm)
        else:
            raise DistributedError(f"ZeRO-1 clips by the 2-norm or the inf-norm; got norm_type={norm_type}")
        self.grad_norm = norm
        coef = rg.minimum(max_norm / (norm + 1e-6), 1.0)
        return [g * coef.astype(g.dtype) for g in grads]

    # -- keeping the shards in step with the parameters -------------------------------------------------
    def _flat(self, shard: _Shard, arrays) -> np.ndarray:
        flat = np.concatenate([np.asarray(a, shard.dtype).reshape(-1) for a in arrays])
        return np.concatenate([flat, np.zeros(shard.padding, shard.dtype)])

    def _shard_values(self, shard: _Shard, rank: int) -> np.ndarray:
        flat = self._flat(shard, [p.value() for p in shard.params])
        return flat[rank * shard.shard_size:(rank + 1) * shard.shard_size].copy()

    def sync_shards(self) -> None:
        """Refresh this rank's parameter shards from the parameters (after they were assigned)."""
        for shard in self.shards:
            if shard.variable is not None:
                shard.variable.assign(self._shard_values(shard, self.comm.rank))

    # -- state dicts: the whole state in the wrapped optimizer's layout --------------------------------
    def _index_of(self) -> Dict[int, int]:
        return {id(p): i for i, p in enumerate(self.params())}

    def gather_state(self) -> None:
        """Assemble the whole state on every rank's behalf (a collective); ``state_dict`` returns it."""
        index_of = self._index_of()
        state: Dict[int, Dict[str, np.ndarray]] = {}
        for shard in self.shards:
            for key, var in sorted(self.state.get(shard.group, {}).items()):
                value = var.value()
                if value.ndim == 0:  # a per-step scalar (Adam's step): equal on every rank
                    for p in shard.params:
                        state.setdefault(index_of[id(p)], {})[key] = value.copy()
                    continue
                full = self.comm.all_gather(value)
                offset = 0
                for p, size in zip(shard.params, shard.sizes):
                    state.setdefault(index_of[id(p)], {})[key] = full[offset:offset + size].reshape(p.shape).copy()
                    offset += size
        self._gathered = {"state": dict(sorted(state.items())),
                          "param_groups": self.optimizer.state_dict()["param_groups"]}

    def state_dict(self) -> Dict[str, Any]:
        """The whole optimizer state (PyTorch layout), as assembled by :meth:`gather_state`."""
        if self._gathered is None:
            if self.comm.world_size > 1:
                raise DistributedError("ZeroOptimizer.state_dict: the state is sharded over ranks; call "
                                       "gather_state() on every rank first (Trainer does)")
            self.gather_state()
        out, self._gathered = self._gathered, None
        return out

    def load_state_dict(self, state_dict) -> None:
        """Take the settings, and this rank's shard of every state tensor, from a whole state dict."""
        for saved, group in zip(state_dict["param_groups"], self.param_groups):
            group.update({k: v for k, v in saved.items() if k in self.optimizer.defaults or k == "initial_lr"})
        entries = {int(k): dict(v) for k, v in state_dict["state"].items()}
        if self.shards:
            self._load_shards(entries)
        else:
            self._pending = entries  # the shards exist once the step is built

    def _load_shards(self, entries) -> None:
        from rustyasg.nn.optim.optimizer import StateView

        index_of, rank = self._index_of(), self.comm.rank
        for shard in self.shards:
            have = [entries.get(index_of[id(p)], {}) for p in shard.params]
            view = StateView(self, shard.group, shard.variable)
            for key in sorted(set().union(*have)):
                values = [h.get(key) for h in have]
                if any(v is None for v in values):
                    raise DistributedError(f"optimizer state {key!r} is missing for some parameters of group "
                                           f"{shard.group}")
                first = np.asarray(values[0])
                if first.ndim == 0 and key == "step":
                    view.load(key, first)
                    continue
                flat = self._flat(shard, values)
                view.load(key, flat[rank * shard.shard_size:(rank + 1) * shard.shard_size].copy())
        self.sync_shards()

    # -- reporting ---------------------------------------------------------------------------------------
    def memory_report(self) -> Dict[str, int]:
        """Bytes of optimizer state on this rank, next to what one unsharded copy would take."""
        held = sum(_nbytes(v) for s in self.state.values() for v in s.values())
        shard_params = sum(_nbytes(s.variable) for s in self.shards if s.variable is not None)
        full = 0
        for shard in self.shards:
            for key, var in self.state.get(shard.group, {}).items():
                full += _nbytes(var) if var.ndim == 0 else sum(shard.sizes) * shard.dtype.itemsize
        return {"state_bytes_this_rank": int(held), "param_shard_bytes_this_rank": int(shard_params),
                "state_bytes_unsharded": int(full), "ranks": self.comm.world_size}


def _nbytes(var: Variable) -> int:
    return int(np.prod(var.shape, dtype=np.int64)) * np.dtype(var.dtype).itemsize
