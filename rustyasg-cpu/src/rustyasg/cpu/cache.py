"""The on-disk cache of generated kernels.

numba's ``cache=True`` only works for functions defined in real files (it keys
its cache by the source file; code run through ``exec`` cannot be cached). So
every generated kernel is written as a ``.py`` file named by the hash of its
source, imported from there, and numba keeps the compiled machine code in the
``__pycache__`` folder next to it. A second process that needs the same kernel
finds both and skips compilation.

Location: ``$RUSTYASG_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/rustyasg``,
else ``~/.cache/rustyasg`` (``%LOCALAPPDATA%\\rustyasg`` on Windows).

Example:
    >>> mod = load_source("def f():\\n    return 42\\n", prefix="demo")
    >>> mod.f()
    42
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Dict

ENV_VAR = "RUSTYASG_CACHE_DIR"
_modules: Dict[str, ModuleType] = {}
_lock = threading.Lock()
_warned: set = set()


def cache_root() -> Path:
    """The root of RustyASG's cache, following the platform's conventions."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "rustyasg"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rustyasg"


def kernel_dir() -> Path:
    """Where generated CPU kernels live (created on demand).

    If the cache root cannot be written (a read-only home, a sandbox), a per-user
    folder in the temporary directory is used instead, with a warning: kernels then
    still compile and cache, just not where the user asked.
    """
    path = cache_root() / "cpu" / "kernels"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"rustyasg-{_user()}" / "cpu" / "kernels"
    if fallback not in _warned:
        _warned.add(fallback)
        warnings.warn(f"rustyasg: cache directory {path} is not writable; using {fallback} "
                      f"(set {ENV_VAR} to choose another)", RuntimeWarning, stacklevel=2)
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _user() -> str:
    try:
        return str(os.getuid())
    except AttributeError:  # Windows
        return os.environ.get("USERNAME", "user")


def _write_once(path: Path, source: str) -> None:
    """Write ``source`` to ``path`` atomically unless it is already there.

    The file is never rewritten: numba's cache is keyed by the file's timestamp, so
    touching it would throw the compiled code away. Concurrent writers race on
    ``os.replace``, which is atomic, and all write the same bytes.
    """
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(source)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_source(source: str, prefix: str = "kernel") -> ModuleType:
    """Import generated ``source`` from a content-addressed file in :func:`kernel_dir`.

    The same source always maps to the same file (and module), in this process
    and in every later one.
    """
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:20]
    name = f"{prefix}_{digest}"
    with _lock:
        module = _modules.get(name)
        if module is not None:
            return module
        path = kernel_dir() / f"{name}.py"
        _write_once(path, source)
        mod_name = f"rustyasg_generated.{name}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module  # numba looks functions' modules up by name
        spec.loader.exec_module(module)
        _modules[name] = module
        return module


def clear_memory() -> None:
    """Forget the modules imported in this process (files on disk stay)."""
    with _lock:
        for name in list(_modules):
            sys.modules.pop(f"rustyasg_generated.{name}", None)
        _modules.clear()
