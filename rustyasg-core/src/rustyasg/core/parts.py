"""A clear error for RustyASG parts that are not installed.

The parts are separate distributions sharing the ``rustyasg`` namespace, so a
missing one would otherwise surface as a bare ``No module named 'rustyasg.nn'``.
Importing the core appends a finder to ``sys.meta_path`` that is consulted only
after every real finder failed, and turns that case into a
:class:`~rustyasg.core.errors.MissingPartError` naming the pip command.

Example:
    >>> PARTS["nn"]
    'rustyasg-nn'
"""

from __future__ import annotations

import importlib
import sys
from importlib.abc import MetaPathFinder
from typing import Any, Callable, Dict, List, Tuple

from .errors import MissingPartError

#: Import name under ``rustyasg.`` -> distribution that provides it.
PARTS = {"core": "rustyasg-core", "cpu": "rustyasg-cpu", "wgpu": "rustyasg-wgpu", "nn": "rustyasg-nn",
         "data": "rustyasg-data", "viz": "rustyasg-viz", "distributed": "rustyasg-dist",
         "onnx": "rustyasg-onnx", "web": "rustyasg-web", "serve": "rustyasg-serve"}


class MissingPartFinder(MetaPathFinder):
    """Last finder on ``sys.meta_path``: reached only when ``rustyasg.<part>`` was not found."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, rest = fullname.partition(".")
        if prefix != "rustyasg" or not rest or "." in rest:
            return None
        dist = PARTS.get(rest)
        if dist is None:
            return None
        raise MissingPartError(f"the RustyASG part 'rustyasg.{rest}' is not installed; "
                               f"install it with: pip install {dist}", name=fullname)


def install() -> None:
    """Append the finder once (idempotent)."""
    if not any(isinstance(f, MissingPartFinder) for f in sys.meta_path):
        sys.meta_path.append(MissingPartFinder())


def distribution_version(distribution: str) -> str:
    """The installed version of a RustyASG distribution, from its package metadata (one place: its
    ``pyproject.toml``); ``"0+unknown"`` for a source tree that was put on ``sys.path`` uninstalled.

    >>> distribution_version("rustyasg-core") == __import__("rustyasg.core").core.__version__
    True
    """
    import importlib.metadata as md

    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return "0+unknown"



def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """A package's module-level ``__getattr__`` and ``__dir__`` that import each exported name's
    submodule when the name is first read (PEP 562), so importing the package stays cheap.

    Plugins are found through entry points, and loading ``rustyasg.<part>.plugin`` imports the
    package ``rustyasg.<part>`` first: a part whose package imports a web framework or a model
    format on import would make every ``import rustyasg.core`` pay for it. ``exports`` maps
    a name to its submodule relative to the package (a name may not also be a submodule's
    name: importing that submodule would rebind the package attribute to the module).

    Example::

        >>> import types
        >>> sys.modules["lazy_demo"] = pkg = types.ModuleType("lazy_demo")
        >>> pkg.__getattr__, pkg.__dir__ = lazy_exports("lazy_demo", {"dumps": "json"})
        >>> pkg.dumps([1])  # the first read imports json (absolute: the package here has no path)
        '[1]'
        >>> "dumps" in dir(pkg)
        True
        >>> del sys.modules["lazy_demo"]
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later reads are plain attribute reads
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
