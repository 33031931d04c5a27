"""LayerNorm and BatchNorm1d/2d/3d against PyTorch, including running statistics updated inside the compiled step."""

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn

DTYPES = ["float32", "float64"]


def _randomize(theirs, seed=0):
    """Non-trivial affine parameters (defaults are ones and zeros)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5 + 1.0)
    return theirs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 8), (8,)), ((2, 3, 4, 5), (4, 5))])
def test_layer_norm_parity(shape, normalized, dtype, parity, rng):
    parity(nn.LayerNorm(normalized, eps=1e-4), _randomize(torch.nn.LayerNorm(normalized, eps=1e-4)),
           [rng.standard_normal(shape) * 3 + 1], dtype)


@pytest.mark.parametrize("kw", [{"elementwise_affine": False}, {"bias": False}])
def test_layer_norm_without_affine_parity(kw, parity, rng):
    ours, theirs = nn.LayerNorm(5, **kw), torch.nn.LayerNorm(5, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    parity(ours, _randomize(theirs), [rng.standard_normal((3, 5))], "float64")


def test_layer_norm_shape_error():
    with pytest.raises(rg.ShapeError, match=r"trailing axes must be \(4, 5\)"):
        nn.LayerNorm((4, 5))(rg.input((2, 5, 4), name="x"))


CASES = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 4)), (nn.BatchNorm1d, torch.nn.BatchNorm1d, (5, 4, 7)),
         (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 5, 6)), (nn.BatchNorm3d, torch.nn.BatchNorm3d, (3, 4, 3, 5, 2))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours_cls,torch_cls,shape", CASES, ids=["1d-NC", "1d-NCL", "2d", "3d"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_parity(ours_cls, torch_cls, shape, training, dtype, parity, rng):
    theirs = _randomize(torch_cls(4, eps=1e-3))
    with torch.no_grad():
        theirs.running_mean.copy_(torch.randn(4))
        theirs.running_var.copy_(torch.rand(4) + 0.5)
    ours = ours_cls(4, eps=1e-3)
    theirs.train(training), ours.train(training)
    parity(ours, theirs, [rng.standard_normal(shape) * 2 + 0.5], dtype)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("ours_cls,torch_cls,shape", CASES, ids=["1d-NC", "1d-NCL", "2d", "3d"])
def test_batch_norm_running_stats_updated_in_compiled_step(ours_cls, torch_cls, shape, momentum, backend, rng):
    """Several compiled training steps update running stats exactly as PyTorch's forward passes do."""
    theirs = torch_cls(4, momentum=momentum).double()
    ours = ours_cls(4, momentum=momentum).double()
    x = rg.input((None,) + shape[1:], "float64", name="x")
    y = ours(x)
    step = rg.function([x], y, updates=ours.state_updates(), backend=backend)
    for i in range(3):
        batch = rng.standard_normal((shape[0] + i,) + shape[1:]) * (i + 1) + i  # batch size varies
        np.testing.assert_allclose(step(batch), theirs(torch.tensor(batch)).detach().numpy(), rtol=1e-10, atol=1e-10)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    assert int(ours.num_batches_tracked.value()) == 3


def test_batch_norm_eval_records_no_updates_and_uses_running_stats(backend, rng):
    bn = nn.BatchNorm2d(3)
    bn.running_mean.assign(np.array([1.0, -1.0, 0.5], np.float32))
    bn.running_var.assign(np.array([4.0, 0.25, 1.0], np.float32))
    x = rg.input((None, 3, 2, 2), name="x")
    bn(x)
    assert len(bn.state_updates()) == 3
    bn.eval()
    y = bn(x)
    assert bn.state_updates() == {}
    a = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    expected = (a - bn.running_mean.value()[:, None, None]) / np.sqrt(bn.running_var.value()[:, None, None] + 1e-5)
    np.testing.assert_allclose(rg.function([x], y, backend=backend)(a), expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_without_running_stats_or_affine(parity, rng):
    ours = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    theirs = torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    ours.eval(), theirs.eval()  # still batch statistics
    parity(ours, theirs, [rng.standard_normal((4, 3, 2, 2))], "float64")
    assert ours.state_updates() == {}


def test_batch_norm_errors():
    with pytest.raises(rg.ShapeError, match="rank-4"):
        nn.BatchNorm2d(3)(rg.input((2, 3), name="x"))
    with pytest.raises(rg.ShapeError, match="expected 3 channels along axis 1, got 5"):
        nn.BatchNorm1d(3)(rg.input((2, 5), name="x"))


def test_batch_norm_training_step_with_grads_and_updates_together(backend, parity, rng):
    """A full step: loss gradient wrt weight plus running-stat updates in one compiled function."""
    ours, theirs = nn.BatchNorm1d(4).double(), torch.nn.BatchNorm1d(4).double()
    x = rg.input((8, 4), "float64", name="x")
    loss = (ours(x) ** 3).sum()
    (gw,) = rg.grad(loss, [ours.weight])
    updates = {ours.weight: ours.weight - 0.1 * gw, **ours.state_updates()}
    step = rg.function([x], loss, updates=updates, backend=backend)
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(2):
        batch = rng.standard_normal((8, 4))
        opt.zero_grad()
        t_loss = (theirs(torch.tensor(batch)) ** 3).sum()
        t_loss.backward()
        theirs.bias.grad = None  # only the weight is stepped on our side
        opt.step()
        parity.assert_close(step(batch), t_loss.item(), 1e-10, "loss")
    for k, v in theirs.state_dict().items():
        parity.assert_close(ours.state_dict()[k], v.numpy(), 1e-10, k)


@pytest.mark.parametrize("backend_name", ["cpu", "wgpu"])
@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"track_running_stats": False}, {"momentum": None}])
def test_batch_norm3d_loads_a_torch_checkpoint_trains_and_evaluates_like_torch(backend_name, kw, rng):
    """float32 on cpu and wgpu: a torch state_dict loads by name, two training steps update the same
    running statistics, and evaluation (running statistics, or batch ones without them) matches."""
    theirs = _randomize(torch.nn.BatchNorm3d(3, eps=1e-3, **kw))
    with torch.no_grad():
        if theirs.running_mean is not None:
            theirs.running_mean.copy_(torch.randn(3))
            theirs.running_var.copy_(torch.rand(3) + 0.5)
    ours = nn.BatchNorm3d(3, eps=1e-3, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rg.input((None, 3, 3, 4, 5), name="x")
    step = rg.function([x], ours(x), updates=ours.state_updates(), backend=backend_name)
    for i in range(2):
        batch = (rng.standard_normal((2 + i, 3, 3, 4, 5)) * (i + 2) - i).astype(np.float32)
        batch[0, 0, 0, 0, :2] = [-7.5, 0.0]  # negatives and zeros on purpose
        np.testing.assert_allclose(step(batch), theirs(torch.tensor(batch)).detach().numpy(), rtol=1e-4, atol=1e-4)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    ours.eval(), theirs.eval()
    batch = rng.standard_normal((2, 3, 3, 4, 5)).astype(np.float32)
    got = rg.function([x], ours(x), backend=backend_name)(batch)
    np.testing.assert_allclose(got, theirs(torch.tensor(batch)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_batch_norm3d_rejects_other_ranks():
    with pytest.raises(rg.ShapeError, match="rank-5"):
        nn.BatchNorm3d(3)(rg.input((2, 3, 4, 4), name="x"))
