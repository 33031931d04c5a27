"""Mixed precision as whole-step passes: autocast and dynamic loss scaling.

``rg.function(..., precision="bf16" | "f16")`` (or ``nn.Trainer(..., precision=...)``) asks the
compiler to run the training step in a 16-bit float where that is safe:

- :func:`autocast` rewrites the lowered step. Each op's policy comes from the op registry
  (``OpDef.precision``, defaults by kind, :func:`~rustyasg.core.registry.precision_of`):
  ``"low"`` ops (matmul, convolutions and so attention's products) run in the 16-bit
  dtype, ``"float32"`` ops (reductions, softmax/log_softmax, norms and so their statistics,
  hence losses) run in float32, ``"follow"`` ops (elementwise, movement) run in the 16-bit
  dtype when an operand is 16-bit and every other float operand is weak (a variable, a
  constant, a size-1 value: cast down as PyTorch's autocast casts weights), else in float32.
  Variables stay float32 (master weights); each gradient leaves the backward pass as float32,
  so optimizer updates are float32; outputs keep their dtypes.
- :func:`loss_scaling` (float16 only; bfloat16 has float32's range and needs none) multiplies
  the loss's cotangent by a scale held in a variable, divides the gradients by it, and makes
  the whole update conditional: a non-finite gradient skips the step (every variable keeps
  its value) and halves the scale; ``growth_interval`` good steps in a row double it
  (PyTorch ``GradScaler``'s defaults). All of it runs inside the compiled step.

Both read ``program.options`` (set by the compiled function) and write what they did to
``program.report``.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4, 3), name="x")
    >>> w = rg.variable(np.ones((3, 2), np.float32), name="w")
    >>> f = rg.function([x], rg.sum(rg.relu(x @ w)), precision="bf16", backend="reference")
    >>> p = f.lower(np.ones((4, 3), np.float32))
    >>> [str(i.dtype) for i in p.instrs if i.op in ("matmul", "relu", "sum")]
    ['bfloat16', 'bfloat16', 'float32']
    >>> float(f(np.ones((4, 3), np.float32)))
    24.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Union

import numpy as np

from .. import dtypes
from ..registry import PRECISIONS, precision_of
from .emit import Emitter

_SOURCES = ("input", "variable", "constant")
#: Readers of a narrow value this close (in instructions) to its float32 copy share the copy.
SHARE_WINDOW = 16
#: Moves a widening looks through (same elements, another layout).
_RELAYOUT = ("transpose", "reshape")
#: Op kinds that read their operands from memory on every backend (no fused widening).
_STORED_READERS = ("nn", "linalg")


@dataclass(frozen=True)
class Precision:
    """A mixed-precision request: the 16-bit ``dtype``, per-op policy ``overrides`` and loss scaling.

    ``loss_scale``: ``"dynamic"`` (the default for float16), ``None`` (the default for bfloat16)
    or a :class:`LossScaler` with other settings.

    >>> Precision.of("f16").dtype, Precision.of("bf16").loss_scale
    (dtype('float16'), None)
    """

    dtype: np.dtype
    overrides: Mapping[str, str] = field(default_factory=dict)
    loss_scale: object = None

    @staticmethod
    def of(value: Union[str, "Precision", None]) -> Optional["Precision"]:
        """``None``/"float32"/"fp32" (no mixed precision), "bf16"/"bfloat16", "f16"/"float16", or a Precision."""
        if value is None or isinstance(value, Precision):
            return value
        name = str(value).lower()
        if name in ("float32", "fp32", "f32"):
            return None
        if name in ("bf16", "bfloat16"):
            return Precision(dtypes.bfloat16)
        if name in ("f16", "fp16", "float16", "half"):
            return Precision(dtypes.float16, loss_scale="dynamic")
        raise ValueError(f"precision={value!r}: expected 'bf16', 'f16', 'float32' or a "
                         f"rustyasg.core.Precision(dtype, overrides=..., loss_scale=...)")

    def __post_init__(self):
        object.__setattr__(self, "dtype", dtypes.as_dtype(self.dtype))
        if self.dtype not in dtypes.LOW_PRECISION:
            raise ValueError(f"Precision dtype must be float16 or bfloat16, got {self.dtype}")
        for op, policy in dict(self.overrides).items():
            if policy not in PRECISIONS:
                raise ValueError(f"Precision overrides: {op!r} -> {policy!r}; a policy is one of {PRECISIONS}")
        if self.loss_scale not in (None, "dynamic") and not isinstance(self.loss_scale, LossScaler):
            raise ValueError(f"loss_scale={self.loss_scale!r}: expected None, 'dynamic' or a LossScaler")


class LossScaler:
    """The state of dynamic loss scaling: two float32 variables that live on the backend.

    Defaults are PyTorch ``GradScaler``'s: initial scale 2**16, ×2 after 2000 good steps,
    ×0.5 on a step with a non-finite gradient (that step is skipped).

    >>> s = LossScaler(init_scale=8.0, growth_interval=3)
    >>> float(s.scale.value()), float(s.good_steps.value())
    (8.0, 0.0)
    """

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000):
        from ..graph import variable

        if not (init_scale > 0 and growth_factor > 1 and 0 < backoff_factor < 1 and growth_interval >= 1):
            raise ValueError("LossScaler needs init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 "
                             "and growth_interval >= 1")
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.scale = variable(np.float32(init_scale), name="loss_scale", trainable=False)
        self.good_steps = variable(np.float32(0.0), name="loss_scale_good_steps", trainable=False)

    def __repr__(self):
        return f"LossScaler(scale={float(self.scale.value())}, good_steps={int(self.good_steps.value())})"


def _gradient_calls(program):
    from ..autograd import gradient_calls

    ids = {i.id for i in program.instrs}
    return [c for c in gradient_calls(ids) if c.seed in ids]


def _weak(ins) -> bool:
    """Values a 16-bit op may cast down without losing the computation's precision intent."""
    return ins.op in ("variable", "constant") or ins.size <= 1


