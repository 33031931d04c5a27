"""What a checkpoint's header promises is verified: a relabelled dtype or shape fails the checksum, a
missing optimizer moment is a MismatchError naming it, and tensors the model cannot take are
rejected from the header before their bytes are read (measured as the loading process's peak RSS)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
import safetensors.numpy

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn.checkpoint import (CorruptFileError, MismatchError, load_checkpoint, read_checkpoint,
                                    save_checkpoint)
from rustyasg.nn.serialization import load_safetensors, safetensors_header, safetensors_metadata, save_safetensors


def relabel(path, out, old: bytes, new: bytes):
    """Rewrite one entry of the JSON header in place (same length, so the data offsets stay valid)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n]
    assert len(old) == len(new) and header.count(old) == 1, header
    out.write_bytes(raw[:8] + header.replace(old, new) + raw[8 + n:])
    return out


def trained_adam(seed=0, steps=1):
    gen = np.random.default_rng(seed)
    model = nn.Linear(3, 2)
    opt = nn.optim.Adam(model.parameters(), lr=0.1)
    x = rg.input((4, 3), name="x")
    loss = rg.sum(model(x) ** 2)
    step = rg.function([x], loss, updates=opt.updates(loss), backend="reference")
    for _ in range(steps):
        step(gen.standard_normal((4, 3)).astype(np.float32))
    return model, opt


def test_a_header_that_relabels_dtype_or_shape_fails_the_checksum(tmp_path):
    gen = np.random.default_rng(1)
    w = rg.variable(gen.standard_normal((2, 3)).astype(np.float32), name="w")
    path = save_checkpoint(tmp_path / "ok.safetensors", model={"w": w})
    as_int = relabel(path, tmp_path / "i32.safetensors", b'"dtype":"F32"', b'"dtype":"I32"')
    # Same byte count: safetensors itself reads it happily, as garbage integers.
    assert safetensors.numpy.load_file(str(as_int))["model/w"].dtype == np.int32
    with pytest.raises(CorruptFileError, match=r"i32.safetensors: corrupted data: checksum mismatch for "
                                               r"\['model/w'\].*model/w read as int32\(2, 3\)"):
        read_checkpoint(as_int)
    with pytest.raises(CorruptFileError, match=r"checksum mismatch for \['model/w'\]"):
        load_checkpoint(as_int, model={"w": rg.variable(np.zeros((2, 3), np.int32), name="w")})
    transposed = relabel(path, tmp_path / "t.safetensors", b'"shape":[2,3]', b'"shape":[3,2]')
    with pytest.raises(CorruptFileError, match=r"model/w read as float32\(3, 2\)"):
        read_checkpoint(transposed)
    with pytest.raises(MismatchError, match=r"w is \(3, 2\) in the file but \(2, 3\)"):  # the header check
        load_checkpoint(transposed, model={"w": w})
    np.testing.assert_array_equal(read_checkpoint(path).model["w"], w.value())


