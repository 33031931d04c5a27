"""Dataset registry: built-in data sets, run-time registrations, and plugins via entry points.

A plugin distribution adds data sets by declaring, in its ``pyproject.toml``::

    [project.entry-points."rustyasg.datasets"]
    my-corpus = "my_package.data:load_my_corpus"   # a callable(**kwargs) -> dataset

``get_dataset(name, **kwargs)`` calls the factory registered under ``name``. Names are
case-insensitive and ``_`` equals ``-``.

>>> "mnist" in available_datasets()
True
>>> @register_dataset("ones")
... def ones(n=3):
...     import numpy as np
...     from rustyasg.data import InMemoryDataset
...     return InMemoryDataset(np.ones(n))
>>> len(get_dataset("ones", n=5))
5
>>> unregister_dataset("ones")
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownDatasetError",
    "register_dataset",
    "unregister_dataset",
    "available_datasets",
    "get_dataset",
]

ENTRY_POINT_GROUP = "rustyasg.datasets"

# Built-ins are import strings, resolved on first use, so importing the registry stays cheap.
_BUILTINS: dict[str, str] = {
    "mnist": "rustyasg.data.formats.mnist:mnist",
    "mnist-idx": "rustyasg.data.formats.mnist:mnist_idx",
    "fashion-mnist": "rustyasg.data.formats.mnist:fashion_mnist",
    "cifar10": "rustyasg.data.formats.cifar:cifar10",
    "cifar100": "rustyasg.data.formats.cifar:cifar100",
    "image-folder": "rustyasg.data.formats.image_folder:image_folder",
    "imagenet": "rustyasg.data.formats.imagenet:imagenet",
    "shakespeare-genres": "rustyasg.data.formats.shakespeare:shakespeare_genres",
}
_REGISTERED: dict[str, Callable[..., Any]] = {}


class UnknownDatasetError(LookupError):
    """``get_dataset`` was given a name nobody registered; the message lists the known ones.

    >>> try:
    ...     get_dataset("mnsit")
    ... except UnknownDatasetError as e:
    ...     print(str(e).split(";")[0])
    unknown dataset 'mnsit' (did you mean 'mnist'?)
    """


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _resolve(target: str) -> Callable[..., Any]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {_key(ep.name): ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def register_dataset(name: str, factory: Callable[..., Any] | None = None, *, overwrite: bool = False) -> Any:
    """Register ``factory(**kwargs) -> dataset`` under ``name``; usable as a decorator.

    >>> register_dataset("empty", lambda: [])
    <function <lambda> at ...>
    >>> get_dataset("empty")
    []
    >>> unregister_dataset("empty")
    """

    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = _key(name)
        if not callable(fn):
            raise TypeError(f"dataset factory for {name!r} must be callable, got {type(fn).__name__}")
        if not overwrite and (key in _REGISTERED or key in _BUILTINS):
            raise ValueError(f"dataset {name!r} is already registered (pass overwrite=True to replace it)")
        _REGISTERED[key] = fn
        return fn

    return add if factory is None else add(factory)


def unregister_dataset(name: str) -> None:
    """Remove a run-time registration (built-ins and entry points are not affected).

    >>> unregister_dataset("never-registered")
    Traceback (most recent call last):
    ...
    KeyError: "dataset 'never-registered' was not registered at run time"
    """
    key = _key(name)
    if key not in _REGISTERED:
        raise KeyError(f"dataset {name!r} was not registered at run time")
    del _REGISTERED[key]


def available_datasets() -> list[str]:
    """Sorted names of every data set ``get_dataset`` can build (plugins are not imported).

    >>> {"cifar10", "fashion-mnist", "image-folder"} <= set(available_datasets())
    True
    """
    return sorted(set(_BUILTINS) | set(_REGISTERED) | set(_entry_points()))


def get_dataset(name: str, **kwargs: Any) -> Any:
    """Build the data set registered as ``name`` with ``kwargs``.

    Looks at run-time registrations, then built-ins, then the ``rustyasg.datasets`` entry points.
    Here the built-in ``image-folder`` reads a tiny folder of ``.npy`` images:

    >>> import pathlib, tempfile, numpy as np
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i, name in enumerate(["cat", "dog"]):
    ...     (root / name).mkdir()
    ...     np.save(root / name / "0.npy", np.full((4, 4), i, np.float32))
    >>> ds = get_dataset("image_folder", root=root, in_memory=True)
    >>> ds.classes, ds.inputs.shape, ds.labels.tolist()
    (['cat', 'dog'], (2, 1, 4, 4), [0, 1])
    >>> get_dataset("imagefolder")
    Traceback (most recent call last):
    ...
    rustyasg.data.registry.UnknownDatasetError: unknown dataset 'imagefolder' (did you mean 'image-folder'?); ...
    """
    key = _key(name)
    if key in _REGISTERED:
        factory = _REGISTERED[key]
    elif key in _BUILTINS:
        factory = _resolve(_BUILTINS[key])
    else:
        eps = _entry_points()
        if key not in eps:
            known = available_datasets()
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownDatasetError(f"unknown dataset {name!r}{hint}; available: {', '.join(known)}")
        ep = eps[key]
        try:
            factory = ep.load()
        except Exception as e:
            dist = getattr(getattr(ep, "dist", None), "name", "an unknown distribution")
            raise RuntimeError(f"dataset plugin {ep.name!r} ({ep.value}, from {dist}) failed to load: {e}") from e
    return factory(**kwargs)