def autocast(program):
    """The mixed-precision rewrite (see the module docstring); a no-op without ``options['precision']``."""
    cfg: Optional[Precision] = program.options.get("precision")
    if cfg is None:
        return program
    low, f32 = cfg.dtype, dtypes.float32
    em = Emitter(program)
    original = {i.id: i.dtype for i in program.instrs}
    kind = {i.id: i for i in program.instrs}
    # Gradients leave the backward pass as float32: users outside the grad call get a cast.
    boundary = {}
    for call in _gradient_calls(program):
        for r in call.results:
            boundary.setdefault(r, []).append(call)
    casts: Dict[tuple, int] = {}
    finished: Dict[int, int] = {}   # gradient id -> its float32 copy
    out, counts = [], {"low": 0, "float32": 0, "casts": 0}

    def as_dtype(v, dt):
        if em.types[v].dtype == dt:
            return v
        key = (v, dt)
        if key not in casts:
            c = em.instr("cast", [v], dtype=dt, source=kind[v].source if v in kind else None)
            out.append(c)
            kind[c.id] = kind[v]  # a cast of a weak value is weak
            casts[key] = c.id
            counts["casts"] += 1
        return casts[key]

    for ins in program.instrs:
        if ins.op in _SOURCES:
            out.append(ins)
            continue
        # gradients read by an update (outside their grad call) read the float32 copy
        ins.inputs = tuple(finished[a] if a in finished and not any(c.built(ins.id) for c in boundary[a]) else a
                           for a in ins.inputs)
        floats = [a for a in ins.inputs if dtypes.is_floating(em.types[a].dtype)]
        mixable = (all(em.types[a].dtype in (f32, low) for a in floats)
                   and (original[ins.id] in (f32, low) or not dtypes.is_floating(original[ins.id])))
        if not mixable or not floats:
            ins.inputs = tuple(as_dtype(a, original[a]) if a in original and a in floats else a
                               for a in ins.inputs)
            em.retype(ins)
            out.append(ins)
            continue
        policy = precision_of(ins.op, cfg.overrides)
        if policy == "follow":
            has_low = any(em.types[a].dtype == low for a in floats)
            strong_f32 = any(em.types[a].dtype == f32 and not _weak(kind[a]) for a in floats)
            target = low if has_low and not strong_f32 else f32
        else:
            target = low if policy == "low" else f32
        ins.inputs = tuple(as_dtype(a, target) if a in floats else a for a in ins.inputs)
        try:
            em.retype(ins)
        except (ValueError, TypeError, KeyError):  # an op that insists on its dtypes keeps them
            ins.inputs = tuple(as_dtype(a, original[a]) if a in floats else a for a in ins.inputs)
            em.retype(ins)
        if ins.dtype == low:
            counts["low"] += 1
        elif ins.dtype == f32 and floats:
            counts["float32"] += 1
        out.append(ins)
        if ins.id in boundary and ins.dtype != original[ins.id]:
            c = em.instr("cast", [ins.id], dtype=original[ins.id], source=ins.source)
            out.append(c)
            kind[c.id] = c
            finished[ins.id] = c.id
    program.instrs = out
    by_id = {i.id: i for i in out}
    tail = []

    def restore(v):
        want = original.get(v, by_id[v].dtype)
        if by_id[v].dtype == want:
            return v
        if v in finished:
            return finished[v]
        c = em.instr("cast", [v], dtype=want)
        tail.append(c)
        return c.id

    program.outputs = [restore(o) for o in program.outputs]
    program.updates = [(var, restore(v)) for var, v in program.updates]
    program.instrs += tail
    program.report["precision"] = {"dtype": str(low), "low_ops": counts["low"], "float32_ops": counts["float32"],
                                   "casts": counts["casts"] + len(tail) + len(finished)}
    return program


