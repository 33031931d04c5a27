"""interpolate combines exactly the taps PyTorch's CPU kernels read: random sizes, modes, scales and
align_corners against torch in float64 with inf and NaN sprinkled in (values, and where they land),
gradients on finite inputs, and the dense matrices derived from the taps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn.functional as F
from rustyasg.nn.resample import axis_taps, interpolation_matrix

MODES = (("linear", 1), ("bilinear", 2), ("bicubic", 2), ("trilinear", 3), ("area", None))
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf, 0 * inf
MAX_SIZE = {1: 20, 2: 20, 3: 9}  # 3-D volumes stay small to keep the test fast


def _draw(rng):
    """One random ``interpolate`` call: ``(input shape, keyword arguments)``."""
    while True:
        mode, nd = MODES[rng.integers(len(MODES))]
        nd = nd or int(rng.integers(1, 4))
        spatial = tuple(int(s) for s in rng.integers(1, MAX_SIZE[nd] + 1, nd))
        kw = {"mode": mode}
        if mode != "area":
            kw["align_corners"] = bool(rng.integers(2))
        if mode in ("bilinear", "bicubic"):
            kw["antialias"] = bool(rng.integers(2))
        if rng.integers(2):
            out = tuple(int(s) for s in rng.integers(1, MAX_SIZE[nd] + 1, nd))
            kw["size"] = out
        else:
            factors = tuple(float(f) for f in np.round(rng.uniform(0.3, 3.0, nd), 3))
            out = tuple(int(np.floor(s * f)) for s, f in zip(spatial, factors))
            kw["scale_factor"] = factors
            kw["recompute_scale_factor"] = bool(rng.integers(2))
        if min(out) < 1:
            continue
        # torch's CPU antialiased kernel returns one constant value per image when the output WIDTH (the
        # last axis) is 1 instead of each row's mean, so torch is no reference there.
        if kw.get("antialias") and out[-1] == 1:
            continue
        return (2, 2) + spatial, kw


def _sprinkle(rng, x):
    """``x`` with a few +inf, -inf and NaN at random places."""
    x = x.copy()
    flat = x.reshape(-1)
    where = rng.choice(flat.size, size=min(3, flat.size), replace=False)
    flat[where] = [np.inf, -np.inf, np.nan][:len(where)]
    return x


@pytest.mark.parametrize("seed", range(40))
def test_random_resizes_match_torch_with_inf_and_nan(seed):
    rng = np.random.default_rng(1000 + seed)
    shape, kw = _draw(rng)
    finite = rng.standard_normal(shape)
    edge = _sprinkle(rng, finite)
    x_edge, x_finite = rg.input(shape, np.float64), rg.input(shape, np.float64)
    y_edge, y_finite = F.interpolate(x_edge, **kw), F.interpolate(x_finite, **kw)
    cot = rng.standard_normal(y_finite.shape)
    grad, = rg.grad(rg.sum(y_finite * rg.constant(cot)), [x_finite])
    got_edge, got_grad = rg.function([x_edge, x_finite], [y_edge, grad], backend="reference")(edge, finite)

    want_edge = TF.interpolate(torch.tensor(edge), **kw).numpy()
    what = f"interpolate{shape} {kw}"
    np.testing.assert_array_equal(np.isnan(got_edge), np.isnan(want_edge), err_msg=f"NaN places of {what}")
    np.testing.assert_allclose(got_edge, want_edge, rtol=1e-9, atol=1e-10, equal_nan=True, err_msg=what)
    np.testing.assert_allclose(got_grad, _torch_gradient(finite, kw, cot), rtol=1e-9, atol=1e-10,
                               err_msg=f"gradient of {what}")


def _torch_gradient(x, kw, cot):
    """The gradient of ``sum(interpolate(x) * cot)`` in torch.

    torch's antialiased forward copies an axis that keeps its size, but its backward still applies
    the user's scale factor there (``torch.autograd.gradcheck`` fails on it), so in that case the
    gradient is taken as torch's forward transposed: the response to each basis image, dotted
    with the cotangent (the resize is linear).
    """
    spatial = x.shape[2:]
    copies_an_axis = kw.get("antialias") and "scale_factor" in kw and not kw["recompute_scale_factor"] and any(
        int(np.floor(n * f)) == n and f != 1.0 for n, f in zip(spatial, kw["scale_factor"]))
    if not copies_an_axis:
        t = torch.tensor(x, requires_grad=True)
        TF.interpolate(t, **kw).backward(torch.tensor(cot))
        return t.grad.numpy()
    count = int(np.prod(spatial))
    basis = torch.eye(count, dtype=torch.float64).reshape((count, 1) + spatial)
    response = TF.interpolate(basis, **kw).reshape(count, -1).numpy()  # (input pixel, output pixel)
    return (cot.reshape(x.shape[:2] + (-1,)) @ response.T).reshape(x.shape)


def test_one_inf_reaches_only_the_outputs_that_read_it():
    """The example of a dense matrix gone wrong: antialiased 6x7 -> 3x3 with inf, -inf, NaN in one row."""
    img = np.random.default_rng(3).standard_normal((2, 3, 6, 7))
    img[0, 0, 0, :4] = [np.inf, -np.inf, np.nan, 0.0]
    x = rg.input(img.shape, np.float64)
    got = rg.function([x], F.interpolate(x, size=(3, 3), mode="bilinear", antialias=True), backend="reference")(img)
    want = TF.interpolate(torch.tensor(img), size=(3, 3), mode="bilinear", antialias=True).numpy()
    assert np.isnan(want).sum() == 2 and np.isnan(got).sum() == 2
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("mode, size, out, align_corners, antialias", [
    ("linear", 5, 9, False, False), ("linear", 7, 3, True, False), ("linear", 6, 6, False, False),
    ("bicubic", 4, 11, False, False), ("bicubic", 9, 4, True, False), ("area", 7, 3, False, False),
    ("linear", 13, 4, False, True), ("bicubic", 5, 12, False, True), ("bicubic", 17, 5, True, True)])
def test_interpolation_matrix_is_torch_applied_to_the_identity(mode, size, out, align_corners, antialias):
    """Row ``j`` of the identity resized by torch is column ``j`` of the matrix (a 2-D call with height 1)."""
    eye = torch.eye(size, dtype=torch.float64)[:, None, None, :]
    torch_mode = {"linear": "bilinear"}.get(mode, mode)
    extra = {} if mode == "area" else {"align_corners": align_corners, "antialias": antialias}
    want = TF.interpolate(eye, size=(1, out), mode=torch_mode, **extra)[:, 0, 0, :].numpy().T
    np.testing.assert_allclose(interpolation_matrix(size, out, mode, align_corners, None, antialias), want,
                               rtol=1e-12, atol=1e-13)


def test_taps_keep_zero_weights_that_torch_reads():
    """Same size: torch still reads (i, i) with weights (1, 0), so an inf becomes NaN; antialias copies the axis."""
    linear = axis_taps(4, 4, "linear", scale=1.25)
    assert linear.index.tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]] and linear.weight[:, 1].tolist() == [0.0] * 4
    assert not linear.is_identity and axis_taps(4, 4, "linear", antialias=True).is_identity
    with pytest.raises(ValueError, match="mode must be"):
        axis_taps(4, 2, "nearest")
