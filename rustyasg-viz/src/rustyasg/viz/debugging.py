"""Debugging values: ``rg.inspect``, ``rg.debug_nans()``, ``rg.gradcheck`` and value statistics.

- :func:`inspect` returns intermediate values of one run of a compiled step through
  :meth:`~rustyasg.core.Function.watch` (compiled once per watched set, then cached).
- :func:`debug_nans` (like ``jax_debug_nans`` / torch anomaly mode): inside the block, every
  compiled call whose outputs or updated variables hold NaN/Inf is re-run with every
  intermediate value as an output; the first op (in graph order) that produced a
  non-finite value from finite inputs is named, with its ``file:line`` and module path, in
  a :class:`NonFiniteError`. Variables are restored to their values before the failing call.
- :func:`gradcheck` compares ``rg.grad`` with central finite differences in float64 (the
  conformance kit's numerics), like ``torch.autograd.gradcheck``.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((3,), "float64", name="x")
    >>> gradcheck(lambda x: (rg.tanh(x) * x).sum(), [np.array([0.1, -0.4, 2.0])])
    True
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from rustyasg.core import observe
from rustyasg.core.errors import RustyASGError
from rustyasg.core.graph import Tensor, toposort

LEAVES = ("input", "variable", "constant")


class NonFiniteError(RustyASGError, FloatingPointError):
    """A compiled call produced NaN or Inf; the message names the first op that did."""

    def __init__(self, message: str, node: Optional[Tensor] = None):
        super().__init__(message)
        self.node = node


def inspect(tensors, step, *args):
    """Values of ``tensors`` (one tensor or a list) in one run of ``step(*args)``.

    The run is a real step (its updates are applied). Returns an array, or a list of arrays.
    """
    single = isinstance(tensors, Tensor)
    wanted = [tensors] if single else list(tensors)
    _, values = step.watch(wanted)(*args)
    out = [np.asarray(step.backend.to_host(values[t])) for t in wanted]
    return out[0] if single else out


def _float_nodes(function) -> List[Tensor]:
    roots = list(function.outputs) + [v for _, v in function.updates]
    return [t for t in toposort(roots) if t.op not in LEAVES and t.dtype.kind == "f"]


def first_nonfinite(function, args) -> Optional[Tensor]:
    """The first node (graph order) with a non-finite value whose float inputs are all finite.

    Runs ``function``'s graph once with every intermediate as an output and no updates.
    """
    from rustyasg.core.function import Function

    nodes = _float_nodes(function)
    if not nodes:
        return None
    probe = Function(function.inputs, nodes, None, function.backend, function.disabled_passes,
                     name=f"{function.name or 'function'}.debug_nans")
    values = probe(*args)
    bad = {t.id for t, v in zip(nodes, values) if not np.all(np.isfinite(np.asarray(v)))}
    for t in nodes:
        if t.id in bad and not any(i.id in bad for i in t.inputs):
            return t
    return None


def describe_node(t: Tensor) -> str:
    path = t.scope.path if t.scope is not None and t.scope.path else "(top level)"
    grad = f", in the gradient of %{t.scope.grad_of}" if t.scope is not None and t.scope.grad_of is not None else ""
    ins = ", ".join(i.describe() for i in t.inputs)
    return f"op {t.op!r} (%{t.id}, {t.describe()} from {ins}) at {t.source or '?'}, module {path}{grad}"


class _NanGuard(observe.Observer):
    def run(self, function, executable, arrays, first: bool = False):
        backend = function.backend
        # Read the resident copies directly: Variable.value() would take ownership back to the host
        # while the executable keeps writing the device copy.
        state = {v: backend.read_variable(v) for v, _ in function.updates}
        handles = executable.run(arrays)
        backend.synchronize()
        outs = [np.asarray(backend.to_host(h)) for h in handles]
        bad_out = any(o.dtype.kind == "f" and not np.all(np.isfinite(o)) for o in outs)
        bad_var = [v for v, _ in function.updates
                   if v.dtype.kind == "f" and not np.all(np.isfinite(backend.read_variable(v)))]
        if not (bad_out or bad_var):
            return handles
        for var, value in state.items():  # leave the state as it was before the failing call
            var.assign(value)
        with observe.observing(observe.Observer()):
            culprit = first_nonfinite(function, arrays)
        what = "an output" if bad_out else f"the update of {bad_var[0].name!r}"
        if culprit is None:
            raise NonFiniteError(f"debug_nans: {what} of {function.name or 'a compiled function'} is NaN/Inf, "
                                 f"but no single op produced it from finite inputs (non-finite inputs or variables?)")
        raise NonFiniteError(f"debug_nans: first non-finite value produced by {describe_node(culprit)}", culprit)


@contextlib.contextmanager
def debug_nans():
    """Raise :class:`NonFiniteError` naming the first op that produces NaN/Inf in a compiled call."""
    with observe.observing(_NanGuard()) as guard:
        yield guard


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[np.ndarray], eps: float = 1e-6, rtol: float = 1e-5,
              atol: float = 1e-7, backend="reference", raise_exception: bool = True) -> bool:
    """Check ``rg.grad`` of ``fn`` (symbolic inputs -> tensor) against finite differences in float64.

    A non-scalar output is reduced with a fixed random cotangent. Returns True, or raises
    ``AssertionError`` naming the input and the worst element (False with ``raise_exception=False``).
    """
    import rustyasg.core as rg
    from rustyasg.core.testing import numerical_grad

    arrays = [np.asarray(a, dtype=np.float64) for a in inputs]
    sym = [rg.input(a.shape, "float64", name=f"in{i}") for i, a in enumerate(arrays)]
    out = fn(*sym)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a tensor, got {type(out).__name__}")
    cot = np.random.default_rng(0).standard_normal(tuple(int(d) for d in out.shape)) if out.shape else np.ones(())
    cot_in = rg.input(cot.shape, "float64", name="cotangent")
    grads = rg.grad(out, sym, grad_y=cot_in)
    analytic = rg.function(sym + [cot_in], grads, backend=backend)(*arrays, cot)
    forward = rg.function(sym, out, backend=backend)
    for i, g in enumerate(analytic):
        num = numerical_grad(lambda *xs: np.asarray(forward(*xs), np.float64), arrays, i, cot, eps)
        g = np.asarray(g, np.float64)
        if not np.allclose(g, num, rtol=rtol, atol=atol):
            k = int(np.argmax(np.abs(g - num)))
            msg = (f"gradcheck: gradient w.r.t. input {i} differs from finite differences: element {k}: "
                   f"analytic {g.reshape(-1)[k]!r}, numerical {num.reshape(-1)[k]!r} (rtol={rtol}, atol={atol})")
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True


def value_stats(function, args, graphs) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Overlays of value statistics from one run without updates: ``mean``, ``max_abs``,
    ``nonfinite`` (NaN + Inf count) and ``first_nonfinite`` per graph."""
    from rustyasg.core.function import Function

    nodes = _float_nodes(function)
    probe = Function(function.inputs, nodes, None, function.backend, function.disabled_passes)
    values = {str(t.id): np.asarray(v, np.float64) for t, v in zip(nodes, probe(*args))}
    first = first_nonfinite(function, args) if any(not np.all(np.isfinite(v)) for v in values.values()) else None
    out: Dict[str, Dict[str, Dict[str, float]]] = {"mean": {}, "max_abs": {}, "nonfinite": {}, "first_nonfinite": {}}
    for gid, g in graphs.items():
        for n in g.nodes:
            v = values.get(n.id)
            if v is None or v.size == 0:
                continue
            finite = v[np.isfinite(v)]
            out["mean"].setdefault(gid, {})[n.id] = float(finite.mean()) if finite.size else 0.0
            out["max_abs"].setdefault(gid, {})[n.id] = float(np.abs(finite).max()) if finite.size else 0.0
            bad = float(v.size - finite.size)
            if bad:
                out["nonfinite"].setdefault(gid, {})[n.id] = bad
            if first is not None and n.id == str(first.id):
                out["first_nonfinite"].setdefault(gid, {})[n.id] = 1.0
    return out
