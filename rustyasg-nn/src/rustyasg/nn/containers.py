"""Containers: ``Sequential``, ``ModuleList`` and ``ModuleDict`` (children named as in PyTorch).

Example:
    >>> from rustyasg.nn import Linear, ReLU, Sequential
    >>> net = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
    >>> list(net.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator, Mapping

from .module import Module


class _IndexedModules(Module):
    """Children named ``"0"``, ``"1"``, ...: indexing, slicing, ``len``, iteration, ``append``."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        for m in modules:
            self.append(m)

    def _index(self, idx: int) -> str:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return list(self._modules)[idx % n]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(self._index(idx), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def append(self, module: Module) -> "_IndexedModules":
        """Add ``module`` at the end."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "_IndexedModules":
        for m in modules:
            self.append(m)
        return self


class Sequential(_IndexedModules):
    """Apply the children in order; also accepts an ``OrderedDict`` of named children.

    >>> from rustyasg.nn import Tanh
    >>> len(Sequential(Tanh(), Tanh()))
    2
    """

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            super().__init__()
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            super().__init__(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(_IndexedModules):
    """A list of modules registered as children (no ``forward`` of its own).

    >>> from rustyasg.nn import Linear
    >>> layers = ModuleList([Linear(2, 2) for _ in range(3)])
    >>> list(layers.named_parameters())[:2]
    ['0.weight', '0.bias']
    """

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        for m in mods:
            self.append(m)


class ModuleDict(Module):
    """A dict of modules registered as children, in insertion order.

    >>> from rustyasg.nn import Linear
    >>> heads = ModuleDict({"a": Linear(2, 1), "b": Linear(2, 3)})
    >>> sorted(heads.keys())
    ['a', 'b']
    """

    def __init__(self, modules: Mapping[str, Module] = None):
        super().__init__()
        if modules:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules))

    def keys(self):
        return list(self._modules.keys())

    def values(self):
        return list(self._modules.values())

    def items(self):
        return list(self._modules.items())

    def update(self, modules) -> None:
        items = modules.items() if isinstance(modules, Mapping) else modules
        for k, m in items:
            self.add_module(k, m)
