"""Integer reductions and scans on wgpu are exact, and wrap as numpy does, on every layout.

Values sit around and beyond +-2**24 (where f32 stops being exact), +-2**31 and +-2**62, so
an f32 accumulator anywhere (rows, columns, the chunked two-pass paths, subgroups on or off)
shows up as a wrong answer. numpy is the reference: int32 wraps modulo 2**32, int64 modulo 2**64,
``argmax``/``argmin`` return the first index of a tie.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.backends import get_backend

CENTERS = {
    np.int32: [0, 2**24, -2**24, 2**31 - 4, -2**31 + 3],
    np.int64: [0, 2**24, -2**24, 2**31, -2**31, 2**62, -2**62, 2**63 - 4, -2**63 + 3],
}

# (shape, axis): the rows, cols, permuted, all-axes and chunked layouts of the reduce kernels
LAYOUTS = [
    ((5, 7), 1),          # rows
    ((5, 7), 0),          # cols
    ((3, 5, 4), 1),       # middle axis: cols with an outer dim
    ((3, 100, 4), 1),     # cols long enough to be split into chunks and combined by a second pass
    ((300, 2), 0),        # few columns: chunked cols
    ((4096, 3), 0),       # long columns: 128 partials per column, combined 32 at a time before the last pass
    ((3, 4, 5), (0, 2)),  # non-adjacent axes: moved last first
    ((4, 6), None),       # all axes
    ((2, 40000), 1),      # few long rows: chunked rows
]


@pytest.fixture(scope="module")
def be():
    return get_backend("wgpu")


def _draw(rng, dtype, shape):
    """Values near the dtype's hard spots, with ties (a few offsets around each center)."""
    centers = np.array(CENTERS[dtype], dtype=np.int64)
    picked = centers[rng.integers(0, len(centers), size=shape)]
    return (picked + rng.integers(-3, 4, size=shape)).astype(dtype)


def _want(xv, axis):
    """numpy's answers (int32 sums and products are taken as rg takes them: numpy's default int)."""
    ax = axis if axis is None or isinstance(axis, int) else tuple(axis)
    with np.errstate(over="ignore"):
        return {"sum": np.sum(xv, axis=ax), "sum32": np.sum(xv, axis=ax, dtype=xv.dtype),
                "prod": np.prod(xv, axis=ax), "max": np.max(xv, axis=ax), "min": np.min(xv, axis=ax)}


@pytest.mark.parametrize("subgroups", ["1", "0"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,axis", LAYOUTS)
def test_reductions_are_exact_and_wrap(be, rng, monkeypatch, subgroups, dtype, shape, axis):
    monkeypatch.setenv("RUSTYASG_WGPU_SUBGROUPS", subgroups)
    xv = _draw(rng, dtype, shape)
    x = rg.input(shape, name="x", dtype=dtype)
    outs = {"sum": rg.sum(x, axis=axis), "sum32": rg.sum(x, axis=axis, dtype=np.dtype(dtype).name),
            "prod": rg.prod(x, axis=axis), "max": rg.amax(x, axis), "min": rg.amin(x, axis)}
    got = dict(zip(outs, rg.function([x], list(outs.values()), backend=be)(xv)))
    for name, want in _want(xv, axis).items():
        assert got[name].dtype == want.dtype, name
        np.testing.assert_array_equal(got[name], want, err_msg=f"{name} over {axis} of {shape}")


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,axis", [((5, 7), 1), ((5, 7), 0), ((3, 5, 4), 1), ((3, 100, 4), 1),
                                        ((2, 40000), 1), ((4, 6), None)])
def test_argmax_argmin_first_index_of_ties_beyond_f32(be, rng, dtype, shape, axis):
    # 2**24 + 1 and 2**24 are one f32 value; 2**31 - 1 and 2**31 - 2 too; they must still differ.
    base = np.array([2**24, 2**31 - 8] if dtype == np.int32 else [2**24, 2**53, 2**62], np.int64)
    xv = (base[rng.integers(0, len(base), size=shape)] * rng.choice([-1, 1], size=shape)
          + rng.integers(0, 3, size=shape)).astype(dtype)
    x = rg.input(shape, name="x", dtype=dtype)
    f = rg.function([x], [rg.argmax(x, axis=axis), rg.argmin(x, axis=axis)], backend=be)
    got_max, got_min = f(xv)
    np.testing.assert_array_equal(got_max, np.argmax(xv, axis=axis))
    np.testing.assert_array_equal(got_min, np.argmin(xv, axis=axis))


