"""Singular values of batched matrices (``torch.linalg.svdvals``) and their gradient.

``svdvals(a)`` maps ``(..., m, n)`` to ``(..., min(m, n))``, the singular values in
descending order. Its gradient is ``U diag(g) Vh`` over the reduced SVD ``a = U S Vh``;
since an op has one output, that product is an op of its own, ``svdvals_grad(a, g)``, which
recomputes the decomposition (not differentiable again: the second derivative needs the
singular vectors' gradients, which no op here provides).

Conventions every backend follows (:func:`svdvals_reference`, :func:`svdvals_grad_reference`):

* a matrix holding NaN or +-inf has NaN singular values and a NaN gradient (PyTorch's CPU
  raises at run time instead, its CUDA backend gives NaN; a compiled program cannot raise
  per value);
* an exactly zero singular value has no defined singular vectors: its term of the gradient is
  taken as 0 (a valid subgradient; the 2-norm's gradient at 0 is 0 the same way), where
  PyTorch takes whatever vectors LAPACK returned;
* ``min(m, n) == 0`` gives an empty result, and an empty gradient.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> a = rg.input((2, 3, 2), name="a")
    >>> rg.svdvals(a).shape
    (2, 2)
    >>> f = rg.function([a], rg.svdvals(a), backend="reference")
    >>> f(np.array([[[3.0, 0.0], [0.0, -4.0], [0.0, 0.0]]] * 2, np.float32))
    array([[4., 3.],
           [4., 3.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Example, InputSpec, TensorType
from ..shapes import format_shape
from ._define import defop

__all__ = ["svdvals", "svdvals_grad", "svdvals_reference", "svdvals_grad_reference"]


def _finite_matrices(a):
    """``(a with non-finite matrices zeroed, mask of matrices that held NaN or inf)``."""
    bad = ~np.isfinite(a).all(axis=(-2, -1))
    return np.where(bad[..., None, None], 0, a), bad


def svdvals_reference(a):
    """Descending singular values of every matrix of ``a`` (in ``a``'s float dtype); NaN where it is not finite.

    >>> svdvals_reference(np.array([[0.0, 2.0], [1.0, 0.0]]))
    array([2., 1.])
    """
    a = np.asarray(a)
    k = min(a.shape[-2:])
    if k == 0 or a.size == 0:
        return np.zeros(a.shape[:-2] + (k,), a.dtype)
    clean, bad = _finite_matrices(a)
    s = np.linalg.svd(clean, compute_uv=False).astype(a.dtype, copy=False)
    s[bad] = np.nan
    return s


def svdvals_grad_reference(a, g):
    """``U diag(g) Vh`` over the reduced SVD of every matrix of ``a``; zero singular values contribute 0.

    >>> svdvals_grad_reference(np.diag([2.0, -1.0]), np.array([1.0, 1.0]))
    array([[ 1.,  0.],
           [ 0., -1.]])
    """
    a, g = np.asarray(a), np.asarray(g)
    k = min(a.shape[-2:])
    if k == 0 or a.size == 0:
        return np.zeros(a.shape, a.dtype)
    clean, bad = _finite_matrices(a)
    u, s, vh = np.linalg.svd(clean, full_matrices=False)
    weight = np.where(s > 0, np.broadcast_to(g, s.shape), 0)
    out = np.matmul(u * weight[..., None, :], vh).astype(a.dtype, copy=False)
    out[bad] = np.nan
    return out


def _check_matrix(t):
    if len(t.shape) < 2:
        raise ValueError(f"needs a (..., m, n) batch of matrices, got shape {format_shape(t.shape)} "
                         f"(rank {len(t.shape)}); reshape a vector to (1, n) or (n, 1)")
    if not dtypes.is_floating(t.dtype):
        raise TypeError(f"needs a floating tensor, got {t.dtype}; cast it first, e.g. a.astype('float32')")


def _svdvals_infer(ts):
    (a,) = ts
    _check_matrix(a)
    m, n = a.shape[-2:]
    return TensorType(tuple(a.shape[:-2]) + (min(m, n),), a.dtype)


def _svdvals_grad_infer(ts):
    a, g = ts
    _check_matrix(a)
    want = tuple(a.shape[:-2]) + (min(a.shape[-2:]),)
    if tuple(g.shape) != want:
        raise ValueError(f"the gradient of svdvals of {format_shape(a.shape)} has shape {format_shape(want)}, "
                         f"got {format_shape(g.shape)}")
    if g.dtype != a.dtype:
        raise TypeError(f"svdvals_grad needs a and g of one dtype, got {a.dtype} and {g.dtype}")
    return a


def _svdvals_grad_rule(g, y, a):
    return (svdvals_grad(a, g),)


# Well-separated singular values: the gradient is smooth there, so finite differences check it.
_SHAPES = ((4, 3), (3, 5), (2, 3, 3), (1, 4), (2, 1, 5, 2))
svdvals = defop("svdvals", infer=_svdvals_infer, reference=svdvals_reference, grad=_svdvals_grad_rule,
                kind="linalg", precision="float32",
                examples=tuple(Example((InputSpec(s),), rtol=1e-4, atol=1e-5) for s in _SHAPES),
                doc="Singular values of each matrix of a (..., m, n) batch, descending (``torch.linalg.svdvals``).")

svdvals_grad = defop("svdvals_grad", infer=_svdvals_grad_infer, reference=svdvals_grad_reference, grad=None,
                     kind="linalg", precision="float32", num_inputs=2,
                     examples=tuple(Example((InputSpec(s), InputSpec(s[:-2] + (min(s[-2:]),))), check_grad=False,
                                            rtol=1e-4, atol=1e-5) for s in _SHAPES),
                     doc="``U diag(g) Vh`` over the reduced SVD of ``a``: the gradient of ``sum(g * svdvals(a))``.")