def loss_scaling(program):
    """Dynamic loss scaling inside the step (see the module docstring); needs ``options['loss_scale']``."""
    scaler: Optional[LossScaler] = program.options.get("loss_scale")
    if scaler is None:
        return program
    calls = [c for c in _gradient_calls(program) if c.seeded]
    if not calls:
        return program
    em = Emitter(program)
    by_id = program.by_id()
    f32 = dtypes.float32
    head, body, tail = [], list(program.instrs), []

    def var_instr(var):
        if var.id not in by_id:
            ins = _variable_instr(var)
            by_id[var.id] = ins
            em.note(ins)
            head.append(ins)
            program.variables[var.id] = var
        return var.id

    scale, good = var_instr(scaler.scale), var_instr(scaler.good_steps)
    inv = em.instr("reciprocal", [scale])
    head.append(inv)
    unscaled: Dict[int, int] = {}
    after: Dict[int, list] = {}
    for call in calls:
        seed = by_id[call.seed]
        seed.op, seed.inputs, seed.attrs = "cast", (scale,), {"dtype": seed.dtype}
        for r in call.results:
            if r in unscaled or r not in by_id:
                continue
            rv = by_id[r]
            factor = inv.id if rv.dtype == f32 else _push(after, r, em.instr("cast", [inv.id], dtype=rv.dtype))
            u = _push(after, r, em.instr("mul", [r, factor], source=rv.source))
            unscaled[r] = u
    # redirect the finished gradients' users (those outside the call that built them)
    made = {i.id for lst in after.values() for i in lst}
    for ins in body:
        if ins.id in made:
            continue
        ins.inputs = tuple(unscaled[a] if a in unscaled and not _inside(calls, a, ins.id) else a
                           for a in ins.inputs)
    program.outputs = [unscaled.get(o, o) for o in program.outputs]
    updates = [(var, unscaled.get(v, v)) for var, v in program.updates]
    ordered = []
    for ins in body:
        ordered.append(ins)
        ordered += after.get(ins.id, [])
    # finite: sum(g * 0) is 0 for finite gradients and NaN as soon as one element is not
    total = None
    for u in unscaled.values():
        z = em.constant(0.0, em.types[u].dtype)
        m = em.instr("mul", [u, z.id])
        s = em.instr("sum", [m.id])
        tail += [z, m, s]
        if em.types[s.id].dtype != f32:
            s = em.instr("cast", [s.id], dtype=f32)
            tail.append(s)
        if total is None:
            total = s
        else:
            total = em.instr("add", [total.id, s.id])
            tail.append(total)
    bad = em.instr("isnan", [total.id])
    ok = em.instr("logical_not", [bad.id])
    tail += [bad, ok]
    new_updates = []
    for var, v in updates:
        old = var_instr(var)
        keep = em.instr("where", [ok.id, v, old])
        tail.append(keep)
        new_updates.append((var, keep.id))
    one = em.constant(1.0, f32)
    interval = em.constant(float(scaler.growth_interval), f32)
    grow, back, zero = (em.constant(scaler.growth_factor, f32), em.constant(scaler.backoff_factor, f32),
                        em.constant(0.0, f32))
    g1 = em.instr("add", [good, one.id])
    due = em.instr("greater_equal", [g1.id, interval.id])
    grown = em.instr("mul", [scale, grow.id])
    shrunk = em.instr("mul", [scale, back.id])
    s_ok = em.instr("where", [due.id, grown.id, scale])
    s_new = em.instr("where", [ok.id, s_ok.id, shrunk.id])
    g_ok = em.instr("where", [due.id, zero.id, g1.id])
    g_new = em.instr("where", [ok.id, g_ok.id, zero.id])
    tail += [one, interval, grow, back, zero, g1, due, grown, shrunk, s_ok, s_new, g_ok, g_new]
    new_updates += [(scaler.scale, s_new.id), (scaler.good_steps, g_new.id)]
    program.instrs = head + ordered + tail
    program.updates = new_updates
    program.report["loss_scale"] = {"gradients": len(unscaled), "growth_interval": scaler.growth_interval}
    return program


