"""The conformance kit: check ops and backends against float64 references and finite differences.

Backend authors and plugin authors use the same functions the project's own tests use:

- :func:`numerical_grad` — central finite differences of a numpy function.
- :func:`check_op` — one op on one backend: forward against the float64 reference,
  and the gradient rule (compiled on the backend) against finite differences.
- :func:`check_all_ops` — every registered op's examples on a backend; returns failures.

Example:
    >>> from rustyasg.core.testing import check_op
    >>> check_op("tanh", backend="reference")   # raises AssertionError on a mismatch
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import dtypes
from .registry import OPS, Example, InputSpec

TOLERANCES = {  # (rtol, atol) of a backend's forward result against the float64 reference
    np.dtype(np.float64): (1e-7, 1e-9),
    np.dtype(np.float32): (2e-4, 2e-5),
    np.dtype(np.float16): (2e-2, 2e-3),
}
GRAD_TOLERANCES = {np.dtype(np.float64): (1e-5, 1e-7), np.dtype(np.float32): (2e-3, 2e-4),
                   np.dtype(np.float16): (5e-2, 5e-2)}


def sample_input(spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    """Draw a random operand following ``spec`` (float64 for floating specs)."""
    if spec.generator is not None:
        return np.asarray(spec.generator(rng))
    dt = dtypes.as_dtype(spec.dtype)
    if dt == dtypes.bool_:
        return rng.random(spec.shape) < 0.5
    if dtypes.is_integer(dt):
        return rng.integers(int(spec.low), int(spec.high), size=spec.shape).astype(dt)
    x = rng.uniform(spec.low, spec.high, size=spec.shape)
    for point in spec.away_from:
        near = np.abs(x - point) < spec.margin
        x = np.where(near, point + np.where(x >= point, spec.margin, -spec.margin) * 2, x)
    return x.astype(np.float64)


def numerical_grad(f: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], index: int,
                   cotangent: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``sum(f(*arrays) * cotangent)`` w.r.t. ``arrays[index]``.

    >>> g = numerical_grad(np.sin, [np.array([0.3])], 0, np.ones(1))
    >>> bool(abs(g[0] - np.cos(0.3)) < 1e-8)
    True
    """
    arrays = [np.array(a, dtype=np.float64 if a.dtype.kind == "f" else a.dtype) for a in arrays]
    x = arrays[index]
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        plus = np.sum(np.asarray(f(*arrays), np.float64) * cotangent)
        flat[k] = old - eps
        minus = np.sum(np.asarray(f(*arrays), np.float64) * cotangent)
        flat[k] = old
        gflat[k] = (plus - minus) / (2 * eps)
    return grad


def _build(op: str, example: Example, arrays, dtype):
    from . import graph
    from .graph import apply

    inputs = []
    for spec, arr in zip(example.inputs, arrays):
        inputs.append(graph.input(arr.shape, _operand_dtype(spec, arr, dtype), name=f"in{len(inputs)}"))
    out = apply(op, *inputs, **dict(example.attrs))
    return inputs, out


def _operand_dtype(spec, arr, dtype):
    """The dtype an operand is fed in: ``dtype`` for floats (never narrower than ``spec.at_least``)."""
    if arr.dtype.kind != "f":
        return arr.dtype
    return dtypes.promote_types(dtype, spec.at_least) if spec.at_least else dtype


def _cast_inputs(arrays, dtype, specs):
    return [a.astype(_operand_dtype(s, a, dtype)) for s, a in zip(specs, arrays)]


def _assert_close(what, actual, expected, rtol, atol):
    actual = np.asarray(actual, np.float64) if np.asarray(actual).dtype.kind in "fc" else np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != expected {expected.shape}")
    if expected.dtype.kind in "biu":
        if not np.array_equal(actual, expected):
            raise AssertionError(f"{what}: values differ\n got {actual}\n expected {expected}")
        return
    if not np.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True):
        err = np.max(np.abs(actual - expected) / (atol + rtol * np.abs(expected)))
        raise AssertionError(f"{what}: mismatch ({err:.3g}x tolerance, rtol={rtol}, atol={atol})\n"
                             f" got {actual.reshape(-1)[:8]}\n expected {expected.reshape(-1)[:8]}")


