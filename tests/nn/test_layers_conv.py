"""Conv2d, ConvTranspose2d and the pooling layers against PyTorch (values and gradients)."""

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn

CONV = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=3, out_channels=4, kernel_size=(3, 2), stride=2, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=2, dilation=2, groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4, bias=False),  # depthwise
    dict(in_channels=2, out_channels=3, kernel_size=4, padding="same", dilation=1),  # asymmetric 'same'
    dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid", stride=(1, 2)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", CONV, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items() if "channels" not in k))
def test_conv2d_parity(kw, dtype, parity, rng):
    x = rng.standard_normal((2, kw["in_channels"], 7, 8))
    parity(nn.Conv2d(**kw), torch.nn.Conv2d(**kw), [x], dtype)


TRANSPOSED = [
    dict(in_channels=3, out_channels=2, kernel_size=3),
    dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(2, 3), stride=(2, 1), groups=2, bias=False),
    dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, dilation=2, padding=2, output_padding=1),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", TRANSPOSED, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()
                                                                   if "channels" not in k))
def test_conv_transpose2d_parity(kw, dtype, parity, rng):
    x = rng.standard_normal((2, kw["in_channels"], 4, 5))
    parity(nn.ConvTranspose2d(**kw), torch.nn.ConvTranspose2d(**kw), [x], dtype)


def test_conv_transpose2d_output_size(parity, rng):
    kw = dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1)
    x = rng.standard_normal((1, 2, 4, 4))
    parity(nn.ConvTranspose2d(**kw), torch.nn.ConvTranspose2d(**kw), [x], "float64",
           call=lambda m, x: m(x, output_size=(8, 7)))
    with pytest.raises(rg.ShapeError, match="not reachable"):
        nn.ConvTranspose2d(**kw)(rg.input((1, 2, 4, 4), name="x"), output_size=(9, 9))


def test_conv_default_init_and_names_match_pytorch():
    nn.init.manual_seed(1)
    ours, theirs = nn.Conv2d(16, 32, 3, groups=2), torch.nn.Conv2d(16, 32, 3, groups=2)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    bound = 1 / np.sqrt(8 * 9)
    w, b = ours.weight.value(), ours.bias.value()
    assert 0.98 * bound < np.abs(w).max() <= bound and np.abs(b).max() <= bound
    t = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert t.weight.shape == (4, 3, 3, 3) and np.abs(t.weight.value()).max() <= 1 / np.sqrt(27)


def test_conv_errors():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(rg.ShapeError, match="expected 3 input channels, got 5"):
        conv(rg.input((None, 5, 8, 8), name="x"))
    with pytest.raises(rg.ShapeError, match="rank-4"):
        conv(rg.input((3, 8, 8), name="x"))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="wrap")
    with pytest.raises(ValueError, match="stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")(rg.input((1, 3, 8, 8), name="x"))
    with pytest.raises(rg.GraphBuildError) as err:
        nn.Conv2d(3, 4, 9)(rg.input((1, 3, 4, 4), name="x"))
    assert "test_layers_conv.py" in str(err.value)


POOLS = [
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: torch.nn.MaxPool2d(3, stride=2, padding=1)),
    (lambda: nn.MaxPool2d(2, stride=1, dilation=2, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(2, stride=1, dilation=2, ceil_mode=True)),
    (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
     lambda: torch.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)),
    (lambda: nn.AvgPool2d(2, divisor_override=3), lambda: torch.nn.AvgPool2d(2, divisor_override=3)),
    (lambda: nn.AdaptiveAvgPool2d((3, 2)), lambda: torch.nn.AdaptiveAvgPool2d((3, 2))),
    (lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1)),
    (lambda: nn.AdaptiveAvgPool2d((None, 4)), lambda: torch.nn.AdaptiveAvgPool2d((None, 4))),
    (lambda: nn.AdaptiveMaxPool2d((3, 4)), lambda: torch.nn.AdaptiveMaxPool2d((3, 4))),
    (lambda: nn.AdaptiveMaxPool2d(2), lambda: torch.nn.AdaptiveMaxPool2d(2)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", POOLS, ids=lambda m: type(m[0]()).__name__ + "(" + m[0]().extra_repr() + ")")
def test_pooling_parity(make, dtype, parity, rng):
    # distinct values (a permutation) so max pooling has no ties and finite differences are clean
    x = rng.permutation(2 * 3 * 7 * 9).reshape(2, 3, 7, 9) / 10.0
    parity(make[0](), make[1](), [x], dtype)


def test_global_avg_pool(parity, rng):
    class TorchGAP(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    parity(nn.GlobalAvgPool2d(), TorchGAP(), [rng.standard_normal((2, 3, 4, 5))], "float64")
    x = rg.input((None, 8, 6, 6), name="x")
    assert nn.global_avg_pool2d(x).shape[1:] == (8,)
    assert nn.AdaptiveAvgPool2d(1)(x).shape[1:] == (8, 1, 1)  # symbolic batch works
