"""Backend selection: stevedore drivers in the ``rustyasg.backends`` entry-point group.

The backend is chosen by the explicit argument, else the ``RUSTYASG_BACKEND``
environment variable, else ``cpu``. Each backend is created once per process.

Example:
    >>> from rustyasg.core.backends import get_backend, installed_backends
    >>> "reference" in installed_backends()
    True
"""

from __future__ import annotations

import importlib.metadata as md
import os
import threading
from typing import Dict, List, Optional

from .errors import BackendError
from .executor import Backend

NAMESPACE = "rustyasg.backends"
ENV_VAR = "RUSTYASG_BACKEND"
DEFAULT = "cpu"

#: How to install the parts that provide the known backends.
INSTALL_HINTS = {
    "cpu": "pip install rustyasg-cpu",
    "wgpu": "pip install rustyasg-wgpu   (and a Vulkan/Metal/DX12 driver; on Debian: apt-get install mesa-vulkan-drivers)",
    "reference": "pip install rustyasg-core",
}

_instances: Dict[str, Backend] = {}
_lock = threading.Lock()


def installed_backends() -> List[str]:
    """Names of the backends installed in this environment."""
    return sorted({ep.name for ep in md.entry_points(group=NAMESPACE)})


def backend_name(name: Optional[str] = None) -> str:
    """The name that :func:`get_backend` would use."""
    return name or os.environ.get(ENV_VAR) or DEFAULT


def _driver_manager(name: str):
    from stevedore import driver
    from stevedore.exception import NoMatches

    try:
        return driver.DriverManager(namespace=NAMESPACE, name=name, invoke_on_load=True,
                                    on_load_failure_callback=_raise_load_failure)
    except NoMatches:
        return None


def _raise_load_failure(manager, entrypoint, exc):
    raise BackendError(f"backend {entrypoint.name!r} is installed but failed to load: "
                       f"{type(exc).__name__}: {exc}") from exc


def get_backend(name=None) -> Backend:
    """The backend object for ``name`` (a string or an existing Backend).

    Raises :class:`BackendError` for an unknown or uninstalled backend, listing the
    installed ones and the pip command for the missing one.
    """
    if isinstance(name, Backend):
        return name
    chosen = backend_name(name)
    with _lock:
        if chosen in _instances:
            return _instances[chosen]
        manager = _driver_manager(chosen)
        if manager is None:
            source = "argument" if name else (f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "default")
            hint = INSTALL_HINTS.get(chosen)
            how = f"; install it with: {hint}" if hint else " (no RustyASG part provides a backend of that name)"
            raise BackendError(f"backend {chosen!r} (from the {source}) is not installed{how}. "
                               f"Installed backends: {', '.join(installed_backends()) or 'none'}.")
        backend = manager.driver
        _instances[chosen] = backend
        return backend


def register_backend_instance(name: str, backend: Backend) -> None:
    """Make an already-created backend available under ``name`` (tests, embedding)."""
    with _lock:
        _instances[name] = backend
