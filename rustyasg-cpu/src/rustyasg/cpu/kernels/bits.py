"""bitcast: a tensor's bytes read as another dtype of the same size, a free view when the operand
is contiguous, else one copy.

Example:
    >>> import numpy as np
    >>> from rustyasg.core.program import Instr
    >>> ins = Instr(1, "bitcast", (0,), {"dtype": np.dtype("int32"), "source": np.dtype("float32")}, (1,),
    ...             np.dtype("int32"))
    >>> KERNELS["bitcast"](ins, []).view(np.float32([1.0]))
    array([1065353216], dtype=int32)
"""

from __future__ import annotations

import numpy as np

from .protocol import Impl


def _bitcast(ins, args):
    dtype, source = ins.dtype, ins.attrs["source"]
    if args and args[0].dtype != source:  # float16 computed in float32 here: back to its own bytes first
        return Impl(run=lambda x, out: np.copyto(out, x.astype(source).view(dtype)), label="bitcast")

    def view(x):
        return x.view(dtype) if x.flags.c_contiguous else None

    def run(x, out):
        np.copyto(out, np.ascontiguousarray(x).view(dtype))

    return Impl(view=view, run=run, label="bitcast")


KERNELS = {"bitcast": _bitcast}
