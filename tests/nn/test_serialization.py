"""SafeTensors state dicts: PyTorch-compatible files, atomic writes, and errors that name the file."""

from __future__ import annotations

import doctest
import importlib
import os

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn.serialization import (CorruptFileError, MismatchError, atomic_write, load_safetensors,
                                       load_safetensors_into, safetensors_metadata, save_safetensors)


def arrays_of_every_dtype(rng):
    return {"f32": rng.normal(size=(3, 4)).astype(np.float32), "f64": rng.normal(size=5),
            "f16": rng.normal(size=(2, 2)).astype(np.float16), "i64": rng.integers(-9, 9, size=(4,)),
            "i32": rng.integers(0, 9, size=(2, 3)).astype(np.int32), "mask": rng.random(6) < 0.5,
            "scalar": np.array(3.5), "count": np.array(7, np.int64),
            "strided": rng.normal(size=(4, 6))[:, ::2]}  # non-contiguous input is fine


def test_roundtrip_readable_by_safetensors_numpy_and_torch(tmp_path, rng):
    arrays = arrays_of_every_dtype(rng)
    path = tmp_path / "state.safetensors"
    save_safetensors(arrays, path, metadata={"epoch": 3})
    for loaded in (load_safetensors(path), safetensors.numpy.load_file(path),
                   {k: v.numpy() for k, v in safetensors.torch.load_file(path).items()}):
        assert set(loaded) == set(arrays)
        for k, a in arrays.items():
            assert loaded[k].dtype == a.dtype and loaded[k].shape == a.shape, k
            np.testing.assert_array_equal(loaded[k], a)
    assert safetensors_metadata(path)["epoch"] == "3"
    assert [p for p in os.listdir(tmp_path)] == ["state.safetensors"]  # no temporary left behind


def _pair():
    ours = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(),
                                 torch.nn.Linear(6, 3)).eval()
    ours.eval()
    return ours, theirs


def _forward(model, x):
    xs = rg.input(x.shape, "float32", name="x")
    return rg.function([xs], model(xs), backend="reference")(x)


def test_module_files_move_between_frameworks(tmp_path, rng):
    ours, theirs = _pair()
    x = rng.normal(size=(5, 4)).astype(np.float32)
    # ours -> file -> torch
    for p in ours.parameters():
        p.assign(rng.normal(size=p.shape).astype(np.float32))
    ours.named_buffers()["1.running_var"].assign(rng.uniform(0.5, 2.0, size=6).astype(np.float32))
    save_safetensors(ours, tmp_path / "ours.safetensors")
    theirs.load_state_dict(safetensors.torch.load_file(tmp_path / "ours.safetensors"), strict=True)
    with torch.no_grad():
        np.testing.assert_allclose(_forward(ours, x), theirs(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    # torch -> file -> a fresh model of ours
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    safetensors.torch.save_file(theirs.state_dict(), tmp_path / "theirs.safetensors")
    fresh, _ = _pair()
    load_safetensors_into(fresh, tmp_path / "theirs.safetensors")
    with torch.no_grad():
        np.testing.assert_allclose(_forward(fresh, x), theirs(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_mismatch_names_file_keys_and_shapes_and_assigns_nothing(tmp_path):
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 3))
    before = model.state_dict()
    bad = dict(before)
    bad["1.weight"] = np.zeros((3, 7), np.float32)
    bad["2.weight"] = np.zeros(1, np.float32)
    del bad["0.bias"]
    path = tmp_path / "bad.safetensors"
    save_safetensors(bad, path)
    with pytest.raises(MismatchError) as info:
        load_safetensors_into(model, path)
    text = str(info.value)
    for needle in (str(path), "missing keys: 0.bias (6,)", "unexpected keys: 2.weight (1,)",
                   "1.weight is (3, 7) in the file but (3, 6)"):
        assert needle in text, text
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # checked before anything was assigned
    with pytest.raises(MismatchError, match="shape mismatches"):
        load_safetensors_into(model, path, strict=False)  # shapes are never negotiable


def test_truncated_corrupted_and_missing_files(tmp_path, rng):
    arrays = {"a": rng.normal(size=(64, 64)), "b": rng.normal(size=10)}
    path = tmp_path / "x.safetensors"
    save_safetensors(arrays, path)
    raw = path.read_bytes()

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="truncated.safetensors"):
        load_safetensors(truncated)

    header_len = int.from_bytes(raw[:8], "little")
    flipped = bytearray(raw)
    flipped[8 + header_len + 1000] ^= 0xFF  # one byte inside tensor data
    corrupted = tmp_path / "corrupted.safetensors"
    corrupted.write_bytes(bytes(flipped))
    with pytest.raises(CorruptFileError, match=r"corrupted.safetensors: corrupted data: checksum mismatch for \['a'\]"):
        load_safetensors(corrupted)
    assert load_safetensors(corrupted, verify=False)["a"].shape == (64, 64)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + bytes(100))
    with pytest.raises(CorruptFileError, match="garbage.safetensors"):
        load_safetensors(garbage)
    with pytest.raises(CorruptFileError, match="nothing.safetensors: no such file"):
        load_safetensors(tmp_path / "nothing.safetensors")


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.safetensors"
    save_safetensors({"w": np.ones(3)}, path)

    def broken(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    np.testing.assert_array_equal(load_safetensors(path)["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["keep.safetensors"]


@pytest.mark.parametrize("name", ['rustyasg.nn.serialization'])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
