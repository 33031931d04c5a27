"""Compile a static :class:`~rustyasg.core.program.Program` into a replayable GPU step.

Everything that can be decided once is decided here, so a run only writes the inputs,
records the prepared launches into one compute pass, and submits:

1. **Aliases** — ``reshape``, ``identity``, ``stop_gradient`` and casts that keep the
   device storage (float64 <-> float32, int8 -> int32) are views of their input's buffer (no
   kernel); a cast that must wrap into a narrower integer (int32 -> int8) is a kernel.
2. **Matmul layouts** — a ``transpose`` feeding a matmul is not materialized when the
   permuted source still has a unit-stride row or column: the matmul reads the source in
   place (the head split ``(B, T, H, D) -> (B, H, T, D)`` of attention, ``k`` as
   ``(B, H, D, T)``, a weight's ``W.T``). A ``transpose`` whose only input is a matmul read by
   nothing else is a view: the matmul writes its result straight into the transposed
   layout (the head merge ``(B, H, T, D) -> (B, T, H, D)``).
3. **Fusion** — float elementwise instructions are grouped (:mod:`.fusion`); each group
   is one generated kernel; 0-d float constants become uniforms of that kernel.
4. **Scheduling** of units (groups and single-instruction kernels).
5. **Memory** — buffers are assigned by liveness (:mod:`.memory`): a value's buffer is
   reused once its last reader ran. A variable's update is written straight into the
   variable's buffer when the fused kernel computing it is the last reader of the old
   value and reads it elementwise; otherwise it is copied in at the end of the step
   (updates are simultaneous: every reader sees the old value).
6. **Launches** — each unit's kernel builds its :class:`KernelLaunch` list with real
   buffers, so bind groups and uniform blocks exist before the first run.

Example::

    exe = backend.compile(program)
    exe.memory_report()["plan_bytes"]
    # 1048576
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from rustyasg.core.compile import ELEMENTWISE, Unit, plan_units, schedule_hints
from rustyasg.core.errors import MissingKernelError
from rustyasg.core.plugins import load_kernels
from rustyasg.core.program import Instr, Program

from .fusion import ew_step, fusable, scalar_constant
from .kernels.api import STORAGES, KernelError, TensorView
from .kernels.storage import holds
from .kernels.elementwise import ElementwiseSpec, EwOp, broadcast_strides, contiguous_strides
from .kernels.linalg_ops import matrix_layout
from .memory import MemoryPlan

LEAVES = ("input", "variable", "constant")
#: How many recent same-shape groups an instruction without a producer group may join
#: (independent work sharing one kernel, e.g. sigmoid(x) next to exp(x)).
RECENT_GROUPS = 4


def _axes(instr: Instr) -> List[int]:
    return [a % len(instr.shape) for a in instr.attrs["axes"]]


def read_strides(transpose: Instr, source_shape) -> Optional[Tuple[int, ...]]:
    """Element strides at which a matmul reads ``transpose``'s value from its contiguous
    source, or None when a matrix of it would have no unit stride.

    Example::

        >>> t = Instr(1, "transpose", (0,), {"axes": (0, 2, 1, 3)}, (2, 4, 3, 8), "float32")
        >>> read_strides(t, (2, 3, 4, 8))
        (96, 8, 32, 1)
    """
    st = contiguous_strides(tuple(source_shape))
    strides = tuple(st[a] for a in _axes(transpose))
    return strides if _has_unit_stride(transpose.shape, strides) else None


def write_strides(transpose: Instr) -> Optional[Tuple[int, ...]]:
    """Element strides at which a matmul writes its result into ``transpose``'s contiguous
    layout, or None when the result's rows would not be unit-stride.

    Example::

        >>> t = Instr(1, "transpose", (0,), {"axes": (0, 2, 1, 3)}, (2, 3, 4, 8), "float32")
        >>> write_strides(t)
        (96, 8, 32, 1)
    """
    axes = _axes(transpose)
    st = contiguous_strides(tuple(transpose.shape))
    strides = tuple(st[axes.index(d)] for d in range(len(axes)))
    return strides if len(strides) >= 2 and strides[-1] == 1 else None


def _has_unit_stride(shape, strides) -> bool:
    if len(shape) < 2:
        return False
    try:
        matrix_layout(shape, strides)
    except ValueError:
        return False
    return True


class ProgramCompiler:
    """One compilation: analysis, fusion, scheduling, memory plan and launches."""

    def __init__(self, backend: Any, program: Program):
        self.backend = backend
        self.program = program
        self.kb = backend.kernel_builder
        self.by_id: Dict[int, Instr] = program.by_id()
        self.kernels = load_kernels("wgpu")
        self.base: Dict[int, int] = {}        # value id -> id whose buffer holds it
        # matmul id -> per operand (value id read, strides over the operand's shape or None)
        self.mm_operands: Dict[int, List[Tuple[int, Optional[Tuple[int, ...]]]]] = {}
        self.mm_out_strides: Dict[int, Tuple[int, ...]] = {}  # matmul id -> strides of its result
        self.written_in_place: set = set()  # transposes a matmul writes into (views of its buffer)
        self.storage = {i.id: self.kb.storage(i.dtype) for i in program.instrs}

    # -- analysis -----------------------------------------------------------------------------
    def is_alias(self, ins: Instr) -> bool:
        if ins.op in LEAVES or not ins.inputs:
            return False
        if ins.op in ("reshape", "identity", "stop_gradient") or ins.id in self.written_in_place:
            return True
        # a cast into an 8/16-bit or uint32 value stored in a wider word is a view only when every
        # source value is already in range; otherwise its kernel wraps (int8(300) == 44)
        return (ins.op == "cast" and self.storage[ins.inputs[0]] == self.storage[ins.id]
                and holds(ins.dtype, self.by_id[ins.inputs[0]].dtype))

    def reads(self, ins: Instr) -> List[int]:
        """Value ids an instruction's kernel reads (matmul operands folded through transposes)."""
        if ins.id in self.mm_operands:
            return [v for v, _ in self.mm_operands[ins.id]]
        return list(ins.inputs)

    def analyse(self) -> None:
        for ins in self.program.instrs:
            if ins.op == "matmul":
                ops = []
                for v in ins.inputs:
                    src = self.by_id[v]
                    strides = (read_strides(src, self.by_id[src.inputs[0]].shape)
                               if src.op == "transpose" and src.dtype == self.by_id[src.inputs[0]].dtype else None)
                    ops.append((src.inputs[0], strides) if strides is not None else (v, None))
                self.mm_operands[ins.id] = ops
        self.needed = self._needed()
        self._fold_result_transposes()
        for ins in self.program.instrs:
            self.base[ins.id] = self.base[ins.inputs[0]] if self.is_alias(ins) else ins.id
        missing = sorted({i.op for i in self.program.instrs if i.id in self.needed and i.op not in LEAVES
                          and not self.is_alias(i) and i.op not in self.kernels})
        if missing:
            raise MissingKernelError(f"the wgpu backend has no kernel for op(s) {missing}; installed wgpu "
                                     f"kernels: {len(self.kernels)} ops")

    def _needed(self) -> set:
        """Instructions reachable from the roots through what kernels actually read."""
        needed, stack = set(), list(self.program.roots())
        while stack:
            v = stack.pop()
            if v in needed:
                continue
            needed.add(v)
            ins = self.by_id[v]
            stack.extend(self.reads(ins) if not self.is_alias(ins) else ins.inputs)
        return needed

    def _fold_result_transposes(self) -> None:
        """Let a matmul write into the layout of a transpose that is its only reader."""
        readers: Dict[int, List[int]] = {}
        for ins in self.program.instrs:
            if ins.id in self.needed and ins.op not in LEAVES:
                for v in (ins.inputs if self.is_alias(ins) else self.reads(ins)):
                    readers.setdefault(v, []).append(ins.id)
        roots = set(self.program.roots())
        for ins in self.program.instrs:
            if ins.op != "transpose" or ins.id not in self.needed or not ins.inputs:
                continue
            mm = self.by_id[ins.inputs[0]]
            strides = write_strides(ins)
            if (mm.op == "matmul" and mm.id not in roots and readers.get(mm.id) == [ins.id]
                    and strides is not None and mm.dtype == ins.dtype):
                self.mm_out_strides[mm.id] = strides
                self.written_in_place.add(ins.id)

    # -- units ----------------------------------------------------------------------------------
    def build_units(self) -> List[Unit]:
        order = [i.id for i in self.program.instrs
                 if i.id in self.needed and i.op not in LEAVES and not self.is_alias(i)]
        pos = set(order)
        dtypes = {i.id: i.dtype for i in self.program.instrs}

        def role(iid):
            ins = self.by_id[iid]
            return ELEMENTWISE if fusable(ins, [dtypes[v] for v in ins.inputs]) else None

        def group_key(v):
            b = self.base[v]
            return b if b in pos else None

        limit = self.kb.limit("max-storage-buffers-per-shader-stage", 8)
        plan = plan_units(order, lambda i: self.reads(self.by_id[i]), role, lambda i: self.by_id[i].shape,
                          key_of=group_key, roots=self.program.roots(), max_bindings=max(limit, 4),
                          recent=RECENT_GROUPS, hint_of=schedule_hints(self.program))
        self.program.plan = plan
        self.units = plan.units
        return plan.units

    # -- launches --------------------------------------------------------------------------------
    def view(self, v: int, plan: MemoryPlan) -> TensorView:
        ins = self.by_id[v]
        return TensorView(plan.buffer_of(self.base[v]), ins.shape, ins.dtype, self.storage[v])

    def check_bindable(self, instr: Instr, views) -> None:
        """A clear error when a tensor is larger than one binding may be on this adapter."""
        limit = self.kb.limit("max-storage-buffer-binding-size", 1 << 62)
        for v in views:
            if v.nbytes > limit:
                raise KernelError.of(instr, views, f"a {v.dtype}{tuple(v.shape)} tensor ({v.nbytes} bytes) exceeds "
                                     f"this adapter's max-storage-buffer-binding-size ({limit} bytes, "
                                     f"{self.kb.ctx.summary}); split the work into smaller tensors")

    def fused_launches(self, u: Unit, plan: MemoryPlan):
        names: Dict[int, str] = {}
        inputs, scalars, args_in = [], {}, []
        for v in u.reads:
            c = scalar_constant(self.by_id[v])
            if c is not None:
                key = f"c{len(scalars)}"
                scalars[key] = c
                names[v] = "$" + key
                continue
            names[v] = f"x{len(inputs)}"
            view = self.view(v, plan)
            if self.by_id[self.base[v]].op == "constant" and view.storage.name != "f32":
                # The kernel computes in f32 anyway: an f32 copy of a bool/int constant (a causal
                # mask) keeps the kernel on the vec4 path.
                view = TensorView(plan.f32_constant(self.base[v]), view.shape, np.dtype(np.float32), STORAGES["f32"])
            inputs.append(names[v])
            args_in.append((view.buffer, broadcast_strides(view.shape, u.shape), 0))
            args_in[-1] = args_in[-1] + (view.storage.name,)
        steps = []
        for m in u.members:
            ins = self.by_id[m]
            plan_steps, arity = ew_step(ins)
            prev = None
            for k, (op, lits) in enumerate(plan_steps):
                operands = [names[v] for v in ins.inputs[:arity]] if k == 0 else [prev]
                out = f"v{m}" if k == len(plan_steps) - 1 else f"v{m}_{k}"
                steps.append(EwOp(out, op, tuple(operands) + tuple(lits)))
                prev = out
            names[m] = f"v{m}"
        spec = ElementwiseSpec(tuple(inputs), tuple(steps), tuple(names[w] for w in u.writes), tuple(scalars))
        outs = [self.view(w, plan) for w in u.writes]
        self.check_bindable(self.by_id[u.head], [self.view(v, plan) for v in u.reads if v in names
                                                 and not names[v].startswith("$")] + outs)
        storages = [a[3] for a in args_in] + [o.storage.name for o in outs]
        # Inputs living in a buffer this kernel also writes (in-place variable updates).
        inplace = {}
        for i, (buf, _, _, _) in enumerate(args_in):
            for j, o in enumerate(outs):
                if o.buffer is buf:
                    inplace[i] = j
        return [self.kb.elementwise.launch(spec, u.shape, [a[:3] for a in args_in], [o.buffer for o in outs],
                                           scalars, storages, inplace)]

    def kernel_launches(self, u: Unit, plan: MemoryPlan):
        ins = self.by_id[u.members[0]]
        kernel = self.kernels[ins.op]
        out = self.view(ins.id, plan)
        if ins.id in self.mm_operands:
            # Transposes read or written in place: views of the sources' buffers with the
            # operands' own shapes, their strides in attrs (see kernels.linalg_ops).
            operands = self.mm_operands[ins.id]
            inputs = [self.view(v, plan) if st is None else
                      TensorView(plan.buffer_of(self.base[src]), self.by_id[v].shape, self.by_id[v].dtype,
                                 self.storage[v])
                      for v, (src, st) in zip(ins.inputs, operands)]
            attrs = {**ins.attrs, "_strides": tuple(st for _, st in operands)}
            if ins.id in self.mm_out_strides:
                attrs["_out_strides"] = self.mm_out_strides[ins.id]
            ins = Instr(ins.id, ins.op, tuple(v for v, _ in operands), attrs, ins.shape, ins.dtype,
                        ins.source, ins.name)
        else:
            inputs = [self.view(v, plan) for v in ins.inputs]
        self.check_bindable(ins, inputs + [out])
        try:
            return list(kernel(self.kb, ins, inputs, out))
        except KernelError:
            raise
        except (ValueError, TypeError, MemoryError) as exc:
            raise KernelError.of(ins, inputs, str(exc)) from exc

    def compile(self):
        from .executable import WgpuExecutable

        self.analyse()
        units = self.build_units()
        plan = MemoryPlan(self, units)
        plan.assign()
        launches = []
        for u in units:
            made = self.fused_launches(u, plan) if u.kind == "fused" else self.kernel_launches(u, plan)
            what = (f"fused[{len(u.members)}] {u.shape}" if u.kind == "fused"
                    else f"{self.by_id[u.head].op} {self.by_id[u.head].shape}")
            for launch in made:  # labels name the work in profiles and validation errors
                launch.label = f"{what}: {launch.label}"
            launches += made
        return WgpuExecutable(self.backend, self.program, self, plan, launches)
