"""Plugin discovery with pluggy: built-in parts and third-party plugins use the same hooks.

Plugins are loaded from the ``rustyasg.plugins`` entry-point group. Each load is
wrapped on its own: a plugin that fails to import gives a warning naming it and
the others still load (pluggy's own ``load_setuptools_entrypoints`` stops at the
first failure).

Example:
    >>> from rustyasg.core.plugins import plugin_manager
    >>> "rustyasg.core.builtin" in [name for name, _ in plugin_manager().list_name_plugin()]
    True
"""

from __future__ import annotations

import importlib.metadata as md
import threading
import warnings
from typing import Dict, List, Optional

import pluggy

from . import hookspecs
from .registry import KERNELS, OPS, PASSES
from .source import mark_builder_package

ENTRY_POINT_GROUP = "rustyasg.plugins"
DEFAULT_PLUGINS = ("rustyasg.core.builtin",)

_lock = threading.RLock()
_pm: Optional[pluggy.PluginManager] = None
_failed: Dict[str, str] = {}
_kernels_done: set = set()


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; the others were."""


def _entry_points() -> List[md.EntryPoint]:
    return list(md.entry_points(group=ENTRY_POINT_GROUP))


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and plugins loaded) on first use."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            import importlib

            for name in DEFAULT_PLUGINS:
                pm.register(importlib.import_module(name), name)
            for ep in _entry_points():
                if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                    continue
                try:
                    plugin = ep.load()
                except Exception as exc:  # a broken plugin must not take the others down
                    _failed[ep.name] = f"{type(exc).__name__}: {exc}"
                    warnings.warn(f'plugin "{ep.name}" failed to load: {type(exc).__name__}: {exc}',
                                  PluginLoadWarning, stacklevel=2)
                    continue
                if not pm.is_registered(plugin):
                    pm.register(plugin, ep.name)
                # The plugin's package builds ops: its frames are never the user's "created at" line.
                mark_builder_package(getattr(plugin, "__name__", None) or type(plugin).__module__)
            _pm = pm
            _apply_registrations(pm)
        return _pm


def _apply_registrations(pm: pluggy.PluginManager) -> None:
    for impl in pm.hook.rustyasg_register_ops.get_hookimpls():
        call_guarded(impl.plugin_name, impl.function, registry=OPS)
    for impl in pm.hook.rustyasg_register_passes.get_hookimpls():
        call_guarded(impl.plugin_name, impl.function, registry=PASSES)


def call_guarded(name, fn, **kw):
    """Call a plugin's hook; a failure warns, is listed by :func:`failed_plugins`, and the rest go on."""
    try:
        fn(**kw)
    except Exception as exc:
        _failed[name] = f"{type(exc).__name__}: {exc}"
        warnings.warn(f'plugin "{name}" failed to register: {type(exc).__name__}: {exc}',
                      PluginLoadWarning, stacklevel=3)


def register_plugin(plugin, name: Optional[str] = None) -> None:
    """Register a plugin object in-process (tests, notebooks) and apply its op/pass hooks."""
    pm = plugin_manager()
    pm.register(plugin, name)
    for hook, registry in (("rustyasg_register_ops", OPS), ("rustyasg_register_passes", PASSES)):
        fn = getattr(plugin, hook, None)
        if fn is not None:
            call_guarded(name or repr(plugin), fn, registry=registry)
    for backend in list(_kernels_done):
        fn = getattr(plugin, "rustyasg_register_kernels", None)
        if fn is not None:
            call_guarded(name or repr(plugin), fn, backend=backend, registry=KERNELS)


def unregister_plugin(plugin) -> None:
    """Remove an in-process plugin from the manager (ops it registered stay registered)."""
    plugin_manager().unregister(plugin)


def load_kernels(backend: str) -> dict:
    """Ask every plugin for ``backend``'s kernels (once) and return that backend's table."""
    pm = plugin_manager()
    with _lock:
        if backend not in _kernels_done:
            _kernels_done.add(backend)
            for impl in pm.hook.rustyasg_register_kernels.get_hookimpls():
                call_guarded(impl.plugin_name, impl.function, backend=backend, registry=KERNELS)
    return KERNELS.table(backend)


def failed_plugins() -> Dict[str, str]:
    """Plugins that failed to load or register, with the reason."""
    plugin_manager()
    return dict(_failed)


def plugin_names() -> List[str]:
    return [name for name, _ in plugin_manager().list_name_plugin()]
