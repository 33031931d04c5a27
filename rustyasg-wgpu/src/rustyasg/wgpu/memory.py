"""Buffer assignment for a compiled step: liveness-based reuse, in-place variable updates.

Walking the scheduled units in order, each value a unit writes gets a buffer from a
free list of size classes (:func:`~rustyasg.wgpu.buffers.size_class`); after the unit,
buffers whose last reader it was go back to the list. Values that leave the step
(outputs, update values) stay live to the end. Leaves are not planned: inputs get one
persistent buffer each (rewritten every run), variables use their resident buffer,
constants are uploaded once.

A variable's new value is written straight into the variable's buffer ("in place")
when the compiler kit's rule allows it (:func:`rustyasg.core.compile.plan_updates`: the
fused kernel computing it is the last to read the old value, reads it only elementwise,
and nothing at the end of the step needs the old value). Otherwise the value is copied
in after the compute pass. Either way every reader saw the old value: updates are
simultaneous.

Example::

    >>> plan = MemoryPlan(compiler, units); plan.assign()     # doctest: +SKIP
    >>> plan.report()["plan_bytes"]                           # doctest: +SKIP
    4096
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Tuple

import numpy as np

from rustyasg.core.backend_api import plan_updates

from .buffers import _usage_storage, bindable_size, upload


class MemoryPlan:
    """Buffers of one compiled program (see the module docstring)."""

    def __init__(self, compiler: Any, units: List[Any]):
        self.c = compiler
        self.units = units
        self.ctx = compiler.kb.ctx
        self._buffers: Dict[int, Any] = {}
        self.inputs: List[Tuple[Any, Any, tuple]] = []   # (buffer, storage, shape) per program input
        self.in_place: Dict[int, int] = {}               # value id -> variable instr id it is written into
        self.snapshot_copies: List[Tuple[Any, Any, int]] = []
        self.update_copies: List[Tuple[Any, Any, int]] = []
        self.plan_bytes = 0
        self.constant_bytes = 0
        self.input_bytes = 0
        self._owned: List[Any] = []

    # -- buffers --------------------------------------------------------------------------------
    def _new_buffer(self, nbytes: int, label: str) -> Any:
        buf = self.ctx.device.create_buffer(size=bindable_size(max(nbytes, 4), self.ctx), usage=_usage_storage(),
                                            label=label)
        self._owned.append(buf)
        return buf

    def buffer_of(self, b: int) -> Any:
        """The buffer holding value ``b`` (a base id); constants are uploaded on first request."""
        buf = self._buffers.get(b)
        if buf is None:
            ins = self.c.by_id[b]
            if ins.op != "constant":
                raise KeyError(f"no buffer planned for %{b} ({ins.op})")
            data = self.c.storage[b].to_device(np.asarray(ins.attrs["value"]))
            buf = upload(self.ctx, data, buffer=self._new_buffer(data.nbytes, "constant"))
            self.constant_bytes += buf.size
            self._buffers[b] = buf
        return buf

    def f32_constant(self, b: int) -> Any:
        """An f32 copy of constant ``b`` (for fused kernels, which compute in f32)."""
        key = ("f32", b)
        buf = self._buffers.get(key)
        if buf is None:
            data = np.ascontiguousarray(np.asarray(self.c.by_id[b].attrs["value"]), dtype=np.float32)
            buf = upload(self.ctx, data, buffer=self._new_buffer(data.nbytes, "constant f32"))
            self.constant_bytes += buf.size
            self._buffers[key] = buf
        return buf

    def nbytes(self, v: int) -> int:
        ins = self.c.by_id[v]
        return ins.size * self.c.storage[v].itemsize

    # -- planning --------------------------------------------------------------------------------
    def assign(self) -> None:
        c, prog = self.c, self.c.program
        base = c.base
        backend = c.backend
        for iid in prog.inputs:
            ins = c.by_id.get(iid)
            if ins is None:  # an input the passes found unused
                self.inputs.append(None)
                continue
            buf = self._new_buffer(self.nbytes(iid), f"input {ins.name}")
            self.input_bytes += buf.size
            self._buffers[iid] = buf
            self.inputs.append((buf, c.storage[iid], ins.shape))
        for iid, var in prog.variables.items():
            self._buffers[iid] = backend.resident(var).buffer

        readers: Dict[int, List[int]] = defaultdict(list)
        for k, u in enumerate(self.units):
            for v in u.reads:
                readers[base[v]].append(k)
        produced_by = {m: k for k, u in enumerate(self.units) for m in u.writes}
        out_bases = {base[o] for o in prog.outputs}
        update_bases = [base[vid] for _, vid in prog.updates]
        var_ids = {var.id: iid for iid, var in prog.variables.items()}

        # In-place updates: the compiler kit's rule; a fused kernel reading the variable at the
        # output's own shape reads it element for element.
        def reads_in_place(k, vb):
            u = self.units[k]
            return not any(base[v] == vb and tuple(c.by_id[v].shape) != tuple(u.shape) for v in u.reads)

        updates = plan_updates(
            [(var_ids[var.id], base[vid]) for var, vid in prog.updates], step_of=produced_by.get,
            root_of=lambda b: b, last_read=lambda vb: max(readers[vb]) if readers.get(vb) else None,
            outputs=out_bases, reads_in_place=reads_in_place, writable=lambda k: self.units[k].kind == "fused")
        for b, vb in updates.in_place.items():
            self.in_place[b] = vb
            self._buffers[b] = self._buffers[vb]

        # Liveness-based assignment of everything else units write.
        last_use = {b: max(ks) for b, ks in readers.items()}
        keep = out_bases | set(update_bases)
        free: Dict[int, List[Any]] = defaultdict(list)
        for k, u in enumerate(self.units):
            for w in u.writes:
                if w in self._buffers:
                    continue
                cls = bindable_size(max(self.nbytes(w), 4), self.ctx)
                if free[cls]:
                    self._buffers[w] = free[cls].pop()
                else:
                    self._buffers[w] = self._new_buffer(cls, "plan")
                    self.plan_bytes += cls
            dead = [w for w in u.writes if w not in keep and w not in last_use]
            dead += [b for b in set(base[v] for v in u.reads) if last_use.get(b) == k]
            for b in dead:
                if b in keep or b in self.in_place or b not in produced_by:
                    continue
                buf = self._buffers[b]
                free[buf.size].append(buf)

        # Copies after the compute pass: snapshots of variables another update reads, then updates.
        snap: Dict[int, Any] = {}
        for b in updates.snapshots:
            snap[b] = self._new_buffer(self.nbytes(b), "snapshot")
            self.snapshot_copies.append((self.buffer_of(b), snap[b], self.nbytes(b)))
        for vb, b in updates.deferred:
            src = snap.get(b) or self.buffer_of(b)
            self.update_copies.append((src, self._buffers[vb], self.nbytes(b)))

    def report(self) -> Dict[str, Any]:
        """Planned bytes: temporaries, constants, inputs; in-place update count."""
        return {"plan_bytes": self.plan_bytes, "constant_bytes": self.constant_bytes,
                "input_bytes": self.input_bytes, "in_place_updates": len(self.in_place),
                "copied_updates": len(self.update_copies)}
