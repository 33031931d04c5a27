"""Checkpoints: exact resumption, contents, errors naming the file, and the manager's rotation."""

from __future__ import annotations

import doctest
import importlib
import os

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import optim, schedulers
from rustyasg.nn.checkpoint import (CheckpointManager, CorruptFileError, MismatchError, load_checkpoint,
                                    read_checkpoint, save_checkpoint)

STEPS = 8


def make_run(backend, seed=0):
    """A model with dropout (an RNG) and batch norm (buffers), AdamW with two groups, a schedule, clipping."""
    model = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    model.set_rng(1000 + seed)  # one stream for the model; a fresh run must get it from the checkpoint
    init = np.random.default_rng(seed)
    for p in model.parameters():
        p.assign(init.normal(size=p.shape).astype(np.float32) * 0.5)
    params = model.named_parameters()
    opt = optim.AdamW([{"params": [v for k, v in params.items() if k.endswith("weight")], "weight_decay": 0.05},
                       {"params": [v for k, v in params.items() if k.endswith("bias")], "weight_decay": 0.0}],
                      lr=0.02, amsgrad=True)
    sched = schedulers.WarmupCosineAnnealingLR(opt, warmup_steps=3, total_steps=STEPS)
    x = rg.input(("B", 5), name="x")
    y = rg.input(("B",), "int64", name="y")
    loss = nn.cross_entropy(model(x), y, label_smoothing=0.1)
    step = rg.function([x, y], loss, updates={**opt.updates(loss, clip_grad_norm=1.0), **model.state_updates()},
                       backend=backend)
    return model, opt, sched, step


def batches():
    r = np.random.default_rng(42)
    return [(r.normal(size=(6, 5)).astype(np.float32), r.integers(0, 3, size=6)) for _ in range(STEPS)]


def train(run, data):
    model, opt, sched, step = run
    for x, y in data:
        step(x, y)
        sched.step()


