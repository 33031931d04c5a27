"""Compiled functions: the whole step, compiled once per input signature.

:func:`function` takes explicit ``inputs``, ``outputs`` and ``updates`` (Theano
style); :func:`jit` traces a Python function of symbolic inputs (JAX style) and
builds the same object. Calling it with numpy arrays:

1. binds symbolic dimensions from the input shapes, lowers the graph to a static
   :class:`~rustyasg.core.program.Program` and runs the passes,
2. compiles it with the backend, caching the executable by the signature
   ``((shape, dtype), ...)`` so a repeated call costs only execution,
3. runs it: variables stay on the backend and are updated in place.

Values that change every step (learning rate, step count) are inputs or
variables, never constants, so a schedule does not recompile anything.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None,), "float64", name="x")
    >>> w = rg.variable(np.array(2.0), name="w")
    >>> step = rg.function([x], (x * w).sum(), updates={w: w + 1.0}, backend="reference")
    >>> float(step(np.ones(3))), float(step(np.ones(3)))
    (6.0, 9.0)
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import observe
from .graph import Tensor, Variable, as_tensor, input as make_input, toposort
from .passes import run_passes
from .program import lower


class Function:
    """A compiled function; see :func:`function`."""

    def __init__(self, inputs: Sequence[Tensor], outputs, updates=None, backend=None,
                 disabled_passes: Sequence[str] = (), name: Optional[str] = None, precision=None,
                 memory_budget: Optional[int] = None, memory_solver: str = "milp"):
        from .backends import get_backend
        from .rng import collect_rng_updates

        self.inputs = list(inputs)
        for t in self.inputs:
            if not isinstance(t, Tensor) or t.op != "input":
                raise TypeError(f"function inputs must be rustyasg.input(...) tensors, got {t!r}")
        self._single = isinstance(outputs, Tensor)
        self.outputs = [outputs] if self._single else [as_tensor(o) for o in (outputs or [])]
        pairs = list(updates.items()) if isinstance(updates, Mapping) else list(updates or [])
        self.updates = []
        for var, value in pairs:
            if not isinstance(var, Variable):
                raise TypeError(f"updates must assign to variables, got {var!r}")
            value = as_tensor(value, var)
            if value.dtype != var.dtype:
                value = value.astype(var.dtype)
            self.updates.append((var, value))
        self.updates += collect_rng_updates(self.outputs + [v for _, v in self.updates],
                                            {id(v) for v, _ in self.updates})
        self.backend = get_backend(backend)
        self._whole_step_options(precision, memory_budget, memory_solver)
        self.disabled_passes = tuple(disabled_passes)
        self.name = name
        self._cache: Dict[Tuple, Any] = {}
        self._pending: Dict[Tuple, concurrent.futures.Future] = {}  # background compiles (compile(background=True))
        self._lock = threading.Lock()
        # last_compile_s: lowering + passes + backend compile + the first run of the new signature; for a
        # signature compiled in the background, what its first call waited for it (and background_compile_s
        # the whole compile).
        self.stats = {"compiles": 0, "last_compile_s": 0.0, "background_compile_s": 0.0}

    # -- whole-step options: mixed precision, loss scaling, rematerialization ---------------------
    def _whole_step_options(self, precision, memory_budget, memory_solver) -> None:
        from .compile.precision import LossScaler, Precision

        self.precision = Precision.of(precision)
        self.loss_scaler = None
        if self.precision is not None and self.precision.loss_scale is not None:
            ls = self.precision.loss_scale
            self.loss_scaler = ls if isinstance(ls, LossScaler) else LossScaler()
        if self.precision is not None:
            self.backend.check_precision(self.precision)
        if memory_budget is not None and (not isinstance(memory_budget, (int, np.integer)) or memory_budget <= 0):
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
        if memory_solver not in ("milp", "greedy"):
            raise ValueError(f"memory_solver={memory_solver!r}: expected 'milp' (exact, scipy) or 'greedy'")
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        self.memory_solver = memory_solver

    def _lower(self, arrays):
        """Lower for these arrays and attach what the whole-step passes need (see ``Program.options``)."""
        from .checkpoint import regions_in

        program = lower(self.inputs, self.outputs, self.updates, [(a.shape, a.dtype) for a in arrays])
        if self.precision is not None:
            program.options["precision"] = self.precision
            if self.loss_scaler is not None:
                program.options["loss_scale"] = self.loss_scaler
        regions = regions_in({i.id for i in program.instrs})
        if regions or self.memory_budget is not None:
            program.options["remat"] = {
                "recompute": frozenset(i for r in regions for i in r.members - r.saved),
                "budget": self.memory_budget, "solver": self.memory_solver}
        return program

    def _fit_budget(self, arrays, exe):
        """The backend's planned peak is the measure: tighten the model's budget until the step fits it.

        The rematerialization pass chooses with a model of the step's memory (every value its
        own buffer); the backend's buffer planner (fusion, views, scratch) decides the real
        peak. When that exceeds ``memory_budget`` the step is recompiled with the model's
        budget lowered by the overshoot (at most twice more).
        """
        import warnings

        from .compile.memory import planned_peak_bytes
        from .errors import RustyASGError

        budget, target = self.memory_budget, self.memory_budget
        for attempt in range(3):
            report = exe.program.report.setdefault("remat", {})
            try:
                real = planned_peak_bytes(exe)
            except RustyASGError:  # a backend without a buffer plan: the model's answer stands
                real = None
            report["memory_budget"] = budget
            if real is not None:
                report["planned_peak"], report["fits"] = real, real <= budget
            if real is None or real <= budget or attempt == 2:
                break
            target = int(target * budget / real)
            program = self._lower(arrays)
            program.options["remat"]["budget"] = target
            exe = self.backend.compile(run_passes(program, self.backend.passes_for(), self.disabled_passes))
        report = exe.program.report["remat"]
        if not report.get("fits", True):
            peak = report.get("planned_peak", report.get("peak_after"))
            warnings.warn(f"{self.name or 'function'}: memory_budget={budget} bytes cannot be met by "
                          f"recomputation alone: the lowest planned peak found is {peak} bytes; use a "
                          f"smaller batch or a larger budget", RuntimeWarning, stacklevel=4)
        return exe

    @property
    def loss_scale(self) -> Optional[float]:
        """The current dynamic loss scale (float16 mixed precision), ``None`` without loss scaling."""
        return None if self.loss_scaler is None else float(self.loss_scaler.scale.value())

    def report(self, *args) -> Dict[str, Any]:
        """What the whole-step passes chose for these arguments' signature (precision, loss scale, remat)."""
        return dict(self.compile(*args).program.report)

    # -- compilation -------------------------------------------------------------------------
    def signature_of(self, args) -> Tuple:
        return tuple((a.shape, a.dtype.str) for a in args)

    def lower(self, *args):
        """The optimised program for these example arguments (for inspection)."""
        program = self._lower(self._convert(args))
        return run_passes(program, self.backend.passes_for(), self.disabled_passes)

    def compile(self, *args, background: bool = False):
        """Compile (or fetch from the cache) the executable for these arguments.

        Only the arguments' shapes and dtypes matter: ``np.zeros`` of a batch's shape will do.
        With ``background=True`` the compile runs in a thread and this returns at once, with a
        :class:`concurrent.futures.Future` of the executable: the compile overlaps what the
        program does next (loading its data, say), and the first call with these shapes waits
        only for what is left (an error of the compile is raised there, and by the future).

        >>> import numpy as np, rustyasg.core as rg
        >>> x = rg.input((None, 3), "float64", name="x")
        >>> f = rg.function([x], (x * 2.0).sum(), backend="reference")
        >>> pending = f.compile(np.zeros((4, 3)), background=True)
        >>> float(f(np.ones((4, 3)))), pending.done(), f.stats["compiles"]
        (24.0, True, 1)
        """
        arrays = self._convert(args)
        if not background:
            return self._executable(arrays)
        key = self.signature_of(arrays)
        with self._lock:
            future = self._pending.get(key)
            if future is None:
                future = concurrent.futures.Future()
                if key in self._cache:
                    future.set_result(self._cache[key])
                    return future
                self._pending[key] = future
                threading.Thread(target=self._build_into, args=(future, arrays), daemon=True,
                                 name=f"rustyasg-compile-{self.name or 'function'}").start()
        return future

    def _build_into(self, future: concurrent.futures.Future, arrays) -> None:
        t0 = time.perf_counter()
        try:
            exe = self._build(arrays)
        except BaseException as exc:  # noqa: BLE001 - raised by the first call that needs it
            future.set_exception(exc)
            return
        self.stats["background_compile_s"] = time.perf_counter() - t0
        future.set_result(exe)

    def _executable(self, arrays):
        key = self.signature_of(arrays)
        exe = self._cache.get(key)
        if exe is None:
            with self._lock:
                future = self._pending.pop(key, None)
            t0 = time.perf_counter()
            exe = future.result() if future is not None else self._build(arrays)
            self._cache[key] = exe
            self.stats["compiles"] += 1
            self.stats["last_compile_s"] = time.perf_counter() - t0
        elif observe.ACTIVE is not None:
            observe.compile_event("cache_hit", 0.0, function=self.name, signature=key)
        return exe

    def _build(self, arrays):
        """Lower, optimise and compile for these arrays' signature (the executable is not cached here)."""
        observe.compile_event("cache_miss", 0.0, function=self.name, signature=self.signature_of(arrays))
        t0 = time.perf_counter()
        program = self._lower(arrays)
        observe.compile_event("lower", time.perf_counter() - t0, function=self.name)
        program = run_passes(program, self.backend.passes_for(), self.disabled_passes)
        t2 = time.perf_counter()
        exe = self.backend.compile(program)
        if self.memory_budget is not None:
            exe = self._fit_budget(arrays, exe)
        observe.compile_event("backend_compile", time.perf_counter() - t2, function=self.name)
        return exe

    def _convert(self, args):
        if len(args) != len(self.inputs):
            names = ", ".join(t.name or "?" for t in self.inputs)
            raise TypeError(f"expected {len(self.inputs)} argument(s) ({names}), got {len(args)}")
        out = []
        for t, a in zip(self.inputs, args):
            arr = np.asarray(a)
            if arr.dtype != t.dtype:
                if (arr.dtype.kind == "f" and t.dtype.kind in "iub") or not np.can_cast(arr.dtype, t.dtype, "same_kind"):
                    raise TypeError(f"argument {t.name!r}: expected {t.dtype}, got {arr.dtype} "
                                    f"(cast it explicitly)")
                arr = arr.astype(t.dtype)
            out.append(np.asarray(arr, order="C"))
        return out

    # -- running -------------------------------------------------------------------------------
    def __call__(self, *args, fetch: bool = True):
        """Run once. Returns numpy arrays (or device handles with ``fetch=False``)."""
        arrays = self._convert(args)
        compiles = self.stats["compiles"]
        exe = self._executable(arrays)
        self.backend.ensure_resident(exe.program.variables.values())
        if observe.ACTIVE is not None:  # a profiler or debugger watches this run (see observe.py)
            handles = observe.ACTIVE.run(self, exe, arrays, first=self.stats["compiles"] != compiles)
        elif self.stats["compiles"] != compiles:
            # Backends may JIT kernels lazily on the first run (numba does): count that run as compile time.
            t0 = time.perf_counter()
            handles = exe.run(arrays)
            self.backend.synchronize()
            self.stats["last_compile_s"] += time.perf_counter() - t0
        else:
            handles = exe.run(arrays)
        if fetch:
            handles = [self.backend.to_host(h) for h in handles]
        if self._single:
            return handles[0]
        return handles

    def save(self, path) -> None:
        """Write this function's optimised graph and current weights to one file (see :mod:`.saved_program`).

        ``rustyasg.core.load_program(path)`` runs it again, on any installed backend, without
        the Python code that built it. The write is atomic.
        """
        from .saved_program import save_program

        save_program(self, path)

    def watch(self, tensors: Sequence[Tensor]) -> "Function":
        """This step, also returning the values of intermediate ``tensors``: ``outs, values = step.watch([h])(x)``.

        The watched variant is compiled once per signature (a second ``watch`` of the same
        tensors reuses it) and applies the same updates, so it can stand in for the step.

        >>> import numpy as np, rustyasg.core as rg
        >>> x = rg.input((2,), "float64", name="x")
        >>> h = x * 3.0
        >>> f = rg.function([x], h.sum(), backend="reference")
        >>> out, values = f.watch([h])(np.ones(2))
        >>> float(out), values[h].tolist()
        (6.0, [3.0, 3.0])
        """
        from .watch import watched

        return watched(self, tensors)

    def memory_report(self, *args) -> Dict[str, Any]:
        """The backend's planned memory for these arguments' signature."""
        return self.compile(*args).memory_report()


