"""A saved program loaded back as a compiled :class:`~rustyasg.core.function.Function`.

The file format, its checks and the rebuilt graph are :mod:`.saved_program`'s, which knows
nothing of functions (so that :meth:`Function.save` can use it); this module joins the two.

Example:
    >>> import numpy as np, os, tempfile, rustyasg.core as rg
    >>> x = rg.input((None, 2), "float32", name="x")
    >>> f = rg.function([x], x * 2.0, backend="reference")
    >>> path = os.path.join(tempfile.mkdtemp(), "double.rgp")
    >>> f.save(path)
    >>> g = load_program(path, backend="reference")
    >>> g(np.ones((1, 2), np.float32)).tolist(), sorted(g.saved)[:2]
    ([[2.0, 2.0]], ['format', 'format_version'])
"""

from __future__ import annotations

import os
from typing import Any, Union

from .function import Function
from .saved_program import load_graph


def load_program(path: Union[str, os.PathLike], backend: Any = None, **function_kw: Any) -> Function:
    """The :class:`~rustyasg.core.function.Function` saved at ``path``, compiled for ``backend``.

    ``backend`` is a name or backend object (default: ``RUSTYASG_BACKEND`` or ``cpu``). The
    function keeps the saved inputs (with their symbolic dims), outputs and variable updates;
    its variables start from the saved values. ``fn.saved`` holds the file's document header.
    """
    inputs, outputs, updates, doc = load_graph(path)
    fn = Function(inputs, outputs[0] if doc.get("single_output") else outputs, updates, backend, **function_kw)
    fn.saved = {k: v for k, v in doc.items() if k != "instrs"}
    return fn