def test_files_with_the_older_bytes_only_checksums_still_verify(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "old.safetensors"
    crc = zlib.crc32(a.tobytes())
    safetensors.numpy.save_file({"a": a}, str(path), metadata={"rustyasg.crc32": json.dumps({"a": crc})})
    np.testing.assert_array_equal(load_safetensors(path)["a"], a)
    bad = tmp_path / "old-bad.safetensors"
    safetensors.numpy.save_file({"a": a}, str(bad), metadata={"rustyasg.crc32": json.dumps({"a": crc ^ 1})})
    with pytest.raises(CorruptFileError, match=r"checksum mismatch for \['a'\]"):
        load_safetensors(bad)


def without(path, out, *drop):
    """A copy of a checkpoint with tensors removed (checksums rewritten: the file itself is sound)."""
    arrays = {k: v for k, v in load_safetensors(path).items() if k not in drop}
    meta = {k: v for k, v in safetensors_metadata(path).items() if not k.startswith("rustyasg.")}
    save_safetensors(arrays, out, meta)
    return out


def test_a_missing_optimizer_moment_is_a_mismatch_naming_the_key(tmp_path):
    model, opt = trained_adam(steps=2)
    path = save_checkpoint(tmp_path / "full.safetensors", model=model, optimizer=opt, step=2)
    assert {"optimizer/0/exp_avg", "optimizer/0/exp_avg_sq", "optimizer/0/step"} <= set(safetensors_header(path))
    partial = without(path, tmp_path / "partial.safetensors", "optimizer/0/exp_avg")

    # A fresh optimizer (no state yet) knows what its rule keeps.
    fresh_model, fresh_opt = nn.Linear(3, 2), None
    fresh_opt = nn.optim.Adam(fresh_model.parameters(), lr=0.1)
    with pytest.raises(MismatchError, match=r"partial.safetensors: optimizer state is incomplete: missing "
                                            r"optimizer/0/exp_avg \(.*weight\)"):
        load_checkpoint(partial, model=fresh_model, optimizer=fresh_opt)

    # A live optimizer keeps its values untouched: nothing is assigned when a check fails.
    live_model, live_opt = trained_adam(seed=5, steps=3)
    before = {k: v.value().copy() for k, v in live_opt.state[0].items()}
    weights = live_model.weight.value().copy()
    with pytest.raises(MismatchError, match=r"missing optimizer/0/exp_avg"):
        load_checkpoint(partial, model=live_model, optimizer=live_opt)
    for k, v in live_opt.state[0].items():
        np.testing.assert_array_equal(v.value(), before[k])
    np.testing.assert_array_equal(live_model.weight.value(), weights)

    # All state of one parameter gone while the live optimizer holds some for it.
    no_bias = without(path, tmp_path / "nobias.safetensors", "optimizer/1/exp_avg", "optimizer/1/exp_avg_sq",
                      "optimizer/1/step")
    with pytest.raises(MismatchError, match=r"missing optimizer/1/exp_avg \(.*bias\), optimizer/1/exp_avg_sq"):
        load_checkpoint(no_bias, model=live_model, optimizer=live_opt)

    # The complete file loads and restores the saved moments exactly.
    load_checkpoint(path, model=live_model, optimizer=live_opt)
    np.testing.assert_array_equal(live_opt.state[0]["exp_avg"].value(), opt.state[0]["exp_avg"].value())


PEAK = textwrap.dedent("""
    import sys
    import numpy as np, rustyasg.core as rg
    from rustyasg.nn.checkpoint import MismatchError, load_checkpoint, read_checkpoint

    def peak_mib():
        # VmHWM: the peak resident set since the last reset (Linux resets it on "5" > clear_refs).
        status = open("/proc/self/status").read()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024

    def reset_peak():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    extra, wrong = sys.argv[1], sys.argv[2]
    w = rg.variable(np.zeros(4, np.float32), name="w")
    reset_peak()
    base = peak_mib()
    for path in (extra, wrong):
        try:
            load_checkpoint(path, model={"w": w})
        except MismatchError as exc:
            print("ERROR", exc)
    load_checkpoint(extra, model={"w": w}, strict=False)   # the unexpected tensor is skipped, not read
    print("W", w.value().tolist())
    print("REJECTED_MIB", peak_mib() - base)
    read_checkpoint(extra)                                  # control: reading everything costs the tensor
    print("READ_ALL_MIB", peak_mib() - base)
""")


@pytest.mark.slow
def test_tensors_the_model_cannot_take_are_rejected_before_their_bytes_are_read(tmp_path):
    big = np.ones((4096, 8192), np.float32)  # 128 MiB
    w = rg.variable(np.arange(4, dtype=np.float32), name="w")
    extra = save_checkpoint(tmp_path / "extra.safetensors", model={"w": w, "huge": rg.variable(big, name="huge")})
    wrong = save_checkpoint(tmp_path / "wrong.safetensors", model={"w": rg.variable(big, name="w")})
    del big
    run = subprocess.run([sys.executable, "-c", PEAK, str(extra), str(wrong)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    out = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    errors = [line for line in run.stdout.splitlines() if line.startswith("ERROR")]
    assert "unexpected keys: huge (4096, 8192)" in errors[0]
    assert "w is (4096, 8192) in the file but (4,) in the model dict" in errors[1]
    assert out["W"] == "[0.0, 1.0, 2.0, 3.0]"
    assert float(out["REJECTED_MIB"]) < 16, run.stdout  # the 128 MiB tensors were never read
    assert float(out["READ_ALL_MIB"]) > 120, run.stdout  # ... while reading them does cost that
