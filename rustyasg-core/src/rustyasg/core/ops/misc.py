"""Ops that shape the gradient rather than the value: stop_gradient and identity.

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((2,), name="x")
    >>> rg.stop_gradient(x).op
    'stop_gradient'
"""

from __future__ import annotations

import numpy as np

from ..registry import Attr, Example, InputSpec
from ._define import defop

stop_gradient = defop("stop_gradient", infer=lambda ts: ts[0], reference=lambda x: x.copy(),
                      grad=lambda g, y, x: (None,), kind="elementwise",
                      examples=(Example((InputSpec((2, 3)),), check_grad=False),),
                      doc="Identity whose gradient is zero: the value is treated as a constant by ``grad``.")
identity = defop("identity", infer=lambda ts: ts[0], reference=lambda x: x.copy(),
                 grad=lambda g, y, x: (g,), kind="elementwise",
                 examples=(Example((InputSpec((2, 3)),)),),
                 doc="Identity (a named point in the graph; removed by simplification).")


def _ones_scalar_infer(ts):
    return ts[0]


ones_like_scalar = defop("ones_like", infer=_ones_scalar_infer, reference=lambda x: np.ones_like(x),
                         grad=lambda g, y, x: (None,), kind="source",
                         examples=(Example((InputSpec((2, 3)),), check_grad=False),),
                         doc="Ones with ``x``'s shape and dtype (``x``'s values are not read).")


def _leaf_infer(ts, **_):
    raise TypeError("leaf nodes are created by rustyasg.input / variable / constant, not applied")


def _leaf_reference(*_, **__):
    raise RuntimeError("leaf nodes have no reference: the executor supplies their values")


# Leaves of every graph; declared so every node's op is in the registry.
for _leaf, _doc in (("input", "A value supplied per call (``rustyasg.input``)."),
                    ("variable", "Persistent backend-held state (``rustyasg.variable``)."),
                    ("constant", "A literal baked into the graph (``rustyasg.constant``).")):
    defop(_leaf, infer=_leaf_infer, reference=_leaf_reference, grad=None, kind="source", num_inputs=0,
          attrs={"value": Attr(lambda v: v, None)} if _leaf == "constant" else {}, doc=_doc)