#: Ops that only move values (views on every backend): they keep their 16-bit dtype.
MOVES_ONLY = frozenset({"reshape", "transpose", "slice", "flip", "broadcast_to", "identity", "stop_gradient"})


def compute_widened(program, narrow=dtypes.LOW_PRECISION, keep=MOVES_ONLY):
    """Store the ``narrow`` dtypes, compute in float32: a backend pass for backends without 16-bit math.

    Every instruction that computes on or produces a ``narrow`` dtype (other than the ops in
    ``keep``, which only move values) computes in float32 instead, between casts: its narrow
    operands are cast up (once per reader), its result cast back down, so the program's values,
    dtypes and results stay those of the graph. The cpu uses it for float16 and bfloat16,
    wgpu for bfloat16 (without ``shader-f16`` its float16 storage is float32 anyway).

    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.core.program import lower
    >>> b = rg.input((3,), "bfloat16", name="b")
    >>> p = compute_widened(lower([b], [rg.exp(b)], [], [((3,), rg.bfloat16)]))
    >>> [(i.op, str(i.dtype)) for i in p.instrs]
    [('input', 'bfloat16'), ('cast', 'float32'), ('exp', 'float32'), ('cast', 'bfloat16')]
    """
    from ..program import Instr
    from ..registry import OPS

    narrow = frozenset(np.dtype(d) for d in narrow)
    f32 = dtypes.float32
    if not any(i.dtype in narrow for i in program.instrs):
        return program
    by_id = program.by_id()
    em = Emitter(program)
    widened: Dict[tuple, tuple] = {}  # (value, reader kind) -> (float32 copy, its place in ``out``)
    out = []

    def wide(v, reader=None):
        # one widening per reader, made right before it: a shared float32 copy would stay alive
        # from the first reader to the last (forward to backward), costing more than the narrow value
        # saves; a widening next to an elementwise reader fuses into it and is never stored. Matmuls
        # within SHARE_WINDOW instructions of a copy share it (the two GEMMs of a linear layer's
        # backward read one gradient): it lives a few steps, and is written once instead of twice
        # a matmul's transposed or reshaped narrow operand is widened at its root and the moves
        # replayed on the float32 copy: the widening then reads contiguous words (a strided one
        # is ~3x slower) and GEMM takes the transposed view as it is; an elementwise reader
        # instead fuses the widening and reads through the view itself
        # Other readers that read a stored operand (norms, convolutions: kinds in _STORED_READERS)
        # share a copy within the window too (a norm's gradient and its recomputed output)
        gemm = reader == "matmul"
        shared = gemm or getattr(OPS.get(reader), "kind", None) in _STORED_READERS
        chain, root = [], by_id[v]
        while gemm and root.op in _RELAYOUT and by_id[root.inputs[0]].dtype in narrow:
            if root.op == "transpose" and any(m.op == "reshape" for m in chain):
                break  # replayed, a reshape of a transposed copy would be one more copy
            chain.append(root)
            root = by_id[root.inputs[0]]
        hit = widened.get((root.id, shared))
        if hit is None or len(out) - hit[1] > (SHARE_WINDOW if shared else 0):
            c = Instr(em.fresh_id(), "cast", (root.id,), {"dtype": f32}, root.shape, f32, root.source)
            out.append(c)
            by_id[c.id] = c
            widened[(root.id, shared)] = hit = (c.id, len(out))
        cur = hit[0]
        for move in reversed(chain):
            m = Instr(em.fresh_id(), move.op, (cur,), dict(move.attrs), move.shape, f32, move.source)
            out.append(m)
            by_id[m.id] = m
            cur = m.id
        return cur

    def sunk(ins):
        # a float cast of a transposed or reshaped value casts the contiguous root and replays the
        # moves on the result: a fused kernel reads its operands contiguous, so the cast of a view
        # (the transposed weight of a linear layer) would first be copied whole
        chain, root = [], by_id[ins.inputs[0]]
        while root.op in _RELAYOUT:
            if root.op == "transpose" and any(m.op == "reshape" for m in chain):
                break  # replayed, a reshape of a transposed value would be a copy
            chain.append(root)
            root = by_id[root.inputs[0]]
        if not chain:
            return [ins]
        made = [Instr(em.fresh_id(), "cast", (root.id,), dict(ins.attrs), root.shape, ins.dtype, ins.source)]
        for move in chain[::-1]:
            made.append(Instr(em.fresh_id(), move.op, (made[-1].id,), dict(move.attrs), move.shape, ins.dtype,
                              move.source))
        last = made[-1]
        made[-1] = Instr(ins.id, last.op, last.inputs, last.attrs, last.shape, ins.dtype, ins.source, ins.name)
        for m in made:
            by_id[m.id] = m
        return made

    # the graph's own float32 casts of a narrow value (autocast's, one per value after cse) are
    # widened per reader too: one shared copy would live from a norm to its gradient
    roots, graph_casts = set(program.roots()), {}
    for ins in program.instrs:
        ins.inputs = tuple(wide(graph_casts[a], ins.op) if a in graph_casts else a for a in ins.inputs)
        if (ins.op == "cast" and ins.dtype == f32 and by_id[ins.inputs[0]].dtype in narrow
                and ins.id not in roots):
            graph_casts[ins.id] = ins.inputs[0]
            continue
        if ins.op == "cast" and (ins.dtype in narrow) != (by_id[ins.inputs[0]].dtype in narrow):
            src = by_id[ins.inputs[0]].dtype
            if dtypes.is_floating(src) and dtypes.is_floating(ins.dtype):
                out.extend(sunk(ins))
                continue
            if not dtypes.is_floating(src):  # int/bool -> narrow: through float32 (a float conversion)
                c = Instr(em.fresh_id(), "cast", ins.inputs, {"dtype": f32}, ins.shape, f32, ins.source)
                out.append(c)
                by_id[c.id] = c
                ins.inputs = (c.id,)
            elif not dtypes.is_floating(ins.dtype):  # narrow -> int/bool: from the widened value
                ins.inputs = (wide(ins.inputs[0]),)
        touches = ins.dtype in narrow or any(by_id[a].dtype in narrow for a in ins.inputs)
        if not touches or ins.op in keep or ins.op in ("cast",) + _SOURCES:
            out.append(ins)
            continue
        inputs = tuple(wide(a, ins.op) if by_id[a].dtype in narrow else a for a in ins.inputs)
        if ins.dtype not in narrow:
            ins.inputs = inputs
            out.append(ins)
            continue
        attrs = dict(ins.attrs)
        if attrs.get("dtype") is not None and np.dtype(attrs["dtype"]) in narrow:
            attrs["dtype"] = f32  # e.g. random_normal(dtype=float16)
        inner = Instr(em.fresh_id(), ins.op, inputs, attrs, ins.shape, f32, ins.source, ins.name)
        out.append(inner)
        out.append(Instr(ins.id, "cast", (inner.id,), {"dtype": ins.dtype}, ins.shape, ins.dtype, ins.source,
                         ins.name))
    program.instrs = out
    return program


def _push(after, key, ins):
    after.setdefault(key, []).append(ins)
    return ins.id


def _inside(calls, value, user) -> bool:
    return any(value in c.results and c.built(user) for c in calls)


def _variable_instr(var):
    from ..program import Instr

    return Instr(var.id, "variable", (), {}, tuple(var.shape), var.dtype, var.source, var.name)
