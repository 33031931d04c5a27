"""Per-format tables of op translators for exporters (ONNX, ...), filled through a plugin hook.

Core knows nothing of any export format: an exporter part (``rustyasg-onnx``) asks
:func:`translators` for its format's table, and every plugin's
``rustyasg_register_exporters(format, registry)`` hook adds its translators to it, the
exporter's own built-in ones included. A third-party op plugin ships its translator the same way.

Example:
    >>> from rustyasg.core.exporters import translators
    >>> isinstance(translators("no-such-format"), dict)
    True
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from .plugins import call_guarded, plugin_manager


class ExporterRegistry:
    """Format name -> op name -> translator, with the plugin that registered each."""

    def __init__(self):
        self._tables: Dict[str, Dict[str, Any]] = {}
        self.providers: Dict[str, Dict[str, str]] = {}
        self._current = "?"

    def register(self, format: str, op: str, translator: Callable) -> None:  # noqa: A002 - the hook's name
        self._tables.setdefault(format, {})[op] = translator
        self.providers.setdefault(format, {})[op] = self._current

    def table(self, format: str) -> Dict[str, Any]:  # noqa: A002
        return self._tables.setdefault(format, {})


EXPORTERS = ExporterRegistry()


def translators(format: str) -> Dict[str, Any]:  # noqa: A002
    """Ask every plugin (again: plugins registered later count too) for ``format``'s translators."""
    pm = plugin_manager()
    for impl in pm.hook.rustyasg_register_exporters.get_hookimpls():
        EXPORTERS._current = impl.plugin_name
        call_guarded(impl.plugin_name, impl.function, format=format, registry=EXPORTERS)
    EXPORTERS._current = "?"
    return EXPORTERS.table(format)
