"""Helpers to declare an op and its user-facing function in one place."""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

from ..graph import apply
from ..registry import OPS, Attr, Example, OpDef, TensorType

__all__ = ["defop", "Attr", "Example", "TensorType"]


def defop(name: str, *, infer: Callable, reference: Callable, grad: Optional[Callable] = None,
          attrs: Optional[Mapping[str, Attr]] = None, doc: str = "", kind: str = "other",
          num_inputs: Optional[int] = 1, examples: Sequence[Example] = (), promote: bool = False,
          plugin: str = "rustyasg.core", registry=None, check_values: Optional[Callable] = None,
          precision: Optional[str] = None) -> Callable:
    """Register an :class:`OpDef` and return ``fn(*inputs, **attrs)`` that builds its node.

    >>> import numpy as np
    >>> from rustyasg.core.registry import OpRegistry
    >>> twice = defop("twice_demo", infer=lambda ts: ts[0], reference=lambda x: 2 * x,
    ...               registry=OpRegistry(), doc="2*x")
    >>> twice.__name__
    'twice_demo'
    """
    opdef = OpDef(name=name, infer=infer, reference=reference, grad=grad, attrs=dict(attrs or {}),
                  doc=doc, kind=kind, num_inputs=num_inputs, examples=tuple(examples), promote=promote,
                  plugin=plugin, check_values=check_values, precision=precision)
    (registry if registry is not None else OPS).register(opdef)

    def build(*inputs, name: Optional[str] = None, **kw):
        return apply(opdef.name, *inputs, name=name, **kw)

    build.__name__ = name
    build.__qualname__ = name
    build.__doc__ = doc
    build.opdef = opdef
    return build
