"""Matmuls that read transposed operands and write transposed results in place.

The compiler folds a ``transpose`` feeding a matmul into the matmul's strides, and lets a
matmul write straight into the layout of a ``transpose`` that is its only reader (the head
split and merge of attention). Results are checked against float64 numpy on random inputs,
and the launch count shows that no transpose kernel ran.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.backends import get_backend


@pytest.fixture(scope="module")
def be():
    return get_backend("wgpu")


def _heads(x, n, t, h, d):
    return rg.transpose(rg.reshape(x, (n, t, h, d)), axes=(0, 2, 1, 3))


@pytest.mark.parametrize("n,t,h,d", [(2, 16, 4, 8), (3, 5, 2, 3), (1, 7, 3, 4)])
def test_attention_heads_split_and_merge_without_transpose_kernels(be, rng, n, t, h, d):
    q, k, v = (rg.input((n, t, h * d), name=name) for name in "qkv")
    scores = rg.matmul(_heads(q, n, t, h, d), rg.transpose(rg.reshape(k, (n, t, h, d)), axes=(0, 2, 3, 1)))
    out = rg.matmul(scores, _heads(v, n, t, h, d))
    merged = rg.reshape(rg.transpose(out, axes=(0, 2, 1, 3)), (n, t, h * d))
    f = rg.function([q, k, v], merged, backend=be)
    qv, kv, vv = (rng.standard_normal((n, t, h * d)).astype(np.float32) for _ in range(3))
    qh, kh, vh = (x.astype(np.float64).reshape(n, t, h, d).transpose(0, 2, 1, 3) for x in (qv, kv, vv))
    want = ((qh @ kh.transpose(0, 1, 3, 2)) @ vh).transpose(0, 2, 1, 3).reshape(n, t, h * d)
    np.testing.assert_allclose(f(qv, kv, vv), want, rtol=1e-4, atol=1e-4)
    assert f.memory_report(qv, kv, vv)["launches"] == 2, "two products, no transpose kernels"


def test_a_result_that_is_also_an_output_keeps_its_layout(be, rng):
    a, b = rg.input((2, 3, 5, 4), name="a"), rg.input((2, 3, 4, 6), name="b")
    prod = rg.matmul(a, b)
    f = rg.function([a, b], [prod, rg.transpose(prod, axes=(0, 2, 1, 3))], backend=be)
    av, bv = rng.standard_normal((2, 3, 5, 4)).astype(np.float32), rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    want = av.astype(np.float64) @ bv
    got, got_t = f(av, bv)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_t, want.transpose(0, 2, 1, 3), rtol=1e-5, atol=1e-5)


def test_gradients_through_folded_head_transposes_match_the_reference(be, rng):
    n, t, h, d = 2, 6, 2, 4
    q, k = rg.input((n, t, h * d), name="q"), rg.input((n, t, h * d), name="k")
    w = rg.variable(rng.standard_normal((h * d, h * d)).astype(np.float32), name="w")
    scores = rg.matmul(_heads(q @ w, n, t, h, d), rg.transpose(rg.reshape(k, (n, t, h, d)), axes=(0, 2, 3, 1)))
    mixed = rg.reshape(rg.transpose(rg.matmul(rg.softmax(scores, axis=-1), _heads(k, n, t, h, d)), axes=(0, 2, 1, 3)),
                       (n, t, h * d))
    loss = rg.sum(rg.tanh(mixed) * rg.constant(rng.standard_normal((n, t, h * d)).astype(np.float32)))
    grads = rg.grad(loss, [w, q, k])
    qv, kv = (rng.standard_normal((n, t, h * d)).astype(np.float32) for _ in range(2))
    got = rg.function([q, k], [loss, *grads], backend=be)(qv, kv)
    want = rg.function([q, k], [loss, *grads], backend=get_backend("reference"))(qv, kv)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=2e-4, atol=2e-5)


def _random_case(rng):
    """A batched product whose operands are random permutations of random sources, and
    whose result is read through a random permutation that keeps the last two axes' order
    or swaps them."""
    batch = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    m, k, n = (int(s) for s in rng.integers(1, 9, size=3))
    shapes = [batch + (m, k), batch[int(rng.integers(0, len(batch) + 1)):] + (k, n)]
    perms, sources = [], []
    for shape in shapes:
        perm = tuple(int(p) for p in rng.permutation(len(shape)))
        inv = tuple(int(i) for i in np.argsort(perm))
        perms.append(inv)
        sources.append(tuple(shape[p] for p in perm))  # transpose(source, inv) has `shape`
    out_perm = tuple(int(p) for p in rng.permutation(len(batch))) + (len(batch), len(batch) + 1)
    return shapes, perms, sources, out_perm


def test_random_permutations_of_operands_and_results_match_numpy(be, rng):
    for _ in range(12):
        shapes, perms, sources, out_perm = _random_case(rng)
        xs = [rg.input(s, name=f"x{i}") for i, s in enumerate(sources)]
        a, b = (rg.transpose(x, axes=p) for x, p in zip(xs, perms))
        prod = rg.matmul(a, b)
        f = rg.function(xs, rg.transpose(prod, axes=out_perm) * 1.0, backend=be)
        vals = [rng.standard_normal(s).astype(np.float32) for s in sources]
        av, bv = (v.astype(np.float64).transpose(p) for v, p in zip(vals, perms))
        want = (av @ bv).transpose(out_perm)
        np.testing.assert_allclose(f(*vals), want, rtol=1e-5, atol=1e-5,
                                   err_msg=f"shapes {shapes} sources {sources} perms {perms} out {out_perm}")


def test_float16_heads_read_in_place(be, rng):
    """float16 (stored as f32 on adapters without ``shader-f16``) through the same folded layouts."""
    n, t, h, d = 2, 8, 2, 8
    q, k = rg.input((n, t, h * d), "float16", name="q"), rg.input((n, t, h * d), "float16", name="k")
    scores = rg.matmul(_heads(q, n, t, h, d), rg.transpose(rg.reshape(k, (n, t, h, d)), axes=(0, 2, 3, 1)))
    f = rg.function([q, k], scores, backend=be)
    qv, kv = ((rng.standard_normal((n, t, h * d)) * 0.5).astype(np.float16) for _ in range(2))
    qh, kh = (x.astype(np.float64).reshape(n, t, h, d).transpose(0, 2, 1, 3) for x in (qv, kv))
    want = qh @ kh.transpose(0, 1, 3, 2)
    np.testing.assert_allclose(f(qv, kv).astype(np.float64), want, rtol=0, atol=2e-3 * np.abs(want).max())
    assert f.memory_report(qv, kv)["launches"] == 1
