"""PyTorch parity of activations, Linear, Flatten, Embedding and EmbeddingBag; dropout behaviour."""

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn

DTYPES = ["float32", "float64"]

# (our module, torch module); kinked activations get inputs away from their kinks below
ACTIVATIONS = [
    (lambda: nn.ReLU(), lambda: torch.nn.ReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    (lambda: nn.GELU(), lambda: torch.nn.GELU()),
    (lambda: nn.GELU(approximate="tanh"), lambda: torch.nn.GELU(approximate="tanh")),
    (lambda: nn.SiLU(), lambda: torch.nn.SiLU()),
    (lambda: nn.Swish(), lambda: torch.nn.SiLU()),
    (lambda: nn.Tanh(), lambda: torch.nn.Tanh()),
    (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
    (lambda: nn.ELU(alpha=0.7), lambda: torch.nn.ELU(alpha=0.7)),
    (lambda: nn.Softplus(beta=2.0, threshold=3.0), lambda: torch.nn.Softplus(beta=2.0, threshold=3.0)),
    (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    (lambda: nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1)),
]


def _away_from_kinks(rng, shape):
    x = rng.uniform(-3, 3, shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)  # relu-like kinks at 0; softplus's threshold is smooth enough


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda m: type(m[0]()).__name__ + repr(m[0]().extra_repr()))
def test_activation_parity(make, dtype, parity, rng):
    ours, theirs = make
    parity(ours(), theirs(), [_away_from_kinks(rng, (3, 5, 4))], dtype)


def test_activation_functions_match_modules(rng):
    x = rg.input((4, 6), "float64", name="x")
    pairs = [(nn.relu(x), nn.ReLU()(x)), (nn.gelu(x, "tanh"), nn.GELU("tanh")(x)), (nn.swish(x), nn.SiLU()(x)),
             (nn.softplus(x, 2.0), nn.Softplus(2.0)(x)), (nn.log_softmax(x, 0), nn.LogSoftmax(0)(x))]
    fn = rg.function([x], [t for p in pairs for t in p], backend="reference")
    vals = fn(rng.standard_normal((4, 6)))
    for a, b in zip(vals[0::2], vals[1::2]):
        np.testing.assert_array_equal(a, b)


def test_activation_bad_arguments():
    with pytest.raises(TypeError, match="unexpected argument"):
        nn.LeakyReLU(slope=0.1)
    with pytest.raises(ValueError, match="approximate"):
        nn.gelu(rg.input((2,), name="x"), "erf")
    with pytest.raises(ValueError, match="unknown activation"):
        nn.get_activation("swishy")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,bias", [((6, 5), True), ((2, 3, 5), True), ((2, 3, 4, 5), False), ((5,), True)])
def test_linear_parity(shape, bias, dtype, parity, rng):
    parity(nn.Linear(5, 3, bias=bias, dtype=dtype), torch.nn.Linear(5, 3, bias=bias), [rng.standard_normal(shape)],
           dtype)


def test_linear_default_init_distribution():
    nn.init.manual_seed(3)
    layer = nn.Linear(400, 300)
    w, b = layer.weight.value(), layer.bias.value()
    bound = 1 / np.sqrt(400)
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound  # std of U(-a, a) is a / sqrt(3)
    assert np.abs(b).max() <= bound


def test_linear_shape_error_names_layer_and_line():
    x = rg.input((None, 4), name="x")
    with pytest.raises(rg.ShapeError) as err:
        nn.Linear(5, 2)(x)
    text = str(err.value)
    assert "linear" in text and "(x.0, 4)" in text and "test_layers_basic.py" in text


def test_linear_symbolic_batch_runs_two_sizes(backend, rng):
    layer = nn.Linear(4, 2)
    x = rg.input((None, 3, 4), name="x")
    fn = rg.function([x], layer(x), backend=backend)
    w, b = layer.weight.value(), layer.bias.value()
    for n in (1, 5):
        a = rng.standard_normal((n, 3, 4)).astype(np.float32)
        np.testing.assert_allclose(fn(a), a @ w.T + b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("start,end", [(1, -1), (0, 1), (2, 3)])
def test_flatten_parity(start, end, parity, rng):
    parity(nn.Flatten(start, end), torch.nn.Flatten(start, end), [rng.standard_normal((2, 3, 4, 5))])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_parity(padding_idx, dtype, parity, rng):
    idx = rng.integers(0, 7, (3, 5))
    idx[0, :2] = 2  # make sure the padding row is looked up
    idx[1, 0] = 2
    parity(nn.Embedding(7, 4, padding_idx=padding_idx, dtype=dtype),
           torch.nn.Embedding(7, 4, padding_idx=padding_idx), [idx], dtype)


def test_embedding_init_and_errors():
    nn.init.manual_seed(0)
    emb = nn.Embedding(2000, 16, padding_idx=-1)
    w = emb.weight.value()
    assert emb.padding_idx == 1999 and not w[-1].any()
    assert abs(w[:-1].std() - 1.0) < 0.02 and abs(w[:-1].mean()) < 0.02
    with pytest.raises(rg.GraphBuildError, match="int32 or int64"):
        emb(rg.input((3,), "float32", name="x"))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_bag_2d_parity(mode, padding_idx, dtype, parity, rng):
    idx = rng.integers(0, 9, (4, 5))
    idx[2] = 0  # an all-padding bag when padding_idx == 0
    idx[1, 1] = 0
    parity(nn.EmbeddingBag(9, 3, mode=mode, padding_idx=padding_idx, dtype=dtype),
           torch.nn.EmbeddingBag(9, 3, mode=mode, padding_idx=padding_idx), [idx], dtype)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_embedding_bag_offsets_parity(mode, include_last_offset, parity, rng):
    idx = rng.integers(1, 9, (10,))
    idx[4] = 0
    offsets = np.array([0, 3, 3, 7] + ([10] if include_last_offset else []))  # bag 1 is empty
    parity(nn.EmbeddingBag(9, 3, mode=mode, include_last_offset=include_last_offset, padding_idx=0),
           torch.nn.EmbeddingBag(9, 3, mode=mode, include_last_offset=include_last_offset, padding_idx=0),
           [idx, offsets], "float64")


def test_embedding_bag_per_sample_weights_parity(parity, rng):
    idx = rng.integers(0, 9, (8,))
    offsets = np.array([0, 2, 5])
    weights = rng.standard_normal(8)
    parity(nn.EmbeddingBag(9, 3, mode="sum"), torch.nn.EmbeddingBag(9, 3, mode="sum"), [idx, offsets, weights],
           "float64", call=lambda m, i, o, w: m(i, o, per_sample_weights=w))


def test_embedding_bag_errors():
    bag = nn.EmbeddingBag(5, 2, mode="mean")
    with pytest.raises(rg.ShapeError, match="rank-2"):
        bag(rg.input((4,), "int64", name="i"))
    with pytest.raises(ValueError, match="only supported in mode 'sum'"):
        bag(rg.input((4,), "int64", name="i"), rg.input((2,), "int64", name="o"), rg.input((4,), name="w"))


def _run_train_step(module, x_value, backend, repeats=1):
    x = rg.input(x_value.shape, x_value.dtype, name="x")
    y = module(x)
    (gx,) = rg.grad((y * y).sum() * 0.5, [x])  # d/dx of |y|^2/2 = mask * scale * y
    fn = rg.function([x], [y, gx], backend=backend)
    return [fn(x_value) for _ in range(repeats)]


def test_dropout_statistics_gradient_and_fresh_masks(backend):
    p = 0.3
    drop = nn.Dropout(p)
    drop.set_rng(11)
    x = np.ones((200, 100), np.float32)
    (y1, g1), (y2, _) = _run_train_step(drop, x, backend, repeats=2)
    kept = y1 != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y1[kept], 1 / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(g1, np.where(kept, 1 / (1 - p) ** 2, 0.0), rtol=1e-5)
    assert (y1 != y2).mean() > 0.2  # the RNG state advances each call
    drop.eval()
    (y, g), = _run_train_step(drop, x, backend)
    np.testing.assert_array_equal(y, x)


def test_dropout_reproducible_from_seed(backend):
    x = np.ones((50, 20), np.float32)
    runs = []
    for _ in range(2):
        d = nn.Dropout(0.5)
        d.set_rng(5)
        runs.append(_run_train_step(d, x, backend)[0][0])
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_spatial_dropout_zeroes_whole_channels(backend, rng):
    drop = nn.SpatialDropout(0.5)
    drop.set_rng(3)
    x = rng.uniform(1, 2, (8, 16, 5, 5)).astype(np.float32)
    ((y, g),) = _run_train_step(drop, x, backend)
    per_channel = (y != 0).reshape(8, 16, -1)
    assert (per_channel.all(axis=2) | ~per_channel.any(axis=2)).all()  # all or nothing per channel
    assert 0.3 < per_channel.all(axis=2).mean() < 0.7
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2 * x[kept], rtol=1e-6)
    assert nn.Dropout2d is nn.SpatialDropout
    with pytest.raises(rg.ShapeError, match="rank-3 or 4"):
        drop(rg.input((2, 3), name="x"))
