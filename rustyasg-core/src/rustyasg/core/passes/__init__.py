"""Graph passes run on every compiled program, in order of position.

| position | pass | what it does |
|---|---|---|
| 5 | ``loss_scaling`` | float16 dynamic loss scaling inside the step (``rg.function(precision="f16")``) |
| 6 | ``autocast`` | mixed precision: per-op policies from the op registry (``precision="bf16"/"f16"``) |
| 10 | ``simplify`` | algebraic identities (x+0, x*1, double negation, no-op reshape/transpose/cast) |
| 12 | ``hoist_reshapes`` | a reshape moves ahead of the elementwise op it follows (bias add and residual add fuse) |
| 20 | ``constant_fold`` | evaluates small all-constant subgraphs with the references |
| 25 | ``simplify_folded`` | ``simplify`` again over what folding exposed |
| 30 | ``cse`` | merges identical instructions |
| 40 | ``dce`` | drops what no output or update needs |
| 45 | ``rematerialize`` | gradient checkpointing: recompute activations in the backward pass |

Backends and plugins register more (fusion, memory planning) through
``rustyasg_register_passes`` at higher positions.
"""

from __future__ import annotations

import time

from ..compile.precision import autocast, loss_scaling
from ..compile.remat import rematerialize
from ..registry import PASSES
from .cse import cse
from .dce import dce
from .fold import constant_fold
from .hoist_reshapes import hoist_reshapes
from .simplify import simplify

PASSES.register("loss_scaling", loss_scaling, 5)
PASSES.register("autocast", autocast, 6)
PASSES.register("simplify", simplify, 10)
PASSES.register("hoist_reshapes", hoist_reshapes, 12)
PASSES.register("constant_fold", constant_fold, 20)
PASSES.register("simplify_folded", simplify, 25)  # folding exposes new identities (x ** (2 - 1))
PASSES.register("cse", cse, 30)
PASSES.register("dce", dce, 40)
PASSES.register("rematerialize", rematerialize, 45)

__all__ = ["simplify", "hoist_reshapes", "constant_fold", "cse", "dce", "run_passes"]


def run_passes(program, backend: str | None = None, disabled=()):
    """Apply every registered pass (for ``backend``) in order; ``disabled`` names passes to skip."""
    from .. import observe

    for p in PASSES.ordered(backend):
        if p.name not in disabled:
            if observe.ACTIVE is None:
                program = p.fn(program)
                continue
            t0 = time.perf_counter()
            program = p.fn(program)
            observe.compile_event(f"pass:{p.name}", time.perf_counter() - t0)
    return program
