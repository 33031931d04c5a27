"""`rustyasg serve`: a real uvicorn process, real HTTP clients (httpx) on loopback."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import re
import signal
import time

import httpx
import numpy as np
import pytest
from safetensors.numpy import load as st_load, save as st_save

from .conftest import ServerProcess, rows, save_mlp


def _run_client(coro):
    """Run an asyncio client to completion on a thread of its own, like a separate client program.

    The test process's main thread may already host an event loop (playwright's sync API keeps
    one running there while a browser test module is open), where ``asyncio.run`` refuses to start.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_json_safetensors_and_npy_match_the_direct_call(server, mlp_program):
    _, fn = mlp_program
    x = rows(3, 0)
    want = fn(x)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/v1/predict", json={"inputs": {"x": x.tolist()}})
        assert r.status_code == 200, r.text
        served = np.array(r.json()["outputs"]["output"], np.float32)  # float32 -> JSON -> float32 is exact
        # The server's process may round the last bit differently (its BLAS threads, its batch).
        np.testing.assert_allclose(served, want, rtol=1e-6, atol=1e-7)

        r = client.post("/v1/predict", content=st_save({"x": x}), headers={"Content-Type": "application/x-safetensors"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-safetensors"
        np.testing.assert_array_equal(st_load(r.content)["output"], served)  # binary bodies carry the exact bits

        buf = io.BytesIO()
        np.save(buf, x)
        r = client.post("/v1/predict", content=buf.getvalue(),
                        headers={"Content-Type": "application/x-npy", "Accept": "application/json"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        np.testing.assert_allclose(np.array(r.json()["outputs"]["output"], np.float32), want, rtol=1e-6, atol=1e-7)

        meta = client.get("/v1/metadata").json()
        assert meta["inputs"] == [{"name": "x", "shape": [None, 16], "dtype": "float32"}]
        assert meta["outputs"] == ["output"] and meta["batchable"] and meta["max_batch"] == 16


async def _load(url: str, n: int, fn):
    latencies, failures = [], []
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(i: int):
            x = rows(1 + i % 3, 1000 + i)
            t0 = time.perf_counter()
            r = await client.post("/v1/predict", content=st_save({"x": x}),
                                  headers={"Content-Type": "application/x-safetensors"})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                failures.append((i, r.status_code, r.text))
                return
            got = st_load(r.content)["output"]
            if got.shape != (x.shape[0], 5) or not np.allclose(got, fn(x), rtol=1e-5, atol=1e-6):
                failures.append((i, "wrong result"))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return latencies, failures, time.perf_counter() - t0


@pytest.mark.slow
def test_200_concurrent_requests_all_answered_correctly_and_batched(server, mlp_program):
    _, fn = mlp_program
    latencies, failures, wall = _run_client(_load(server.url, 200, fn))
    p50, p90, p99 = np.percentile(np.array(latencies) * 1e3, [50, 90, 99])
    print(f"\n200 concurrent requests in {wall:.2f} s: p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms")
    assert failures == []
    assert len(latencies) == 200
    text = httpx.get(server.url + "/metrics").text
    calls = float(re.search(r"^rustyasg_serve_batch_requests_count (\S+)$", text, re.M).group(1))
    answered = float(re.search(r"^rustyasg_serve_batch_requests_sum (\S+)$", text, re.M).group(1))
    assert answered >= 200
    assert answered / calls > 1.5, "concurrent requests should share model calls"


BAD_REQUESTS = [
    ("not json", {"content": b"{\"inputs\": {\"x\": [[1, 2", "headers": {"Content-Type": "application/json"}},
     400, "the body is not valid JSON"),
    ("no inputs key", {"json": {"x": [[0.0] * 16]}}, 400, '{"inputs": {"<input name>"'),
    ("unknown input", {"json": {"inputs": {"y": [[0.0] * 16]}}}, 422, "missing: x; unknown: y; the model takes x: float32[N, 16]"),
    ("wrong width", {"json": {"inputs": {"x": [[0.0] * 15]}}}, 422,
     "input 'x' has shape [1, 15]; expected x: float32[N, 16] (dimension 1 must be 16)"),
    ("wrong rank", {"json": {"inputs": {"x": [0.0] * 16}}}, 422, "(2 dimensions)"),
    ("ragged", {"json": {"inputs": {"x": [[0.0] * 16, [0.0]]}}}, 422, "is not a rectangular array of numbers"),
    ("strings", {"json": {"inputs": {"x": [["a"] * 16]}}}, 422, "is not a rectangular array of numbers"),
    ("too many rows", {"json": {"inputs": {"x": [[0.0] * 16] * 17}}}, 413, "at most 16 per request"),
    ("zero rows", {"content": st_save({"x": np.zeros((0, 16), np.float32)}),
                   "headers": {"Content-Type": "application/x-safetensors"}}, 422, "the request has 0 rows"),
    ("oversized", {"content": b"{" + b" " * 300_000 + b"}", "headers": {"Content-Type": "application/json"}},
     413, "exceeds the limit of 200000 bytes"),
    ("bad safetensors", {"content": b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}",
                         "headers": {"Content-Type": "application/x-safetensors"}}, 400, "not a valid safetensors file"),
    ("pickled npy", {"content": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                                + b" " * 40 + b"\n" + b"\x80\x04N.", "headers": {"Content-Type": "application/x-npy"}},
     400, "object arrays are refused"),
    ("form data", {"content": b"x=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "unsupported Content-Type"),
]


@pytest.mark.parametrize("name,kwargs,status,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_clear_4xx_and_the_server_stays_up(server, name, kwargs, status, message):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/v1/predict", **kwargs)
        assert r.status_code == status, r.text
        assert message in r.json()["error"]
        assert client.get("/health").json()["status"] == "ok"
        ok = client.post("/v1/predict", json={"inputs": {"x": [[0.5] * 16]}})
        assert ok.status_code == 200


def test_streamed_body_without_length_is_cut_at_the_limit(server):
    def chunks():
        for _ in range(100):
            yield b" " * 10_000

    r = httpx.post(server.url + "/v1/predict", content=chunks(), headers={"Content-Type": "application/json"},
                   timeout=30)
    assert r.status_code == 413 and "exceeds the limit" in r.json()["error"]


def test_full_queue_answers_503_and_recovers(tmp_path):
    path, fn = save_mlp(tmp_path / "m.rgp")
    srv = ServerProcess(path, "--max-batch", "1", "--max-queue", "1")
    try:
        async def burst():
            async with httpx.AsyncClient(base_url=srv.url, timeout=60,
                                         limits=httpx.Limits(max_connections=64)) as client:
                x = rows(1, 3)
                return await asyncio.gather(*(client.post("/v1/predict", json={"inputs": {"x": x.tolist()}})
                                              for _ in range(64)))

        answers = _run_client(burst())
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 503}
        assert codes.count(503) > 0 and codes.count(200) > 0
        busy = next(r for r in answers if r.status_code == 503)
        assert "requests are already waiting; retry later" in busy.json()["error"]
        assert httpx.get(srv.url + "/health").json()["status"] == "ok"
        metrics = httpx.get(srv.url + "/metrics").text
        assert f'rustyasg_serve_rejected_total{{reason="queue_full"}} {float(codes.count(503))}' in metrics
    finally:
        assert srv.stop()


def test_sigterm_finishes_requests_in_flight_then_exits_cleanly(tmp_path):
    path, fn = save_mlp(tmp_path / "m.rgp")
    srv = ServerProcess(path, "--max-batch", "8", "--max-latency-ms", "200")

    async def run():
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
            x = rows(2, 9)
            pending = [asyncio.create_task(client.post("/v1/predict", json={"inputs": {"x": x.tolist()}}))
                       for _ in range(6)]
            await asyncio.sleep(0.1)   # the requests wait in the batcher for 200 ms
            srv.proc.send_signal(signal.SIGTERM)
            return x, await asyncio.gather(*pending)

    x, answers = _run_client(run())
    assert [r.status_code for r in answers] == [200] * 6
    for r in answers:
        np.testing.assert_allclose(np.array(r.json()["outputs"]["output"], np.float32), fn(x), rtol=1e-6, atol=1e-7)
    assert srv.proc.wait(timeout=30) in (0, -signal.SIGTERM)   # uvicorn re-raises the signal after draining
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/health", timeout=5)


def test_missing_model_is_a_clear_error(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    cli = Path(sys.executable).with_name("rustyasg")
    done = subprocess.run([str(cli), "serve", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "holds no saved program (*.rgp)" in done.stderr
