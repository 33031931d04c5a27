"""int8, uint8, int16 and uint32 on wgpu: stored in wider words, equal to the cpu backend bit for bit.

Random compositions of the integer ops on random arrays that hold each dtype's extremes
(min, max, 0, -1 where signed), plus the casts, reductions, scans, scatter and bitcasts that
must wrap back into the narrow range.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg

DTYPES = ["int8", "uint8", "int16", "uint32"]

#: name -> (build, needs a non-zero second operand, needs a small shift count)
BINARY = {
    "add": (lambda a, b: a + b, False), "sub": (lambda a, b: a - b, False), "mul": (lambda a, b: a * b, False),
    "floor_divide": (lambda a, b: a // b, True), "mod": (lambda a, b: a % b, True),
    "and": (lambda a, b: a & b, False), "or": (lambda a, b: a | b, False), "xor": (lambda a, b: a ^ b, False),
    "maximum": (rg.maximum, False), "minimum": (rg.minimum, False),
    "where": (lambda a, b: rg.where(a > b, a, b), False),
}
UNARY = {
    "neg": lambda a: -a, "abs": rg.abs, "not": lambda a: ~a, "square": lambda a: a * a,
    "shl": lambda a: a << 3, "shr": lambda a: a >> 2, "pow3": lambda a: a ** 3,
    "float round trip": lambda a: (a.astype("float32") * 0.5).astype(a.dtype),
}


def extremes(dt, shape, rng):
    """Random values of ``dt`` with its min, max, 0, 1 and (signed) -1 spread among them."""
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max, shape, endpoint=True, dtype=np.int64).astype(dt)
    special = [info.min, info.max, 0, 1] + ([-1] if info.min < 0 else [info.max - 1])
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, len(special), replace=False)] = np.array(special).astype(dt)
    return x


def same(got, want):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want)


def wgpu_equals_cpu(inputs, outs, *arrays):
    """The wgpu backend's ``outs`` equal the cpu backend's bit for bit (dtype and NaN included)."""
    with np.errstate(all="ignore"):
        want = rg.function(inputs, outs, backend="cpu")(*arrays)
        got = rg.function(inputs, outs, backend="wgpu")(*arrays)
    for g, w in zip(got, want):
        same(g, w)



@pytest.mark.parametrize("dt", DTYPES)
def test_random_compositions_equal_cpu_bit_for_bit(dt):
    rng = np.random.default_rng(sum(map(ord, dt)))
    x, y = rg.input((6, 8), dt, name="x"), rg.input((8,), dt, name="y")
    outs, names = [], []
    for trial in range(12):
        v = x
        for step in range(4):
            if rng.random() < 0.5:
                name = rng.choice(sorted(BINARY))
                fn, nonzero = BINARY[name]
                other = y if not nonzero else rg.where(y == 0, rg.ones_like(y), y)
                v = fn(v, other) if rng.random() < 0.7 else fn(other, v)
            else:
                name = rng.choice(sorted(UNARY))
                v = UNARY[name](v)
            names.append(name)
        outs.append(v)
    a, b = extremes(dt, (6, 8), rng), extremes(dt, (8,), rng)
    wgpu_equals_cpu([x, y], outs, a, b)


@pytest.mark.parametrize("dt", DTYPES)
def test_every_op_alone_at_the_extremes(dt):
    info = np.iinfo(dt)
    vals = np.array(sorted({info.min, info.min + 1, info.max, info.max - 1, 0, 1, 2, 3, 100 % (info.max + 1)}), dt)
    a, b = np.meshgrid(vals, vals)
    a, b = a.ravel(), b.ravel()
    x, y = rg.input(a.shape, dt, name="x"), rg.input(b.shape, dt, name="y")
    nz = rg.where(y == 0, rg.ones_like(y), y)
    outs = [fn(x, nz if nonzero else y) for fn, nonzero in BINARY.values()] + [fn(x) for fn in UNARY.values()]
    outs += [x == y, x < y, x >> (y & 7), x << (y & 7)]
    wgpu_equals_cpu([x, y], outs, a, b)


@pytest.mark.parametrize("dt", DTYPES)
def test_casts_into_the_narrow_range_wrap(dt):
    wide = np.array([0, 1, -1, 127, 128, 255, 256, -129, 32767, 32768, -32769, 65535, 65536, 2**31 - 1, -2**31,
                     4294967295, 4294967296, 123456789012, -987654321098], np.int64)
    # floats truncate toward zero; beyond the dtype's range, and for NaN and inf, every backend
    # follows the core's float -> int rule (tests/core/test_float_to_int_casts.py)
    floats = np.array([0.0, 0.7, -0.7, 1.9, -1.9, 127.5, -128.5, 100.25, 120.9, -99.5, 200.7, -217.6, 255.9, 300.5,
                       40000.25, -40000.25, 65536.5, 2e9, -2e9, 3e9, 4294967040.0, 4294967296.0, 1e10, np.nan, np.inf],
                      np.float32)
    i, f = rg.input(wide.shape, "int64", name="i"), rg.input(floats.shape, "float32", name="f")
    outs = [i.astype(dt), i.astype("int32").astype(dt), f.astype(dt), i.astype(dt).astype("int64"),
            i.astype(dt).astype("float32"), (i.astype(dt).astype("bool"))]
    if dt != "uint32":
        outs += [i.astype(dt).astype("uint8"), i.astype(dt).astype("int8"), i.astype(dt).astype("int16")]
    wgpu_equals_cpu([i, f], outs, wide, floats)


@pytest.mark.parametrize("dt", DTYPES)
def test_reductions_scans_and_movement_keep_cpu_values(dt):
    rng = np.random.default_rng(11)
    a = extremes(dt, (5, 7), rng)
    x = rg.input(a.shape, dt, name="x")
    idx = rg.input((3,), "int64", name="idx")
    outs = [rg.sum(x, 1), rg.prod(x, 0), rg.cumsum(x, 1), rg.cumprod(x, 0), rg.cumsum(x, 1, dtype=dt), rg.sum(x, 0, dtype=dt), rg.amax(x, 1), rg.amin(x, 0),
            rg.argmax(x, axis=1), rg.transpose(x, (1, 0)) + x[0:1, :].reshape((7, 1)), rg.concat([x, x * 2], axis=0),
            rg.flip(x, axes=(1,)), rg.sort(x, 1)[0], rg.take(x, idx, axis=0) * 3]
    wgpu_equals_cpu([x, idx], outs, a, np.array([4, 0, 2]))


def test_int8_sums_with_a_narrow_result_wrap():
    a = np.array([[100, 100, 100], [-128, -128, 1]], np.int8)
    x = rg.input(a.shape, "int8", name="x")
    outs = [rg.sum(x, 1).astype("int8"), rg.cumsum(x, 1).astype("int8")]
    for backend in ("cpu", "wgpu"):
        got = rg.function([x], outs, backend=backend)(a)
        same(got[0], np.array([44, 1], np.int8))
        same(got[1], np.array([[100, -56, 44], [-128, 0, 1]], np.int8))


def test_bitcasts_between_same_size_integers():
    a = np.array([0, 1, -1, 127, -128], np.int8)
    u = np.array([0, 1, 2**31, 2**32 - 1, 0x3F800000], np.uint32)
    x, w = rg.input(a.shape, "int8", name="x"), rg.input(u.shape, "uint32", name="w")
    outs = [rg.bitcast(x, "uint8"), rg.bitcast(w, "int32"), rg.bitcast(rg.bitcast(w, "int32"), "uint32"),
            rg.bitcast(w, "float32"), rg.bitcast(rg.bitcast(w, "float32"), "uint32")]
    got = rg.function([x, w], outs, backend="wgpu")(a, u)
    same(got[0], a.view(np.uint8))
    same(got[1], u.view(np.int32))
    same(got[2], u)
    np.testing.assert_array_equal(got[3].view(np.uint32), u)
    same(got[4], u)


def test_int64_division_remainder_and_power_are_exact_beyond_32_bits():
    a = np.array([2**40 + 3, -(2**40) - 3, 2**62, -(2**63), 7, -7, 2**31, -(2**31), 123456789012345, 5], np.int64)
    b = np.array([3, 3, -(2**33) + 1, -1, 2**35, 2**35, -1, -1, -987654, 1], np.int64)
    e = np.array([0, 1, 2, 3, 5, 17, 31, 40, 63, 64], np.int64)
    x, y, p = (rg.input((10,), "int64", name=n) for n in ("x", "y", "p"))
    outs = [x // y, x % y, rg.fmod(x, y), x ** p, y ** p]
    wgpu_equals_cpu([x, y, p], outs, a, b, e)


@pytest.mark.parametrize("dt", DTYPES)
def test_scatters_that_sum_or_multiply_wrap_as_cpu(dt):
    info = np.iinfo(dt)
    a = np.array([[info.max, info.min, 5], [3, info.max, info.max]], dt)
    index = np.array([[0, 0, 2], [1, 1, 1]])
    x, i = rg.input(a.shape, dt, name="x"), rg.input(index.shape, "int64", name="i")
    outs = [x.scatter_add(1, i, x), rg.scatter_reduce(x, 1, i, x, "sum"), rg.scatter_reduce(x, 1, i, x, "amax"),
            rg.index_add(x, 0, np.array([1, 1]), x)]
    if dt != "uint32":  # uint32 is computed in int64 words, whose 'prod' scatter has no atomic (refused)
        outs.append(rg.scatter_reduce(x, 1, i, x, "prod"))
    wgpu_equals_cpu([x, i], outs, a, index)