def test_listed_cases(be):
    cases = [
        (np.array([2**24 + 1, 0, 2**24 + 2], np.int64), None),
        (np.array([2**24 + 1, 0, 2], np.int32), None),
        (np.array([2**30] * 3, np.int32), None),
        (np.array([2**24 + 1, 2**24], np.int64), None),
        (np.array([2**63 - 1, 1], np.int64), None),
    ]
    for xv, axis in cases:
        x = rg.input(xv.shape, name="x", dtype=xv.dtype)
        outs = [rg.sum(x), rg.sum(x, dtype="int32"), rg.amax(x), rg.amin(x), rg.argmax(x), rg.argmin(x),
                rg.prod(x), rg.cumsum(x, 0)]
        for backend in ("reference", be):
            got = rg.function([x], outs, backend=backend)(xv)
            with np.errstate(over="ignore"):
                want = [xv.sum(), xv.sum(dtype=np.int32), xv.max(), xv.min(), xv.argmax(), xv.argmin(), xv.prod(),
                        np.cumsum(xv)]
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w, err_msg=f"{backend} on {xv.tolist()}")


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("shape,axis", [((5, 7), 1), ((5, 7), 0), ((300, 2), 0), ((4096, 3), 0), ((2, 40000), 1),
                                        ((7, 4), None)])