def function(inputs: Sequence[Tensor], outputs, updates=None, backend=None, **kw) -> Function:
    """Compile ``outputs`` (a tensor or a list) of ``inputs``, applying ``updates`` to variables.

    ``updates`` maps each :class:`Variable` to its new value (a dict or a list of pairs);
    all new values are computed from the old ones and written together at the end of the
    call. ``backend`` is a name or a backend object; by default ``RUSTYASG_BACKEND`` or ``cpu``.

    Whole-step options: ``precision="bf16"`` or ``"f16"`` (or a :class:`~rustyasg.core.Precision`)
    runs the step in mixed precision with float32 master weights, float16 with dynamic loss
    scaling (:mod:`rustyasg.core.compile.precision`); ``memory_budget=bytes`` recomputes
    activations in the backward pass so the planned peak fits (``memory_solver``: ``"milp"``
    or ``"greedy"``; :mod:`rustyasg.core.compile.remat`). ``f.report(*args)`` says what they chose.
    """
    return Function(inputs, outputs, updates, backend, **kw)


def jit(fn: Optional[Callable] = None, *, backend=None, static_argnums: Sequence[int] = ()):
    """Trace ``fn`` on symbolic inputs shaped like the first call's arguments (JAX-style).

    The function returns a tensor, a list of tensors, or ``(outputs, updates)``. The
    batch dimension stays symbolic, so later calls with another batch size reuse the
    traced graph and only compile for the new signature.

    >>> import numpy as np, rustyasg.core as rg
    >>> @rg.jit(backend="reference")
    ... def f(x):
    ...     return (x * x).sum()
    >>> float(f(np.arange(3.0)))
    5.0
    """
    def wrap(f):
        compiled: Dict[Tuple, Function] = {}

        def call(*args):
            statics = tuple(args[i] for i in static_argnums)
            dyn = [np.asarray(a) for i, a in enumerate(args) if i not in static_argnums]
            key = (statics, tuple((a.ndim, a.dtype.str) + tuple(a.shape[1:]) for a in dyn))
            func = compiled.get(key)
            if func is None:
                sym = [make_input(("batch",) + a.shape[1:] if a.ndim else (), a.dtype, name=f"arg{i}")
                       for i, a in enumerate(dyn)]
                it = iter(sym)
                full = [args[i] if i in static_argnums else next(it) for i in range(len(args))]
                result = f(*full)
                updates = None
                if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping):
                    result, updates = result
                func = compiled[key] = Function(sym, result, updates, backend)
            return func(*dyn)

        call.__wrapped__ = f
        call.__doc__ = f.__doc__
        return call

    return wrap(fn) if fn is not None else wrap


def evaluate(outputs: Union[Tensor, Sequence[Tensor]], feed: Optional[Mapping[Tensor, Any]] = None,
             backend="reference"):
    """Evaluate tensors once (debugging aid): ``feed`` maps input tensors to values.

    >>> import rustyasg.core as rg
    >>> x = rg.input((2,), "float64", name="x")
    >>> rg.evaluate(x * 3, {x: [1.0, 2.0]})
    array([3., 6.])
    """
    feed = dict(feed or {})
    single = isinstance(outputs, Tensor)
    outs = [outputs] if single else list(outputs)
    needed = [n for n in toposort(outs) if n.op == "input"]
    missing = [n.name for n in needed if n not in feed]
    if missing:
        raise ValueError(f"evaluate: no value fed for input(s) {missing}")
    values = [np.asarray(feed[n], dtype=n.dtype) for n in needed]
    fn = Function(needed, outs, None, backend)
    result = fn(*values)
    return result[0] if single else result


