"""Compile a program into a flat list of prebound calls over planned buffers.

Compilation (once per input signature):

1. each unit of the program's plan (``program.plan``, see :mod:`.fusion`; every
   instruction alone when fusion is disabled; small groups split where numpy's calls cost
   less than their compile, :mod:`.small_groups`) is built by its kernel, in the plan's
   order; an op without a cpu kernel is a :class:`MissingKernelError` naming it;
2. a probe pass finds which results are views (reshape, transpose, slice ...)
   and which strided views must be copied before a kernel that needs
   C-contiguous operands;
3. optimizer updates are written in place into the variable when nothing reads
   the old value afterwards (the compiler kit's :func:`plan_updates`);
4. the compiler kit's planner (:func:`plan_memory`) computes buffer lifetimes over
   the steps that run and gives every buffer an offset in one arena (the cpu's
   :data:`~.memory.LAYOUT`); the plan is ``program.plan.memory``;
5. each unit is bound to its arrays, giving a zero-argument callable.

Running is then: copy the inputs into their buffers, call each callable, copy
the outputs out, apply the few updates that could not be done in place.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((2, 3), name="x")
    >>> f = rg.function([x], rg.tanh(x) * 2.0, backend="cpu")
    >>> f.compile(np.zeros((2, 3), np.float32)).memory_report()["steps"]
    1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rustyasg.core.backend_api import MissingKernelError, Step, last_reads, plan_memory, plan_updates
from rustyasg.core.executor import Executable

from .fused import GroupKernel, build_kernel
from .fusion import cpu_plan
from .kernels.protocol import Impl
from .memory import LAYOUT, allocate, buffer_view
from .small_groups import numpy_groups


@dataclass
class Unit:
    """One scheduled step: a single instruction or a fused group."""

    kind: str                      # 'single', 'group', 'copy'
    outs: List[Any]                # value keys it defines
    ins: List[Any]                 # value keys it reads (in kernel argument order)
    impl: Optional[Impl] = None
    group: Optional[GroupKernel] = None
    label: str = ""
    order: int = 0
    views: Dict[Any, Any] = field(default_factory=dict)


class CpuExecutable(Executable):
    """A program compiled for the cpu backend (not re-entrant: buffers are reused)."""

    def __init__(self, backend, program, table):
        from .precompile import precompile

        self.backend = backend
        self.program = program
        _Builder(self, backend, program, table).build()
        precompile(self._steps)  # the kernels' JIT on two cores, before the first call needs them

    def run(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        for k, buf in self._input_copies:
            np.copyto(buf, inputs[k])
        # The steps that run numpy's ufuncs stay as quiet as the compiled ones: a NaN or an overflow
        # is a value, as in numba's kernels (and PyTorch), not a RuntimeWarning from the executor.
        # 1.2 us a run.
        with np.errstate(all="ignore"):
            for step in self._steps:
                step()
        outs = [a.copy() for a in self._outputs]
        for dst, src in self._deferred:
            np.copyto(dst, src)
        return outs

    def memory_report(self) -> Dict[str, Any]:
        """Planned memory (bytes) and how the program was lowered.

        ``arena_bytes`` is the planned peak of everything the executable allocates
        (inputs' copies, intermediates, scratch); ``naive_bytes`` what one buffer per
        value would take; ``live_peak_bytes`` the lower bound (most bytes alive at
        one step).
        """
        return dict(self._report)

    def describe(self) -> str:
        """One line per step: what runs and on which values."""
        return "\n".join(self._labels)

    def generated_kernels(self) -> list:
        """The numba dispatchers of this program's fused groups (for inspection and tests)."""
        return [g.fn for g in self._groups]


class _Builder:
    def __init__(self, exe, backend, program, table):
        self.exe = exe
        self.backend = backend
        self.program = program
        self.table = table
        self.by_id = program.by_id()

    # -- 1/2. units, in the plan's order ------------------------------------------------------
    def _units(self) -> List[Unit]:
        if self.program.plan is None:
            self.program.plan = cpu_plan(self.program, fuse=False, table=self.table)
        plan, codes = numpy_groups(self.program.plan, self.program, self.table)
        self.program.plan = plan
        units, missing = [], {}
        for pu in plan.units:
            members = [self.by_id[m] for m in pu.members]
            for m in members:
                if m.op not in self.table:
                    missing.setdefault(m.op, m.source)
            if any(m.op not in self.table for m in members):
                continue
            if pu.kind == "fused":
                kernel = GroupKernel(members, pu.writes, self.by_id, self.table, codes.get(tuple(pu.members)))
                mset = set(pu.members)
                ext = [i for i in kernel.inputs if i not in mset]
                label = "fused[" + ",".join(m.op for m in members) + "]"
                units.append(Unit("group", list(kernel.outputs), ext, group=kernel, label=label, order=pu.order))
                continue
            ins = members[0]
            impl = build_kernel(ins, [self.by_id[a] for a in ins.inputs], self.table[ins.op])
            units.append(Unit("single", [ins.id], list(ins.inputs), impl=impl, label=impl.label or ins.op,
                              order=pu.order))
        if missing:
            where = "; ".join(f"{op} (created at {src})" if src else op for op, src in sorted(missing.items()))
            raise MissingKernelError(f"the cpu backend has no kernel for op(s): {where}. Ops without a cpu "
                                     f"kernel are never run by the slow reference; add one with the "
                                     f"rustyasg_register_kernels hook.")
        return units

    # -- 3. probe --------------------------------------------------------------------------------
    def _probe(self, units: List[Unit]):
        """Decide views vs buffers on stand-in arrays (np.empty does not touch memory)."""
        probes: Dict[Any, np.ndarray] = {}
        self.root: Dict[Any, Any] = {}
        self.resident = {}
        for ins in self.program.instrs:
            if ins.op == "input":
                probes[ins.id] = np.empty(ins.shape, ins.dtype)
                self.root[ins.id] = ins.id
            elif ins.op == "variable":
                var = self.program.variables[ins.id]
                arr = self.backend.resident(var)
                self.resident[ins.id] = arr
                probes[ins.id] = arr
                self.root[ins.id] = ins.id
            elif ins.op == "constant":
                value = np.asarray(ins.attrs["value"]).reshape(ins.shape)
                # numba compiles a kernel once per argument type and a read-only array is a type of
                # its own: a writable copy (nothing writes constants) shares the kernel compiled
                # for buffers and variables instead of compiling it a second time (measured 0.15 s).
                probes[ins.id] = value if value.flags.writeable else value.copy()
                self.root[ins.id] = ins.id
        self.view_of: Dict[Any, tuple] = {}  # key -> (view fn, input keys)
        final: List[Unit] = []
        copies = 0
        for u in units:
            if u.kind == "single" and u.impl.view is not None:
                v = u.impl.view(*[probes[i] for i in u.ins])
                if v is not None:
                    key = u.outs[0]
                    probes[key] = v
                    # an empty view shares no memory with anything: it is a view of its first operand
                    base = next((i for i in u.ins if v.size == 0 or np.may_share_memory(v, probes[i])), None)
                    self.root[key] = self.root[base] if base is not None else key
                    self.view_of[key] = (u.impl.view, list(u.ins))
                    if base is None and any(getattr(self.by_id.get(self.root[i]), "op", None) != "constant"
                                            for i in u.ins):
                        raise RuntimeError(f"cpu kernel {u.label}: its view function returned a copy of a "
                                           f"run-time value (the kernel must return a view or None)")
                    if base is None:  # a view of constants only: keep it as its own constant
                        self.view_of.pop(key)
                        probes[key] = np.array(v)
                        u.kind = "constant"
                    final.append(u)
                    continue
                if u.impl.run is None and u.impl.bind is None:
                    raise RuntimeError(f"cpu kernel {u.label}: no view possible and no run function")
            needs_contig = u.kind == "group" or (u.impl is not None and u.impl.contiguous)
            if needs_contig:
                strided = u.impl.reads_strided if u.impl is not None else None
                for k, i in enumerate(u.ins):
                    if not probes[i].flags.c_contiguous and not (strided and strided(k, probes[i])):
                        key = ("copy", copies)
                        copies += 1
                        final.append(Unit("copy", [key], [i], impl=Impl(bind=_copy_bind), label="copy"))
                        probes[key] = np.empty(probes[i].shape, probes[i].dtype)
                        self.root[key] = key
                        u.ins[k] = key
            for o in u.outs:
                ins = self.by_id.get(o)
                probes[o] = np.empty(ins.shape, ins.dtype)
                self.root[o] = o
            final.append(u)
        self.probes = probes
        return final

    # -- 4. in-place updates ------------------------------------------------------------------------
    def _runs(self, u: Unit) -> bool:
        """Whether ``u`` is a step of the run loop (views and constants are bound once)."""
        return u.kind != "constant" and not (u.kind == "single" and u.outs[0] in self.view_of)

    def _inplace_updates(self, steps: List[Unit]):
        """Which updates write the variable directly: the compiler kit's rule (:func:`plan_updates`)."""
        step_of = {o: k for k, u in enumerate(steps) for o in u.outs}
        last = last_reads([Step(u.ins) for u in steps], self.root.get)
        plan = plan_updates(
            [(var.id, vid) for var, vid in self.program.updates], step_of=step_of.get, root_of=self.root.get,
            last_read=last.get, outputs={self.root[o] for o in self.program.outputs},
            reads_in_place=lambda step, V: self._identity_reads(steps[step], V),
            unchanged=lambda V, vid: vid == V)
        self.inplace: Dict[Any, int] = plan.in_place   # value key -> variable instr id it is written into
        self.deferred: List[tuple] = plan.deferred     # (variable instr id, value key)
        updated = set(plan.snapshots)
        # A deferred update whose value aliases an updated variable must be read before any write.
        self.snapshots = []
        for k, (V, vid) in enumerate(self.deferred):
            if self.root[vid] in updated:
                key = ("snapshot", k)
                self.snapshots.append(Unit("copy", [key], [vid], impl=Impl(bind=_copy_bind), label="snapshot"))
                self.probes[key] = np.empty(self.probes[vid].shape, self.probes[vid].dtype)
                self.root[key] = key
                self.deferred[k] = (V, key)

    def _identity_reads(self, unit: Unit, V) -> bool:
        """True when ``unit`` reads the variable only element-for-element (safe in place)."""
        arr = self.resident[V] if V in self.resident else None
        elementwise = unit.kind == "group" or (unit.impl is not None and getattr(unit.impl, "elementwise", False))
        if not elementwise or arr is None:
            return False
        for i in unit.ins:
            if self.root[i] != V:
                continue
            p = self.probes[i]
            if p.size != arr.size or p.ctypes.data != arr.ctypes.data or not p.flags.c_contiguous:
                return False
            if unit.kind == "group":
                k = unit.ins.index(i)
                if unit.group.code.operands[k][1] != unit.group.code.loop_shape:
                    return False
        return True

    # -- 5/6. allocate and bind --------------------------------------------------------------------
    def build(self):
        units = self._probe(self._units())
        self._inplace_updates([u for u in units if self._runs(u)])
        units = self.snapshots + units
        steps = [u for u in units if self._runs(u)]
        program = self.program
        memory = plan_memory(
            [Step(u.ins, u.outs, tuple(_nbytes(shape, dtype) for shape, dtype in
                                       (u.impl.scratch if u.impl is not None else ()))) for u in steps],
            lambda r: self.probes[r].nbytes, LAYOUT, root_of=lambda v: self.inplace.get(self.root[v], self.root[v]),
            inputs=program.inputs, keep=list(program.outputs) + [vid for _, vid in self.deferred],
            resident=self.resident)
        program.plan.memory = memory
        arena = allocate(memory.total_bytes)
        arrays: Dict[Any, np.ndarray] = {}
        for ins in program.instrs:
            if ins.op in ("variable", "constant"):
                arrays[ins.id] = self.probes[ins.id]
        for b in memory.buffers.values():
            if not (isinstance(b.key, tuple) and b.key[0] == "scratch"):
                p = self.probes[b.key]
                arrays[b.key] = buffer_view(arena, b.slot, p.shape, p.dtype)
        for vid, V in self.inplace.items():
            arrays[vid] = self.resident[V]
        bound, labels = [], []
        for u in units:
            if u.kind == "constant":
                arrays[u.outs[0]] = self.probes[u.outs[0]]
                continue
            if u.kind == "single" and u.outs[0] in self.view_of:
                fn, ins_keys = self.view_of[u.outs[0]]
                arrays[u.outs[0]] = fn(*[arrays[i] for i in ins_keys])
                continue
            if u.kind == "group":
                mapping = {orig: arrays[key] for orig, key in zip(u.group.inputs, u.ins)}
                mapping.update({o: arrays[o] for o in u.outs})
                bound.append(u.group.bound(mapping))
            else:
                scratch = [buffer_view(arena, memory.buffers[("scratch", len(bound), j)].slot, shape, dtype)
                           for j, (shape, dtype) in enumerate(u.impl.scratch)]
                bound.append(u.impl.bound([arrays[i] for i in u.ins] + [arrays[u.outs[0]]] + scratch))
            labels.append(f"{u.label}({', '.join(_name(i) for i in u.ins)}) -> {', '.join(_name(o) for o in u.outs)}")
        used_inputs = [(k, iid) for k, iid in enumerate(program.inputs) if iid in memory.buffers]
        exe = self.exe
        exe._input_copies = [(k, arrays[iid]) for k, iid in used_inputs]
        exe._steps = bound
        exe._outputs = [arrays[o] for o in program.outputs]
        exe._deferred = [(self.resident[V], arrays[vid]) for V, vid in self.deferred]
        exe._labels = labels
        exe._groups = [u.group for u in units if u.kind == "group"]
        exe._arena = arena
        exe._report = {
            "arena_bytes": int(memory.total_bytes),
            "naive_bytes": int(memory.naive_bytes),
            "live_peak_bytes": int(memory.peak_bytes),
            "buffers": len(memory.buffers),
            "steps": len(bound),
            "fused_groups": sum(1 for u in units if u.kind == "group"),
            "views": len(self.view_of),
            "copies": sum(1 for u in units if u.kind == "copy"),
            "variable_bytes": int(sum(a.nbytes for a in self.resident.values())),
            "inplace_updates": len(self.inplace),
            "deferred_updates": len(self.deferred),
        }


def _copy_bind(src, out):
    import functools

    return functools.partial(np.copyto, out, src)


def _nbytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _name(key) -> str:
    return f"%{key}" if isinstance(key, int) else str(key)
