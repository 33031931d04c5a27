"""Buffer pool reuse by size class, uploads and staged readback."""

import numpy as np
import pytest

from rustyasg.wgpu.buffers import MIN_BUFFER_BYTES, BufferPool, Readback, size_class, upload


def test_size_class_bounds():
    for n in list(range(0, 5000, 7)) + [2**k + d for k in range(8, 30) for d in (-1, 0, 1)]:
        c = size_class(n)
        assert c >= max(n, MIN_BUFFER_BYTES) and c % 16 == 0
        if n > MIN_BUFFER_BYTES:
            assert c <= 1.25 * n + 16, (n, c)


def test_pool_reuses_released_buffer_of_same_class(ctx):
    pool = BufferPool(ctx)
    a = pool.acquire(10_000)
    pool.release(a)
    b = pool.acquire(9_000)  # same class as 10_000
    assert b is a
    assert pool.stats.allocations == 1 and pool.stats.reuses == 1
    c = pool.acquire(9_000)  # a is live: a second buffer
    assert c is not a and pool.stats.allocations == 2
    d = pool.acquire(100_000)  # other class
    assert d.size == size_class(100_000) and pool.stats.allocations == 3
    for buf in (b, c, d):
        pool.release(buf)
    assert pool.free_bytes == 2 * size_class(10_000) + size_class(100_000)
    pool.trim()
    assert pool.free_bytes == 0


def test_pool_rejects_double_release(ctx):
    pool = BufferPool(ctx)
    a = pool.acquire(64)
    pool.release(a)
    with pytest.raises(ValueError, match="released twice"):
        pool.release(a)


def test_pool_refuses_beyond_adapter_limit(ctx):
    with pytest.raises(MemoryError, match="max-buffer-size"):
        BufferPool(ctx).acquire(ctx.limits["max-buffer-size"] * 2)


@pytest.mark.parametrize("dtype,shape", [(np.float32, (3, 5)), (np.int32, (7,)), (np.float16, (3,)), (np.uint8, (5,))])
def test_upload_readback_roundtrip(ctx, pool, readback, rng, dtype, shape):
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    buf = upload(ctx, x, pool)
    np.testing.assert_array_equal(readback.read_array(buf, shape, dtype), x)


def test_read_many_one_staging_buffer(ctx, pool, rng):
    rb = Readback(ctx)
    xs = [rng.standard_normal(n).astype(np.float32) for n in (1, 17, 1000)]
    bufs = [upload(ctx, x, pool) for x in xs]
    raw = rb.read_many([(b, x.nbytes) for b, x in zip(bufs, xs)])
    for r, x in zip(raw, xs):
        np.testing.assert_array_equal(np.frombuffer(r, np.float32), x)
    rb.read(bufs[0], 4)
    rb.read(bufs[1], 68)
    assert rb.staging_allocations == 2  # one for the batch, one small class reused by both single reads


def test_readback_sees_latest_write(ctx, pool, readback):
    buf = upload(ctx, np.zeros(8, np.float32), pool)
    upload(ctx, np.arange(8, dtype=np.float32), buffer=buf)
    np.testing.assert_array_equal(readback.read_array(buf, (8,), np.float32), np.arange(8))
