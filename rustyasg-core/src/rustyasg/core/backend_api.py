"""The declared API for backends and plugins: everything they may use of the core, in one module.

A backend (``rustyasg-cpu``, ``rustyasg-wgpu``, a third one) or a plugin adding ops and
kernels imports from here, never from an op module's internals, so the core can reorganise
its op modules freely. What is here:

- **Program and plan**: :class:`Instr`, :class:`Program` (the IR a backend compiles), the
  compiler kit's :func:`plan_units` with :data:`ELEMENTWISE`/:data:`REDUCTION` roles and the
  :class:`Plan`/:class:`Unit` it writes to ``program.plan`` (fusion groups, order), and
  :func:`plan_updates` (which variable updates are written in place, which are copied after).
- **Memory planning**: a backend declares its :class:`MemoryLayout` (alignment; one arena of
  offsets, or pooled buffers by size class) and which values share storage (``root_of``:
  free views, in-place updates), passes its scheduled :class:`Step` s to :func:`plan_memory`
  and stores the :class:`MemoryPlan` (lifetimes, :class:`BufferSlot` s, live bytes per step)
  as ``program.plan.memory``. :func:`planned_peak_bytes` reads a compiled program's peak:
  the most bytes its buffers take at one step, the number the profiler's memory timeline
  shows (for memory-saving passes such as gradient checkpointing or mixed precision).
- **Backends and kernels**: :class:`Backend`, :class:`Executable`, the ``hookimpl`` marker for
  ``rustyasg_register_kernels``/``_ops``/``_passes``, :data:`KERNELS` and :func:`load_kernels`
  (kernel registration and lookup), :data:`OPS` and the op-declaration types,
  :class:`MissingKernelError`.
- **The elementwise table**: :class:`EwRow` rows (:data:`ELEMENTWISE_TABLE`, :func:`add_row`),
  :func:`subscribe` for a backend's renderer, :func:`define_elementwise` for a new op in one call.
- **Shape algebra**: :func:`outer_reduced_inner`, :func:`sum_to_axes`, :func:`reduced_shape`,
  :func:`normalize_axis`, :func:`normalize_axes`, :func:`broadcast_shapes`.
- **Float -> integer casts**: :func:`float_to_int` and :data:`FLOAT_TO_INT_VIA`, the rule every
  backend follows for NaN, inf and out-of-range values.
- **Window geometry** (conv and pooling): output sizes, window positions, averaging matrices.
- **Scans**: :data:`SCAN_KINDS` (the combine step of each scan op), :func:`argsort_reference`
  (the stable, NaN-last order every backend's argsort reproduces).
- **Singular values**: :func:`svdvals_reference`, :func:`svdvals_grad_reference` (batched LAPACK
  through numpy, with the NaN and zero-singular-value conventions of ``svdvals``).
- **RNG constants**: the counter-based hash every backend reproduces bit for bit
  (:data:`GOLDEN`, :data:`M1`, :data:`M2`, :func:`hash32`, :func:`stream_key`, :func:`uniform_bits`).

Example:
    >>> from rustyasg.core import backend_api as api
    >>> api.outer_reduced_inner((8, 16, 32), (2,)), api.sum_to_axes((8, 16, 32), (16, 1))
    ((128, 32, 1), (0, 2))
    >>> api.ELEMENTWISE_TABLE["add"].arity
    2
"""

from __future__ import annotations

from .compile import ELEMENTWISE, REDUCTION, Plan, Unit, UpdatePlan, plan_units, plan_updates, schedule
from .compile.memory import (BufferSlot, MemoryLayout, MemoryPlan, Step, last_reads, liveness, plan_memory,
                             planned_peak_bytes)
from .compile.precision import MOVES_ONLY, compute_widened
from .compile.shape_algebra import outer_reduced_inner, reduced_shape, sum_to_axes
from .dtypes import LOW_PRECISION, bfloat16
from .errors import MissingKernelError
from .executor import Backend, Executable
from .hookspecs import hookimpl
from .ops.elementwise_table import (CHEAP, GELU_TANH_GATE, GELU_TANH_GRAD_GATED, HEAVY, MAXIMUM, MINIMUM, EwRow, add_row,
                                    define_elementwise, subscribe)
from .ops.elementwise_table import ROWS as ELEMENTWISE_TABLE
from .ops.elementwise import FLOAT_TO_INT_VIA, float_to_int
from .ops.random import GOLDEN, M1, M2, hash32, stream_key, uniform_bits
from .ops.scan import SCAN_KINDS, argsort_ref as argsort_reference
from .ops.svd import svdvals_grad_reference, svdvals_reference
from .ops.window_geometry import (adaptive_avg_matrix, adaptive_bounds, adaptive_positions, avg_pool_matrix,
                                  conv_output_size, conv_transpose_output_size, effective_kernel,
                                  pool_output_size, pool_positions, window_positions)
from .plugins import load_kernels
from .program import Instr, Program
from .registry import KERNELS, OPS, Attr, Example, InputSpec, OpDef, TensorType
from .shapes import broadcast_shapes, normalize_axes, normalize_axis

__all__ = [
    # program and plan
    "Instr", "Program", "Plan", "Unit", "plan_units", "schedule", "ELEMENTWISE", "REDUCTION", "UpdatePlan",
    "plan_updates",
    # memory planning
    "MemoryLayout", "Step", "BufferSlot", "MemoryPlan", "last_reads", "liveness", "plan_memory", "planned_peak_bytes",
    # backends and kernels
    "Backend", "Executable", "hookimpl", "KERNELS", "load_kernels", "OPS", "OpDef", "Attr", "Example", "InputSpec",
    "TensorType", "MissingKernelError",
    # the elementwise table
    "EwRow", "ELEMENTWISE_TABLE", "add_row", "subscribe", "define_elementwise", "CHEAP", "HEAVY", "MAXIMUM", "MINIMUM",
    "GELU_TANH_GATE", "GELU_TANH_GRAD_GATED",
    # 16-bit floats: stored narrow, computed in float32 where a backend has no 16-bit math
    "compute_widened", "MOVES_ONLY", "LOW_PRECISION", "bfloat16",
    # shape algebra
    "outer_reduced_inner", "sum_to_axes", "reduced_shape", "normalize_axis", "normalize_axes", "broadcast_shapes",
    # window geometry
    "effective_kernel", "conv_output_size", "conv_transpose_output_size", "pool_output_size", "window_positions",
    "adaptive_bounds", "adaptive_positions", "pool_positions", "avg_pool_matrix", "adaptive_avg_matrix",
    # RNG constants
    "GOLDEN", "M1", "M2", "hash32", "stream_key", "uniform_bits",
    # scans and sorting
    "SCAN_KINDS", "argsort_reference",
    # singular values (the numpy/LAPACK form every backend may call)
    "svdvals_reference", "svdvals_grad_reference", "float_to_int", "FLOAT_TO_INT_VIA",
]
