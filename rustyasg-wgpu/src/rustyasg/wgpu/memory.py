"""GPU buffers of a compiled step, from the compiler kit's memory plan; in-place variable updates.

The compiler kit plans the buffers (:func:`rustyasg.core.compile.plan_memory`, pooled
layout: whole buffers by size class, :func:`~rustyasg.wgpu.buffers.bindable_size`,
since bind groups bind whole buffers): walking the scheduled units, a value takes a
free buffer of its class once the last reader of the previous value ran. Inputs are
planned too (rewritten every run, their buffer reused once read); values that leave
the step (outputs, update values) stay live to the end. This module creates one GPU
buffer per pooled slot; variables use their resident buffer, constants are uploaded
once.

A variable's new value is written straight into the variable's buffer ("in place")
when the compiler kit's rule allows it (:func:`rustyasg.core.compile.plan_updates`: the
fused kernel computing it is the last to read the old value, reads it only elementwise,
and nothing at the end of the step needs the old value). Otherwise the value is copied
in after the compute pass. Either way every reader saw the old value: updates are
simultaneous. Where a copied value is another updated variable's old value (a swap), it
is first copied aside into a buffer of the same plan (a step after every unit, so a
buffer freed earlier in the step holds it).

Example::

    plan = MemoryPlan(compiler, units); plan.assign()
    plan.report()["plan_bytes"]
    # 4096
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from rustyasg.core.backend_api import MemoryLayout, Step, last_reads, plan_memory, plan_updates

from .buffers import _usage_storage, bindable_size, upload


class MemoryPlan:
    """The GPU buffers of one compiled program, made from the compiler kit's plan
    (``program.plan.memory``, a :class:`rustyasg.core.compile.MemoryPlan`; see the module docstring)."""

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
    def layout(self) -> MemoryLayout:
        """What this backend declares to the planner: pooled buffers of bindable size classes."""
        return MemoryLayout(alignment=16, pooled=True, size_class=lambda n: bindable_size(max(n, 4), self.ctx))

    def assign(self) -> None:
        c, prog = self.c, self.c.program
        base = c.base
        var_ids = {var.id: iid for iid, var in prog.variables.items()}
        for iid, var in prog.variables.items():
            self._buffers[iid] = c.backend.resident(var).buffer
        steps = [Step(u.reads, u.writes) for u in self.units]
        last = last_reads(steps, base.get)
        produced_by = {m: k for k, u in enumerate(self.units) for m in u.writes}
        out_bases = {base[o] for o in prog.outputs}

        # In-place updates: the compiler kit's rule; a fused kernel reading the variable at the
        # output's own shape reads it element for element.
        def reads_in_place(k, vb):
            u = self.units[k]
            return not any(base[v] == vb and tuple(c.by_id[v].shape) != tuple(u.shape) for v in u.reads)

        updates = plan_updates(
            [(var_ids[var.id], base[vid]) for var, vid in prog.updates], step_of=produced_by.get,
            root_of=lambda b: b, last_read=last.get, outputs=out_bases, reads_in_place=reads_in_place,
            writable=lambda k: self.units[k].kind == "fused")
        self.in_place.update(updates.in_place)
        inputs = [iid for iid in prog.inputs if iid in c.by_id]
        # Snapshots of updated variables are taken after the compute pass: one more step, after
        # every unit, whose outputs are planned like any value (a buffer freed earlier is reused).
        snapshot_of = {b: ("snapshot", b) for b in updates.snapshots}
        if snapshot_of:
            steps.append(Step(tuple(snapshot_of), tuple(snapshot_of.values())))

        def root_of(v):
            return v if isinstance(v, tuple) else self.in_place.get(base[v], base[v])

        memory = plan_memory(steps, lambda v: self.nbytes(v[1] if isinstance(v, tuple) else v), self.layout(),
                             root_of=root_of, inputs=inputs, resident=set(prog.variables),
                             keep=out_bases | {base[vid] for _, vid in prog.updates} | set(snapshot_of.values()))
        prog.plan.memory = memory
        pool = [self._new_buffer(size, "plan") for size in memory.pool_sizes]
        self.plan_bytes = memory.total_bytes
        for b in updates.in_place:
            self._buffers[b] = self._buffers[self.in_place[b]]
        for key, slot in memory.buffers.items():
            self._buffers[key] = pool[slot.slot]
        for iid in prog.inputs:
            ins = c.by_id.get(iid)
            if iid not in memory.buffers:  # an input the program does not use
                self.inputs.append(None)
                continue
            self.input_bytes += memory.buffers[iid].size
            self.inputs.append((self._buffers[iid], c.storage[iid], ins.shape))

        # Copies after the compute pass: snapshots of variables another update reads, then updates.
        snap: Dict[int, Any] = {b: self._buffers[key] for b, key in snapshot_of.items()}
        for b in updates.snapshots:
            self.snapshot_copies.append((self.buffer_of(b), snap[b], self.nbytes(b)))
        for vb, b in updates.deferred:
            src = snap.get(b) or self.buffer_of(b)
            self.update_copies.append((src, self._buffers[vb], self.nbytes(b)))

    def report(self) -> Dict[str, Any]:
        """Bytes: ``plan_bytes`` the pooled buffers (inputs and temporaries; ``input_bytes`` of them
        first hold inputs), constants; in-place and copied update counts."""
        return {"plan_bytes": self.plan_bytes, "constant_bytes": self.constant_bytes,
                "input_bytes": self.input_bytes, "in_place_updates": len(self.in_place),
                "copied_updates": len(self.update_copies)}
