"""rg.manual_seed makes a whole run reproducible: weight init, dropout streams and unseeded RNGs."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.nn as nn


@pytest.fixture(autouse=True)
def back_to_the_default_seed():
    yield
    rg.manual_seed(0)


def run(seed: int):
    rg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    x = rg.input((8, 4), name="x")
    out = rg.function([x], model(x), backend="reference")
    batch = np.ones((8, 4), np.float32)
    noise = rg.function([], rg.RNG().normal((5,)), backend="reference")
    return model.state_dict(), [out(batch), out(batch)], noise()


def test_the_same_seed_repeats_everything_and_another_seed_does_not():
    weights, outs, noise = run(11)
    weights2, outs2, noise2 = run(11)
    for k in weights:
        np.testing.assert_array_equal(weights[k], weights2[k])
    for a, b in zip(outs, outs2):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(noise, noise2)
    assert not np.array_equal(outs[0], outs[1])  # dropout draws afresh each step
    weights3, outs3, noise3 = run(12)
    assert not np.array_equal(weights["0.weight"], weights3["0.weight"])
    assert not np.array_equal(noise, noise3)
    assert rg.initial_seed() == 12


def test_bad_seeds_are_refused():
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63\)"):
        rg.manual_seed(-1)