def test_integer_mean_matches_reference(be, rng, dtype, shape, axis):
    xv = (rng.integers(0, 2, size=shape).astype(bool) if dtype == np.bool_
          else (_draw(rng, dtype, shape) if dtype == np.int32
                else _draw(rng, dtype, shape) // 4))  # sums beyond 2**63 that cancel: numpy's mean never wraps
    x = rg.input(shape, name="x", dtype=dtype)
    gpu, ref = (rg.function([x], rg.mean(x, axis=axis), backend=b)(xv) for b in (be, "reference"))
    assert gpu.dtype == ref.dtype
    # the exact mean (Python integers); the reference rounds each int64 to float64 first, so it is
    # held to that rounding, while wgpu divides the exact sum (a few f32 roundings, no cancellation)
    moved = np.moveaxis(xv, axis, -1).reshape(-1, xv.shape[axis]) if axis is not None else xv.reshape(1, -1)
    exact = np.array([float(sum(int(v) for v in row)) / row.size for row in moved])
    exact = exact.reshape(np.shape(xv.mean(axis=axis)))
    slack = 4 * np.finfo(np.float64).eps * np.abs(xv.astype(np.float64)).mean(axis=axis)
    assert np.all(np.abs(ref - exact) <= 4e-7 * np.abs(exact) + slack)
    np.testing.assert_allclose(gpu, exact, rtol=4e-7)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,dim", [((6, 5), 0), ((6, 5), 1), ((3, 4, 5), 1), ((3, 4, 5), -1)])
def test_scans_are_exact_and_wrap(be, rng, dtype, shape, dim):
    xv = _draw(rng, dtype, shape)
    x = rg.input(shape, name="x", dtype=dtype)
    cmax, cmin = rg.cummax(x, dim), rg.cummin(x, dim)
    outs = [rg.cumsum(x, dim), rg.cumsum(x, dim, dtype=np.dtype(dtype).name), rg.cumprod(x, dim),
            cmax[0], cmax[1], cmin[0], cmin[1]]
    got = rg.function([x], outs, backend=be)(xv)
    ref = rg.function([x], outs, backend="reference")(xv)
    with np.errstate(over="ignore"):
        want = [np.cumsum(xv, dim), np.cumsum(xv, dim, dtype=dtype), np.cumprod(xv, dim),
                np.maximum.accumulate(xv, dim), None, np.minimum.accumulate(xv, dim), None]
    for i, (g, r, w) in enumerate(zip(got, ref, want)):
        np.testing.assert_array_equal(g, r, err_msg=f"output {i}")
        if w is not None:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


def test_bool_reductions(be, rng):
    xv = rng.integers(0, 2, size=(3, 40000)).astype(bool)
    x = rg.input(xv.shape, name="x", dtype=np.bool_)
    outs = [rg.sum(x, axis=1), rg.sum(x, axis=0), rg.amax(x, 1), rg.amin(x, 0), rg.argmax(x, axis=1),
            rg.count_nonzero(x, 1), rg.any(x, 1), rg.all(x, 0)]
    got = rg.function([x], outs, backend=be)(xv)
    want = [xv.sum(1), xv.sum(0), xv.max(1), xv.min(0), xv.argmax(1), np.count_nonzero(xv, 1), xv.any(1),
            xv.all(0)]
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,axis", [((), None), ((0, 3), 0), ((3, 0), 1), ((2, 3), 1)])
def test_edge_shapes_and_extremes(be, dtype, shape, axis):
    """0-d operands, empty reduced axes (sum 0, prod 1) and rows of the dtype's minimum."""
    xv = np.full(shape, np.iinfo(dtype).min if shape == (2, 3) else 2**24 + 1, dtype)
    x = rg.input(shape, name="x", dtype=dtype)
    outs = [rg.sum(x, axis=axis), rg.prod(x, axis=axis), rg.sum(x, axis=axis, dtype=np.dtype(dtype).name)]
    if xv.size:
        outs += [rg.amax(x, axis), rg.amin(x, axis), rg.argmax(x, axis=axis), rg.argmin(x, axis=axis)]
    with np.errstate(over="ignore"):
        want = [np.sum(xv, axis=axis), np.prod(xv, axis=axis), np.sum(xv, axis=axis, dtype=dtype)]
        if xv.size:
            want += [np.max(xv, axis=axis), np.min(xv, axis=axis), np.argmax(xv, axis=axis), np.argmin(xv, axis=axis)]
    for i, (g, w) in enumerate(zip(rg.function([x], outs, backend=be)(xv), want)):
        np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "prod", "amax", "amin", "mean", "assign"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_scatter_reduce_is_exact(be, rng, dtype, reduce, include_self):
    """Segment reductions of integers: exact, wrapping, int64 high words agreed before low words."""
    if reduce == "prod" and dtype == np.int64:
        x = rg.input((4,), name="x", dtype=dtype)
        f = rg.function([x], rg.scatter_reduce(x, 0, rg.constant(np.zeros(3, np.int64)),
                                               rg.constant(np.ones(3, np.int64)), "prod"), backend=be)
        with pytest.raises(Exception, match="64-bit atomic"):
            f(np.ones(4, np.int64))
        return
    xv, sv = _draw(rng, dtype, (6, 5)), _draw(rng, dtype, (9, 5))
    if dtype == np.int64:  # shared high words with different low words, and the reverse
        sv[:3] = (np.int64(2**40) + rng.integers(-2, 3, size=(3, 5))).astype(dtype)
        xv[:2] = (np.int64(2**40) + rng.integers(-2, 3, size=(2, 5))).astype(dtype)
    iv = rng.integers(-6, 6, size=(9, 5))
    x, s = rg.input(xv.shape, name="x", dtype=dtype), rg.input(sv.shape, name="s", dtype=dtype)
    i = rg.input(iv.shape, name="i", dtype=np.int64)
    if reduce == "assign":
        iv = np.stack([rng.permutation(6) for _ in range(5)], 1)  # distinct targets: a defined result
        sv, s = sv[:6], rg.input((6, 5), name="s", dtype=dtype)
        i = rg.input(iv.shape, name="i", dtype=np.int64)
        out = rg.scatter(x, 0, i, s)
    else:
        out = rg.scatter_reduce(x, 0, i, s, reduce, include_self=include_self)
    got, ref = (rg.function([x, i, s], out, backend=b)(xv, iv, sv) for b in (be, "reference"))
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_scatter_add_and_index_add_are_exact(be, rng, dtype):
    xv, sv = _draw(rng, dtype, (4, 6)), _draw(rng, dtype, (7, 6))
    iv = rng.integers(-4, 4, size=(7, 6))
    rows = rng.integers(0, 4, size=7)
    x, s = rg.input(xv.shape, name="x", dtype=dtype), rg.input(sv.shape, name="s", dtype=dtype)
    i = rg.input(iv.shape, name="i", dtype=np.int64)
    outs = [rg.scatter_add(x, i, s, axis=0), rg.index_add(x, 0, rg.constant(rows), s)]
    got, ref = (rg.function([x, i, s], outs, backend=b)(xv, iv, sv) for b in (be, "reference"))
    want = xv.copy()
    with np.errstate(over="ignore"):
        np.add.at(want, rows, sv)
    np.testing.assert_array_equal(ref[1], want)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
