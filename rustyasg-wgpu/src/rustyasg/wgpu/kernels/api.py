"""The wgpu kernel interface: what a kernel is, what it gets, what it returns.

A **kernel** is a plain function, called once when a program is compiled (never per run)::

    def kernel(kb: KernelBuilder, instr: Instr, inputs: list[TensorView], out: TensorView) -> list[KernelLaunch]

* ``kb`` (:class:`KernelBuilder`) gives the device context, the shared pipeline cache, the
  matmul and elementwise planners, scratch buffers, and :meth:`KernelBuilder.launch` which
  turns WGSL text + resources + a workgroup count (+ a uniform block) into a
  :class:`~rustyasg.wgpu.pipelines.KernelLaunch`.
* ``instr`` is the program instruction (``instr.op``, ``instr.attrs``, ``instr.shape``,
  ``instr.dtype``, ``instr.source`` = the user's file:line for error messages).
* ``inputs`` / ``out`` are :class:`TensorView`: a whole GPU buffer holding a contiguous,
  row-major tensor starting at element 0 (the executor never hands out offset views), its
  shape, its numpy dtype and its device :class:`Storage`.
* The kernel returns the launches that compute ``out``, in order; the executor records them
  into the step's single compute pass (wgpu orders dispatches and inserts the barriers).
  A kernel must write every element of ``out`` (buffers are recycled, never zeroed) and must
  not write its inputs. Temporaries come from :meth:`KernelBuilder.scratch`.

Kernels are registered per op name in the core's kernel registry for backend ``"wgpu"``:
any module of this package with a module-level ``KERNELS = {op_name: kernel}`` dict is
picked up by :mod:`rustyasg.wgpu.plugin` (``nn_conv.py``, ``nn_pool.py``, ... included).

**Dtypes on the device** (WGSL has no 64-bit types and no bytes), see :func:`storage_for`:

========== ============ =====================================================================
dtype      storage      notes
========== ============ =====================================================================
float32    ``f32``
float16    ``f16``      when the adapter grants ``shader-f16``, else ``f32``; math in f32
float64    ``f32``      computed in float32 (WGSL has no f64); read back as float64
int32      ``i32``
int64      ``i64``      ``vec2<u32>`` (lo, hi): numpy's bytes as they are, so RNG seeds and
                        counters keep all 64 bits; index kernels use the low word
                        (:meth:`Storage.index`), exact for indices below 2**31
bool       ``bool``     one ``u32`` (0/1) per element; converted on upload/readback
int8,      ``i32``      widened on upload, narrowed on readback; integer kernels wrap results
uint8,                  into the dtype's range (:mod:`rustyasg.wgpu.narrow_ints`)
int16
uint32     ``i64``      exact in the int64 word pair, wrapped modulo 2**32
uint64     refused      values above 2**63 fit no int64 word pair: a clear error
========== ============ =====================================================================

Each :class:`Storage` writes the WGSL for reading an element as ``f32`` (:meth:`Storage.load`),
storing one from ``f32`` (:meth:`Storage.store`), reading an index as ``i32`` and writing an
``i32`` index, so one kernel generator serves every dtype. :meth:`KernelBuilder.header` returns
the ``enable f16;`` line and helper functions the storages used need (put it first).

Example (a complete kernel: ``out = 2 * x`` for any float dtype)::

    def twice(kb, instr, inputs, out):
        (x,) = inputs
        src = kb.header(x.storage, out.storage) + f'''
    @group(0) @binding(0) var<storage, read> xs: {x.storage.array};
    @group(0) @binding(1) var<storage, read_write> ys: {out.storage.array};
    struct P {{ n: u32, }}
    @group(0) @binding(2) var<uniform> p: P;
    {LINEAR_WORKGROUP_WGSL}
    @compute @workgroup_size(256)
    fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
            @builtin(local_invocation_index) l: u32) {{
        let i = linear_workgroup(w, nw) * 256u + l;
        if (i >= p.n) {{ return; }}
        {out.storage.store("ys", "i", "2.0 * " + x.storage.load("xs", "i"))};
    }}'''
        lay = UniformLayout([("n", "u32")])
        return [kb.launch(src, [x, out], kb.groups(out.size, 256), (lay, {"n": out.size}), "twice")]

    KERNELS = {"twice": twice}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..pipelines import LINEAR_WORKGROUP_WGSL, KernelLaunch, PipelineCache, UniformLayout, uniform_buffer
from .storage import I64_WGSL, STORAGES, Storage, header, storage_for

__all__ = ["Kernel", "TensorView", "Storage", "STORAGES", "storage_for", "KernelBuilder", "KernelError",
           "LINEAR_WORKGROUP_WGSL", "UniformLayout", "KernelLaunch", "I64_WGSL"]

@dataclass(frozen=True)
class TensorView:
    """A tensor in a GPU buffer: contiguous, row-major, from element 0.

    Several views may share a buffer (a reshape is the same buffer with another shape).

    Example::

        >>> v = TensorView(None, (2, 3), np.dtype("float32"), STORAGES["f32"])
        >>> v.size, v.nbytes
        (6, 24)
    """

    buffer: Any
    shape: Tuple[int, ...]
    dtype: np.dtype
    storage: Storage

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.storage.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)


#: ``kernel(kb, instr, inputs, out) -> launches``; see the module docstring.
Kernel = Callable[["KernelBuilder", Any, Sequence[TensorView], TensorView], Sequence[KernelLaunch]]


class KernelError(ValueError):
    """A kernel cannot handle an instruction (a limit, an unsupported case).

    The message names the op, the operand shapes and the user's file:line.
    """

    @classmethod
    def of(cls, instr, inputs: Sequence[TensorView], message: str) -> "KernelError":
        shapes = ", ".join(f"{v.dtype}{tuple(v.shape)}" for v in inputs)
        where = f"\n  created at {instr.source}" if getattr(instr, "source", None) else ""
        return cls(f"{instr.op} (wgpu): {message}\n  operands: {shapes}{where}")


class KernelBuilder:
    """What kernels get at compile time: device, caches, planners, scratch, launches.

    Example:

        >>> from rustyasg.wgpu.device import get_context
        >>> kb = KernelBuilder(get_context())
        >>> kb.groups(1000, 256)
        4
    """

    def __init__(self, ctx: Any, pipelines: Optional[PipelineCache] = None, matmul: Any = None,
                 elementwise: Any = None, scratch_alloc: Optional[Callable[[int, str], Any]] = None,
                 conv_lowering: Optional[str] = None):
        self.ctx = ctx
        #: How convolutions reach the GEMM (``nn_conv.CONV_MODES``), over ``$RUSTYASG_WGPU_CONV``.
        self.conv_lowering = conv_lowering
        self.pipelines = pipelines if pipelines is not None else PipelineCache(ctx)
        self._matmul = matmul
        self._elementwise = elementwise
        self._scratch_alloc = scratch_alloc
        self.scratch_bytes = 0

    # -- capabilities -------------------------------------------------------------------
    @property
    def has_f16(self) -> bool:
        """Whether float16 tensors are stored as ``f16`` (``shader-f16`` granted)."""
        return self.ctx.has("shader-f16")

    @property
    def has_subgroups(self) -> bool:
        """Whether WGSL subgroup builtins (``subgroupAdd`` ...) may be used: the adapter grants
        ``subgroup`` and ``$RUSTYASG_WGPU_SUBGROUPS`` is not ``0`` (the switch to the
        shared-memory fallbacks)."""
        import os

        return self.ctx.has("subgroup") and os.environ.get("RUSTYASG_WGPU_SUBGROUPS", "1") != "0"

    def limit(self, name: str, default: int = 0) -> int:
        return int(self.ctx.limits.get(name, default))

    def storage(self, dtype) -> Storage:
        """Device storage of a numpy dtype on this adapter."""
        return storage_for(dtype, self.has_f16)

    # -- planners (created on first use, shared by every kernel of the backend) -------------
    @property
    def matmul(self):
        """The shared :class:`~rustyasg.wgpu.kernels.matmul.MatmulPlanner`."""
        if self._matmul is None:
            from .matmul import MatmulPlanner

            self._matmul = MatmulPlanner(self.ctx, self.pipelines)
        return self._matmul

    @property
    def elementwise(self):
        """The shared :class:`~rustyasg.wgpu.kernels.elementwise.ElementwisePlanner`."""
        if self._elementwise is None:
            from .elementwise import ElementwisePlanner

            self._elementwise = ElementwisePlanner(self.ctx, self.pipelines)
        return self._elementwise

    # -- code and launches -------------------------------------------------------------------
    #: WGSL prelude for kernels using these storages (``enable f16;``, int64 helpers).
    header = staticmethod(header)

    @staticmethod
    def groups(count: int, per_group: int) -> int:
        """Workgroups needed for ``count`` items at ``per_group`` each (at least 1)."""
        return max(-(-int(count) // int(per_group)), 1)

    def scratch(self, nbytes: int, label: str = "scratch") -> Any:
        """A temporary storage buffer of at least ``nbytes``, owned by the executable.

        Only this instruction's launches may use it; its contents are undefined on entry.
        """
        self.scratch_bytes += int(nbytes)
        if self._scratch_alloc is not None:
            return self._scratch_alloc(max(int(nbytes), 4), label)
        from ..buffers import _usage_storage, bindable_size

        return self.ctx.device.create_buffer(size=bindable_size(nbytes, self.ctx), usage=_usage_storage(),
                                             label=label)

    def launch(self, wgsl: str, resources: Sequence[Any], workgroups, uniforms: Optional[Tuple[UniformLayout, dict]] = None,
               label: str = "") -> KernelLaunch:
        """A launch of ``wgsl`` (entry ``main``) with ``resources`` bound at 0, 1, ...

        A resource is a :class:`TensorView`, a buffer, or ``(buffer, offset, size)``. With
        ``uniforms=(layout, values)`` a uniform buffer holding ``layout.pack(**values)`` is
        bound last. ``workgroups`` is a linear count (split over x/y/z as needed; index with
        ``linear_workgroup``) or an explicit ``(x, y, z)``.
        """
        res: List[Any] = [r.buffer if isinstance(r, TensorView) else r for r in resources]
        if uniforms is not None:
            layout, values = uniforms
            res.append(uniform_buffer(self.ctx, layout.pack(**values)))
        limit = self.limit("max-storage-buffers-per-shader-stage", 8)
        n_storage = len(resources)
        if n_storage > limit:
            raise ValueError(f"kernel {label!r} binds {n_storage} storage buffers; this adapter allows {limit}")
        pipe = self.pipelines.get(wgsl)
        return KernelLaunch(self.ctx, pipe, res, workgroups, label=label,
                            uniforms=(uniforms[0], dict(uniforms[1])) if uniforms is not None else None)