def test_resume_continues_exactly(tmp_path, backend):
    data = batches()
    straight = make_run(backend)
    train(straight, data)

    first = make_run(backend)
    train(first, data[: STEPS // 2])
    path = save_checkpoint(tmp_path / "half.safetensors", model=first[0], optimizer=first[1], scheduler=first[2],
                           step=STEPS // 2, metadata={"run": "resume-test", "data": [1, 2]})

    resumed = make_run(backend, seed=99)  # fresh objects, other initial weights and RNG seeds
    ckpt = load_checkpoint(path, model=resumed[0], optimizer=resumed[1], scheduler=resumed[2])
    assert ckpt.step == STEPS // 2 and ckpt.metadata == {"run": "resume-test", "data": [1, 2]}
    train(resumed, data[STEPS // 2:])

    expected, got = straight[0].state_dict(), resumed[0].state_dict()
    assert list(expected) == list(got)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
    for a, b in zip(straight[0].rng_states().values(), resumed[0].rng_states().values()):
        assert a.value() == b.value()
    assert straight[2].get_last_lr() == resumed[2].get_last_lr()
    sa, sb = straight[1].state_dict(), resumed[1].state_dict()
    for i in sa["state"]:
        for k in sa["state"][i]:
            np.testing.assert_array_equal(sb["state"][i][k], sa["state"][i][k])


def test_contents_and_load_before_tracing(tmp_path):
    model, opt, sched, step = make_run("reference")
    train((model, opt, sched, step), batches()[:2])
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched, step=2,
                           metrics={"loss": 0.25})
    ckpt = read_checkpoint(path)
    assert set(ckpt.model) == set(model.state_dict())
    assert ckpt.rng.keys() == {"rng"} and ckpt.metrics == {"loss": 0.25}
    assert ckpt.optimizer["class"] == "AdamW" and ckpt.optimizer["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(ckpt.optimizer["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert ckpt.scheduler["state"]["last_epoch"] == 2

    fresh = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    assert fresh.rng_states() == {}  # modules create their RNG on first use...
    load_checkpoint(path, model=fresh)  # ...so loading creates the root's, before any graph exists
    assert fresh.rng_states()["rng"].value() == model.rng_states()["rng"].value()

    # per-module streams (no shared RNG) are created by name too
    lazy = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    x = rg.input((3, 2), name="x")
    rg.function([x], lazy(x), backend="reference")(np.ones((3, 2), np.float32))
    save_checkpoint(tmp_path / "lazy.safetensors", model=lazy)
    lazy_fresh = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    load_checkpoint(tmp_path / "lazy.safetensors", model=lazy_fresh)
    assert list(lazy_fresh.rng_states()) == ["1.rng"]
    assert lazy_fresh.rng_states()["1.rng"].value() == lazy.rng_states()["1.rng"].value()


def test_errors_name_the_file_keys_and_shapes(tmp_path):
    model, opt, sched, _ = make_run("reference")
    path = save_checkpoint(tmp_path / "e.safetensors", model=model, optimizer=opt, scheduler=sched)
    other = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))
    with pytest.raises(MismatchError) as info:
        load_checkpoint(path, model=other)
    assert str(path) in str(info.value) and "4.weight is (3, 16) in the file but (4, 16)" in str(info.value)

    w = rg.variable(np.zeros(3, np.float32), name="w")
    with pytest.raises(MismatchError, match="AdamW, not SGD"):
        load_checkpoint(path, optimizer=optim.SGD([w]))
    with pytest.raises(MismatchError, match="2 param groups saved, 1 here"):
        load_checkpoint(path, optimizer=optim.AdamW([w]))
    plain = tmp_path / "plain.safetensors"
    save_checkpoint(plain, model={"w": w})
    with pytest.raises(MismatchError, match="holds no optimizer state"):
        load_checkpoint(plain, model={"w": w}, optimizer=optim.SGD([w]))
    with pytest.raises(MismatchError, match="missing keys: v"):
        load_checkpoint(plain, model={"w": w, "v": rg.variable(np.zeros(2), name="v")})

    raw = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(CorruptFileError, match="cut.safetensors"):
        load_checkpoint(cut, model=model)
    nn.serialization.save_safetensors(model, tmp_path / "weights.safetensors")
    with pytest.raises(MismatchError, match="not a RustyASG checkpoint"):
        load_checkpoint(tmp_path / "weights.safetensors", model=model)


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "m.safetensors", metadata={"bad": object()})


def test_manager_keeps_last_and_best_and_rescans(tmp_path):
    w = rg.variable(np.zeros(2, np.float32), name="w")
    mgr = CheckpointManager(tmp_path, max_to_keep=2, keep_best=2, metric="acc", mode="max")
    accs = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.8, 5: 0.7, 6: 0.1}
    for step, acc in accs.items():
        w.assign(np.full(2, step, np.float32))
        mgr.save(step, model={"w": w}, metrics={"acc": acc})
    assert mgr.steps == [2, 4, 5, 6] and mgr.best_step == 2 and mgr.latest_step == 6
    assert sorted(os.listdir(tmp_path)) == [f"ckpt-{s:08d}.safetensors" for s in (2, 4, 5, 6)]

    (tmp_path / ".ckpt-00000007.safetensors.abc123.tmp").write_bytes(b"half a checkpoint")
    again = CheckpointManager(tmp_path, max_to_keep=2, keep_best=2, metric="acc", mode="max")
    assert again.steps == [2, 4, 5, 6] and again.best() == mgr.best()
    assert not any(n.endswith(".tmp") for n in os.listdir(tmp_path))  # debris of a killed save is removed
    assert again.restore_best(model={"w": w}).step == 2 and w.value()[0] == 2
    assert again.restore_latest(model={"w": w}).step == 6 and w.value()[0] == 6

    with pytest.raises(ValueError, match="metrics"):
        again.save(7, model={"w": w})
    last_only = CheckpointManager(tmp_path / "sub", max_to_keep=1)
    for step in (10, 20, 30):
        last_only.save(step, model={"w": w})
    assert last_only.steps == [30] and last_only.best() is None


def test_restore_latest_skips_a_damaged_file(tmp_path):
    w = rg.variable(np.zeros(2, np.float32), name="w")
    mgr = CheckpointManager(tmp_path, max_to_keep=3)
    for step in (1, 2):
        w.assign(np.full(2, step, np.float32))
        mgr.save(step, model={"w": w})
    raw = bytearray(mgr.latest().read_bytes())
    raw[-1] ^= 0xFF  # bit rot in the newest file's data
    mgr.latest().write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="unreadable"):
        ckpt = mgr.restore_latest(model={"w": w})
    assert ckpt.step == 1 and w.value()[0] == 1


@pytest.mark.parametrize("name", ['rustyasg.nn.checkpoint'])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed, f"{result.failed} of {result.attempted} examples failed in {name}"