def check_op(op: str, backend="reference", dtype="float32", seed: int = 0, examples: Optional[Sequence[Example]] = None,
             check_grad: bool = True) -> None:
    """Check ``op`` on ``backend`` for each of its conformance examples; raise AssertionError on mismatch.

    Float operands are fed in ``dtype``; the forward result is compared with the float64
    reference, and gradients (of ``sum(out * random cotangent)``) with central finite
    differences of the reference in float64. Tolerances follow the precision the backend
    computes in (:meth:`~rustyasg.core.executor.Backend.compute_dtype`: wgpu computes float64
    in float32), which is what it promises.
    """
    from .backends import get_backend
    from .function import Function
    from .autograd import grad as graph_grad
    from .graph import input as make_input

    opdef = OPS[op]
    dtype = dtypes.as_dtype(dtype)
    precision = get_backend(backend).compute_dtype if isinstance(backend, str) else backend.compute_dtype
    rng = np.random.default_rng(seed)
    for n, example in enumerate(examples if examples is not None else opdef.examples):
        label = f"{op} example {n} on {getattr(backend, 'name', backend)} ({dtype})"
        arrays = [sample_input(s, rng) for s in example.inputs]
        attrs = opdef.check_attrs(dict(example.attrs))
        expected = opdef.reference(*arrays, **attrs)
        inputs, out = _build(op, example, arrays, dtype)
        fwd = Function(inputs, out, backend=backend)
        got = fwd(*_cast_inputs(arrays, dtype, example.inputs))
        rtol, atol = TOLERANCES.get(precision(out.dtype if dtypes.is_floating(out.dtype) else dtype), (0, 0))
        rtol, atol = max(rtol, example.rtol if dtype == np.float64 else 0), max(atol, example.atol if dtype == np.float64 else 0)
        _assert_close(f"{label}: forward", got, expected, rtol, atol)
        if not (check_grad and example.check_grad and opdef.grad is not None and dtypes.is_floating(out.dtype)):
            continue
        diff = [i for i, (s, a) in enumerate(zip(example.inputs, arrays)) if s.differentiable and a.dtype.kind == "f"]
        if not diff:
            continue
        cot = rng.standard_normal(np.shape(expected))
        cot_in = make_input(cot.shape, out.dtype, name="cotangent")
        grads = graph_grad(out, [inputs[i] for i in diff], grad_y=cot_in)
        gfn = Function(inputs + [cot_in], grads, backend=backend)
        got_grads = gfn(*_cast_inputs(arrays, dtype, example.inputs), cot.astype(out.dtype))
        ref = lambda *xs: opdef.reference(*xs, **attrs)  # noqa: E731
        grtol, gatol = GRAD_TOLERANCES[precision(dtype)]
        for i, g in zip(diff, got_grads):
            num = numerical_grad(ref, arrays, i, cot)
            _assert_close(f"{label}: gradient w.r.t. input {i}", g, num, grtol, gatol * max(1.0, np.abs(num).max()))


def check_all_ops(backend="reference", dtype="float32", ops: Optional[Sequence[str]] = None,
                  skip: Sequence[str] = ()) -> Dict[str, str]:
    """Run :func:`check_op` for every registered op with examples; return ``{op: failure}``."""
    failures: Dict[str, str] = {}
    for name in sorted(ops if ops is not None else OPS):
        if name in skip or not OPS[name].examples:
            continue
        try:
            check_op(name, backend=backend, dtype=dtype)
        except Exception as exc:  # collect every failure, not just the first
            failures[name] = f"{type(exc).__name__}: {exc}"
    return failures


def ops_without_examples() -> List[str]:
    """Registered ops that the kit cannot check (leaves excluded)."""
    return sorted(n for n, d in OPS.items() if not d.examples and d.kind != "source")
