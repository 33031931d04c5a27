"""Small fused groups as numpy calls, where the compile they save outweighs the calls they cost.

Every distinct fused group is one numba kernel, and on a cold start each costs 0.1-0.3 s of
compile (``benchmarks/cpu/NOTES.md``). Around the large kernels of a step, a few groups work on a
handful of values: a classifier's loss and its gradient on ``(batch, classes)``, a batch norm's
running statistics, an optimizer's per-parameter bias corrections on 0-d values. Run one member at
a time through numpy's ufuncs, such a group costs about a microsecond per member on every step,
and no compile at all.

:func:`numpy_groups` splits those groups into single instructions, each of which then takes the
numpy path it takes when it runs alone (``fused.build_kernel``), under two conditions:

- every instance of the group's kernel is small (no operand or result above
  :data:`~.kernels.protocol.SMALL_ALONE` elements) and every member has a numpy form: a kernel
  that also runs elsewhere on a large array is compiled anyway, and splitting would only add calls;
- the calls added stay within :data:`STEP_SHARE` of the step's estimated time
  (:func:`estimated_step_seconds`), cheapest kernels first. A step made only of small work (an MLP
  of a few thousand values, whose whole step takes 20 us) keeps every kernel.

The choice depends only on the program, so a step always runs the same code: the same results on
every run, warm caches or cold.

Example (a scalar schedule next to a GEMM of 2048 x 2048 values, then on its own):
    >>> import numpy as np, rustyasg.core as rg
    >>> x, t = rg.input((2048, 2048), name="x"), rg.input((), name="t")
    >>> w = rg.constant(np.full((2048, 2048), 0.01, np.float32))
    >>> scale = rg.sqrt(1.0 - rg.exp(t * -0.1)) * 2.0 + 1.0
    >>> f = rg.function([x, t], [rg.tanh(x @ w), scale], backend="cpu")
    >>> def kernels(fn, *args):
    ...     return [line.split("(")[0] for line in fn.compile(*args).describe().splitlines()]
    >>> kernels(f, np.ones((2048, 2048), np.float32), np.float32(3.0))  # doctest: +NORMALIZE_WHITESPACE
    ['blas.matmul', 'numba.tanh', 'numpy.multiply', 'numpy.exp', 'numpy.subtract', 'numpy.sqrt',
     'numpy.multiply', 'numpy.add']
    >>> kernels(rg.function([t], scale, backend="cpu"), np.float32(3.0))
    ['fused[mul,exp,sub,sqrt,mul,add]']
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

from rustyasg.core.compile.plan import Plan, Unit

from .codegen import generate
from .fused import runs_on_numpy
from .kernels.protocol import SMALL_ALONE

#: What one member costs as its own numpy call inside a step. Alone, a ufunc on a 0-d or
#: 128-element operand with ``out=`` takes 0.5-0.7 us and a small reduce 0.9 us; inside whole
#: steps, 62 more calls made W2 0.08-0.09 ms slower and 267 made W4 0.24-0.4 ms slower
#: (AMD EPYC, numpy 2.4, ``benchmarks/cpu/NOTES.md``).
NUMPY_CALL_S = 1.5e-6
#: Seconds per element an instruction reads or writes, for the step estimate: the lowest of the
#: measured steps per element touched (W2 0.15 ns; W1 0.33, W4 0.36, W3 0.41, the demo 0.63),
#: so the estimate errs short and the budget small.
ELEMENT_S = 0.15e-9
#: Share of the estimated step that numpy calls of split groups may add.
STEP_SHARE = 0.01

LEAVES = ("input", "variable", "constant")


def estimated_step_seconds(program) -> float:
    """A lower estimate of one run of ``program``: every element each instruction reads or writes,
    at :data:`ELEMENT_S`."""
    by_id = program.by_id()
    touched = sum(i.size + sum(by_id[a].size for a in i.inputs) for i in program.instrs if i.op not in LEAVES)
    return touched * ELEMENT_S


def _small(members, by_id) -> bool:
    return all(max([m.size] + [by_id[a].size for a in m.inputs]) <= SMALL_ALONE for m in members)


def numpy_groups(plan: Plan, program, table: Mapping[str, object]) -> Tuple[Plan, Dict[tuple, object]]:
    """``plan`` with the small groups worth running through numpy split into single units (see the
    module docstring; the plan itself when there are none), and the generated code of each group
    kept, by its members."""
    by_id = program.by_id()
    kinds: Dict[str, List[Unit]] = {}
    fits: Dict[str, bool] = {}
    codes: Dict[tuple, object] = {}
    for u in plan.units:
        if u.kind != "fused":
            continue
        members = [by_id[m] for m in u.members]
        if any(m.op not in table for m in members):
            return plan, {}  # the executable reports the missing kernel
        code = codes[tuple(u.members)] = generate(members, u.writes, by_id, table)
        source = code.source
        kinds.setdefault(source, []).append(u)
        fits[source] = fits.get(source, True) and _small(members, by_id) and all(
            runs_on_numpy(m, [by_id[a] for a in m.inputs], table[m.op]) for m in members)
    costs = sorted((sum(len(u.members) for u in units) * NUMPY_CALL_S, source)
                   for source, units in kinds.items() if fits[source])
    budget = STEP_SHARE * estimated_step_seconds(program)
    split = set()
    for cost, source in costs:
        if cost > budget:
            break
        budget -= cost
        split.update(id(u) for u in kinds[source])
    if not split:
        return plan, codes
    units = []
    for u in plan.units:
        if id(u) not in split:
            units.append(u)
            continue
        units += [Unit("single", [m], reads=list(by_id[m].inputs), writes=[m], order=u.order) for m in u.members]
    return Plan(units, plan.memory), codes
