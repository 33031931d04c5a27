"""Fused-group kernels: compile generated source and bind it to buffers.

:class:`GroupKernel` turns a group (from the ``cpu_fusion`` pass, or a single
elementwise op running alone) into one numba call with every operand reshaped
once, at bind time, to its collapsed loop shape.

Example:
    >>> import numpy as np
    >>> from rustyasg.core.program import Instr
    >>> from rustyasg.cpu.kernels.elementwise import KERNELS
    >>> f32 = np.dtype("float32")
    >>> x = Instr(0, "input", (), {}, (2, 3), f32)
    >>> g = GroupKernel([Instr(1, "sigmoid", (0,), {}, (2, 3), f32)], [1], {0: x}, KERNELS)
    >>> out = np.empty((2, 3), f32); g.bound({0: np.zeros((2, 3), f32), 1: out})(); float(out[0, 0])
    0.5
"""

from __future__ import annotations

import functools
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from rustyasg.core.backend_api import bfloat16 as BF16

from .cache import load_source
from .codegen import generate
from .kernels.fastmath import FAST
from .kernels.protocol import SMALL_ALONE, Elementwise, Impl, Reduction
from .threads import MIN_WORK, splitter, threads


def as_loop_shape(array: np.ndarray, shape: tuple) -> np.ndarray:
    """A view of C-contiguous ``array`` with ``shape`` (never a silent copy)."""
    try:
        return np.reshape(array, shape, copy=False)  # raises instead of copying
    except TypeError:  # numpy < 2.1 has no copy=; setting .shape also refuses to copy
        view = array.view()
        view.shape = shape
        return view


def _words(array: np.ndarray) -> np.ndarray:
    """16-bit float arrays reach generated kernels as their words (numba has no bfloat16 or float16)."""
    return array.view(np.uint16) if array.dtype in (BF16, np.float16) else array


class GroupKernel:
    """One generated numba kernel computing a group of instructions."""

    def __init__(self, members: Sequence, outputs: Sequence[int], by_id: Mapping[int, object],
                 table: Mapping[str, object], code=None):
        code = code or generate(members, outputs, by_id, table)
        module = load_source(code.source, prefix="fused")
        self.code = code
        self.fn = module.kernel
        self.inputs = [iid for iid, _ in code.operands[:len(code.operands) - len(code.outputs)]]
        self.outputs = list(code.outputs)

    def bound(self, arrays: Mapping[int, np.ndarray]):
        """Zero-argument call of the kernel on ``arrays`` (instr id -> array)."""
        args = [as_loop_shape(_words(arrays[iid]), shape) for iid, shape in self.code.operands] + list(self.code.sizes)
        if self.code.split:
            return splitter(self.fn, self.code.loop_shape[0], self.code.work, *args)
        return functools.partial(self.fn, *args)


def _calls_fast_helper(kernel) -> bool:
    """Whether the kernel's formula calls one of :data:`.kernels.fastmath.FAST`'s helpers."""
    template = getattr(kernel, "template", None) or ""
    return any("{" + name + "}" in template for name in FAST)


def _numpy_fits(ins, args, kernel) -> bool:
    if kernel.numpy is None:
        return False
    if ins.size >= MIN_WORK and threads() > 1:
        return False  # large: a generated kernel can be split across threads, numpy's loop cannot
    if ins.dtype == np.float32 and ins.size > SMALL_ALONE and _calls_fast_helper(kernel):
        # numpy's float32 tanh, log1p and expm1 are scalar libm loops, its exp and log SIMD but
        # slower than the vectorized helpers: over 512k floats 1.3 / 7.3 / 7.4 / 0.66 / 0.94 ms
        # against 0.26 / 0.61 / 0.49 / 0.44 / 0.49 ms (AMD EPYC, AVX2)
        return False
    dts = {a.dtype for a in args}
    if len(dts) != 1:
        return False
    return kernel.predicate or ins.dtype in dts


def _without_loop(ins, args, kernel) -> Optional[Impl]:
    """How an op running alone runs without a generated loop, if it does: its own builder's way,
    a view, or numpy's ufunc."""
    if getattr(kernel, "alone", None) is not None:
        impl = kernel.alone(ins, args)
        if impl is not None:
            return impl
    if getattr(kernel, "template", None) == "{0}" and args[0].dtype == ins.dtype:
        return Impl(view=lambda x: x, label=ins.op)  # identity, stop_gradient: no work at all
    if getattr(kernel, "numpy", None) is not None and _numpy_fits(ins, args, kernel):
        fn = kernel.numpy
        return Impl(bind=lambda *arrays: functools.partial(fn, *arrays[:-1], out=arrays[-1]), elementwise=True,
                    label=f"numpy.{getattr(fn, '__name__', ins.op)}")
    return None


def numpy_single(ins, args, kernel) -> Optional[Impl]:
    """The :class:`Impl` of an elementwise op running alone when it compiles nothing: a view or a
    numpy call (labelled ``numpy.*``; an op's own builder may also run a numba kernel), else None."""
    impl = _without_loop(ins, args, kernel)
    return impl if impl is not None and (impl.view is not None or impl.label.startswith("numpy.")) else None


def build_single(ins, args, kernel) -> Impl:
    """Kernel for an elementwise op or a reduction that runs alone (not in a fused group)."""
    impl = _without_loop(ins, args, kernel)
    if impl is not None:
        return impl
    by_id: Dict[int, object] = {a.id: a for a in args}
    group = GroupKernel([ins], [ins.id], by_id, {ins.op: kernel})

    def bind(*arrays):
        *inputs, out = arrays
        mapping = dict(zip(ins.inputs, inputs))
        mapping[ins.id] = out
        return group.bound(mapping)

    elementwise = not isinstance(kernel, Reduction)
    return Impl(bind=bind, contiguous=True, elementwise=elementwise, label=f"numba.{ins.op}")


def _reduction_loops(ins, args) -> bool:
    """Whether a reduction running alone takes a generated loop (2-7x faster than numpy's reduce
    past :data:`SMALL_ALONE` elements) rather than its numpy form."""
    return ins.dtype == args[0].dtype and ins.dtype.kind in "fiu" and args[0].size > SMALL_ALONE


def runs_on_numpy(ins, args, kernel) -> bool:
    """Whether an elementwise op or a reduction running alone takes numpy (or a view) rather than
    a generated numba loop: the choice :func:`build_kernel` makes."""
    if isinstance(kernel, Reduction):
        return not _reduction_loops(ins, args)
    return isinstance(kernel, Elementwise) and numpy_single(ins, args, kernel) is not None


def build_kernel(ins, args, kernel) -> Impl:
    """The one dispatch from a registered cpu kernel to the :class:`Impl` of one instruction.

    A builder function is called; an :class:`Elementwise` formula or a :class:`Reduction`
    running alone becomes numpy's loop or a generated one (:func:`build_single`).
    """
    if isinstance(kernel, Elementwise):
        return build_single(ins, args, kernel)
    if isinstance(kernel, Reduction):
        return build_single(ins, args, kernel) if _reduction_loops(ins, args) else kernel.build(ins, args)
    return kernel(ins, args)
