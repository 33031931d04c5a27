"""The executor protocol: what a backend implements.

A backend turns a static :class:`~rustyasg.core.program.Program` into an
:class:`Executable` once, then runs it many times. It owns the persistent state
(variables) on its device between calls. The protocol is shaped for device
backends from the start:

- ``Executable.run`` takes host arrays for the inputs and returns *device
  handles* for the outputs, without waiting; ``Backend.to_host`` reads one back
  only when the caller asks for it.
- Variables are uploaded once and stay resident; updates are applied on the
  device; ``read_variable`` is the only way a value returns to the host.

Example (the reference backend implements this protocol):
    >>> import rustyasg.core as rg
    >>> be = rg.get_backend("reference")
    >>> be.name
    'reference'
"""

from __future__ import annotations

import abc
import contextlib
import weakref
from typing import Any, Dict, Iterable, List, Sequence

import numpy as np

from .graph import Variable
from .program import Program


class Executable(abc.ABC):
    """A program compiled for one input signature."""

    program: Program

    @abc.abstractmethod
    def run(self, inputs: Sequence[np.ndarray]) -> List[Any]:
        """Execute once: read inputs and variables, write updates; return output handles."""

    def memory_report(self) -> Dict[str, Any]:
        """Planned memory use (bytes); backends with a planner fill this in."""
        return {}


class Backend(abc.ABC):
    """Base class of every backend; subclasses implement the abstract methods.

    ``name`` is the driver name in the ``rustyasg.backends`` entry-point group.
    """

    name: str = "abstract"

    def __init__(self) -> None:
        # Device copies of variables keyed by node id (ids are never reused; keying by the
        # tensor itself would compare tensors with ==, which builds graph nodes).
        self._resident: Dict[int, Any] = {}
        self._versions: Dict[int, int] = {}

    # -- compilation ----------------------------------------------------------------------
    @abc.abstractmethod
    def compile(self, program: Program) -> Executable:
        """Compile a static program (after the core passes) into an executable."""

    def passes_for(self) -> str:
        """Name under which backend-specific passes are registered (defaults to ``name``)."""
        return self.name

    def compute_dtype(self, dtype: Any) -> np.dtype[Any]:
        """The dtype this backend computes values of ``dtype`` in (its precision promise).

        Results are stored in ``dtype`` either way; a backend without a float64 unit
        computes float64 in float32 (wgpu) and says so here, so the conformance kit
        compares it at float32 precision.

        >>> import rustyasg.core as rg
        >>> rg.get_backend("reference").compute_dtype("float64")
        dtype('float64')
        """
        result: np.dtype[Any] = np.dtype(dtype)
        return result

    def check_precision(self, precision: Any) -> None:
        """Called with a mixed-precision request (``rg.function(..., precision=...)``) before any compile.

        A backend that cannot store or compute the 16-bit dtype raises a clear error or warns
        that it falls back to float32; the default accepts (the reference computes everything
        in float64 and rounds each result to its dtype).
        """

    # -- data movement ----------------------------------------------------------------------
    @abc.abstractmethod
    def to_device(self, array: np.ndarray) -> Any:
        """Copy a host array to a device handle."""

    @abc.abstractmethod
    def to_host(self, handle: Any) -> np.ndarray:
        """Copy a device handle back to a host array (this may wait for the device)."""

    # -- persistent state ---------------------------------------------------------------------
    def ensure_resident(self, variables: Iterable[Variable]) -> None:
        """Upload variables whose freshest value is not on this backend.

        A variable that already has a device copy is refilled in place (:meth:`write_into`),
        because compiled executables stay bound to that handle; a new handle is made only
        the first time or when the backend cannot overwrite the old one.
        """
        for var in variables:
            if var._owner is self:
                continue
            vid = var.id
            current = self._resident.get(vid)
            if var._owner is None and current is not None and self._versions.get(vid) == var._version:
                var._owner = self  # the host copy did not change since it was uploaded
                continue
            host = np.asarray(var.value() if var._owner is not None else var._host, order="C")
            if current is None or not self.write_into(current, host):
                if current is None:
                    weakref.finalize(var, self._forget, vid)
                self._resident[vid] = self.to_device(host)
            self._versions[vid] = var._version
            var._owner = self

    def write_into(self, handle: Any, array: np.ndarray) -> bool:
        """Overwrite ``handle``'s contents with ``array`` in place; False if this backend cannot."""
        return False

    def _forget(self, vid: int) -> None:
        self._resident.pop(vid, None)
        self._versions.pop(vid, None)

    def resident(self, var: Variable) -> Any:
        """The device handle of a resident variable."""
        return self._resident[var.id]

    def set_resident(self, var: Variable, handle: Any) -> None:
        """Record a new device value for ``var`` (used when updates are applied)."""
        self._resident[var.id] = handle
        var._version += 1
        self._versions[var.id] = var._version
        var._owner = self

    def read_variable(self, var: Variable) -> np.ndarray:
        """Host copy of a resident variable."""
        return np.array(self.to_host(self._resident[var.id]), copy=True)

    def instrument(self, executable: Executable, observer: Any) -> contextlib.AbstractContextManager[Any]:
        """A context in which runs of ``executable`` report each kernel to ``observer``.

        See :mod:`rustyasg.core.observe`. The default offers no per-kernel view (a profiler
        then records whole runs only); backends override it.
        """
        return contextlib.nullcontext()

    def memory_slots(self, executable: Executable) -> Dict[int, str]:
        """Where each value of ``executable``'s program is stored (instruction id -> description), for
        tools such as the viewer; backends with a memory planner override it."""
        return {}

    def synchronize(self) -> None:
        """Wait until submitted work has finished (no-op for synchronous backends)."""
