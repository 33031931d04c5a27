"""ServedModel in-process: request checks, batching with bucket padding, non-batchable programs."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.serve import RequestError, ServedModel
from rustyasg.serve.model import bucket_sizes


def two_input_model():
    ids = rg.input((None, 6), "int64", name="ids")
    mask = rg.input((None, 6), "float32", name="mask")
    table = rg.variable(np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32), name="table")
    emb = rg.embedding(table, ids)
    out = (emb * rg.expand_dims(mask, -1)).sum(axis=1)
    return rg.function([ids, mask], [out, mask.sum(axis=1)], backend="cpu")


def test_bucket_sizes():
    assert bucket_sizes(1) == [1]
    assert bucket_sizes(16) == [1, 2, 4, 8, 16]
    assert bucket_sizes(24) == [1, 2, 4, 8, 16, 24]


def test_batched_rows_equal_separate_calls_and_padding_is_dropped():
    fn = two_input_model()
    model = ServedModel(fn, max_batch=8)
    assert model.batchable and model.output_names == ["output0", "output1"]
    rng = np.random.default_rng(1)
    requests = []
    for n in (1, 2, 2):   # 5 rows: padded to the bucket of 8
        ids = rng.integers(0, 10, (n, 6))
        mask = rng.integers(0, 2, (n, 6)).astype(np.float32)
        requests.append(model.check({"ids": ids.tolist(), "mask": mask})[0])
    assert model.bucket(5) == 8
    batched = model.run_batch(requests)
    for req, got in zip(requests, batched):
        want = fn(req["ids"], req["mask"])
        assert got["output0"].shape[0] == req["ids"].shape[0]
        np.testing.assert_allclose(got["output0"], want[0], rtol=1e-6)
        np.testing.assert_allclose(got["output1"], want[1], rtol=1e-6)
    assert model.warmup() == [1, 2, 4, 8]


def test_request_checks_name_the_problem():
    model = ServedModel(two_input_model(), max_batch=4)
    ok = {"ids": [[1] * 6], "mask": [[1.0] * 6]}
    arrays, rows = model.check(ok)
    assert rows == 1 and arrays["ids"].dtype == np.int64
    cases = [
        ({"ids": [[1.5] * 6], "mask": [[1.0] * 6]}, "must hold integers (int64); got fractions"),
        ({"ids": [[1] * 6], "mask": [[1.0] * 6] * 2}, "inputs disagree on the batch size: 'mask' has 2 rows, the others 1"),
        ({"ids": np.zeros((1, 6), np.float32), "mask": [[1.0] * 6]}, "input 'ids' has dtype float32; expected int64"),
        ({"ids": [[1] * 6]}, "missing: mask"),
        ([1, 2], "the request must map input names to arrays"),
        ({"ids": [[1] * 6] * 5, "mask": [[1.0] * 6] * 5}, "at most 4 per request"),
    ]
    for request, message in cases:
        with pytest.raises(RequestError) as info:
            model.check(request)
        assert message in str(info.value)


def test_a_program_without_a_batch_dimension_runs_request_by_request():
    x = rg.input((3,), "float32", name="x")
    fn = rg.function([x], x * 2.0, backend="cpu")
    model = ServedModel(fn, max_batch=16)
    assert not model.batchable and model.max_batch == 1
    reqs = [model.check({"x": [1, 2, 3]})[0], model.check({"x": [0, -1, 4]})[0]]
    out = model.run_batch(reqs)
    np.testing.assert_array_equal(out[1]["output"], [0, -2, 8])
    with pytest.raises(RequestError, match=r"dimension 0 must be 3"):
        model.check({"x": [1, 2]})
