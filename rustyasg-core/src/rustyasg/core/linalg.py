"""``rg.linalg``: the ``torch.linalg`` names (``svdvals``, ``norm``, ``vector_norm``, ``matrix_norm``).

The functions are the core's own (:func:`rustyasg.core.svdvals`, :func:`rustyasg.core.matrix_norm`,
...), gathered under PyTorch's namespace; :func:`norm` follows ``torch.linalg.norm``, where a
number ``ord`` over two axes is a matrix norm (``rg.norm`` follows ``torch.norm``, where it is a
vector norm over both).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> a = rg.constant(np.array([[3.0, 0.0], [0.0, -4.0]], np.float32))
    >>> float(rg.linalg.norm(a, 2)), float(rg.norm(a, 2, dim=(0, 1)))
    (4.0, 5.0)
    >>> rg.linalg.svdvals(a).numpy()
    array([4., 3.], dtype=float32)
"""

from __future__ import annotations

from .graph import Tensor, as_tensor
from .ops.svd import svdvals
from .reductions import matrix_norm, vector_norm

__all__ = ["svdvals", "norm", "vector_norm", "matrix_norm"]


def norm(x: Tensor, ord=None, dim=None, keepdim: bool = False) -> Tensor:
    """``torch.linalg.norm``: a vector norm over one axis, a matrix norm over two.

    * ``dim`` None: ``ord`` None is the 2-norm of all elements; otherwise ``x`` must be 1-D (a vector
      norm) or 2-D (a matrix norm);
    * ``dim`` one axis: :func:`vector_norm` (``ord`` a number, 2 if None);
    * ``dim`` two axes: :func:`matrix_norm` (``ord`` 'fro', 'nuc', 2, -2, 1, -1, inf, -inf; 'fro' if None).

    >>> import numpy as np, rustyasg.core as rg
    >>> float(rg.linalg.norm(rg.constant(np.array([3.0, -4.0], np.float32))))
    5.0
    """
    x = as_tensor(x)
    if dim is None:
        if ord is None:
            return vector_norm(x, 2, None, keepdim)
        if x.ndim not in (1, 2):
            raise ValueError(f"linalg.norm with ord={ord!r} and no dim needs a 1-D or 2-D tensor, got shape {x.shape}; "
                             "pass dim=(a, b) for a matrix norm or dim=a for a vector norm")
        dim = tuple(range(x.ndim))
    axes = (int(dim),) if isinstance(dim, int) else tuple(dim)
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"ord={ord!r} is a matrix norm; it needs two axes, got dim={dim}")
        return vector_norm(x, 2 if ord is None else ord, axes, keepdim)
    if len(axes) == 2:
        return matrix_norm(x, "fro" if ord is None else ord, axes, keepdim)
    raise ValueError(f"linalg.norm takes one axis (a vector norm) or two (a matrix norm), got dim={dim}; "
                     "use vector_norm for a norm over more axes")
