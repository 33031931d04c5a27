"""Model zoo: parity of MLP, LeNet-5, ResNet blocks and a small ResNet, ViT against PyTorch twins with the
same parameter names; a small ResNet trains with decreasing loss."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import zoo


def test_mlp_parity_and_names(parity, rng):
    ours = zoo.MLP(6, [8, 5], 3, activation="gelu", dropout=0.2)
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Dropout(0.2),
                                 torch.nn.Linear(8, 5), torch.nn.GELU(), torch.nn.Dropout(0.2), torch.nn.Linear(5, 3))
    ours.eval(), theirs.eval()
    parity(ours, theirs, [rng.standard_normal((4, 6))], "float32")
    with pytest.raises(ValueError, match="unknown activation"):
        zoo.MLP(2, [2], 2, activation="mish")


class TorchLeNet(torch.nn.Module):
    def __init__(self, pad):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=pad)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)

    def forward(self, x):
        x = TF.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = TF.avg_pool2d(torch.tanh(self.conv2(x)), 2).flatten(1)
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_parity(size, parity, rng):
    parity(zoo.LeNet5(input_size=size), TorchLeNet(2 if size == 28 else 0), [rng.standard_normal((2, 1, size, size))],
           "float32")


# --- ResNet: a torchvision-layout twin --------------------------------------------------------------
class TorchBasic(torch.nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchBottleneck(torch.nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.conv3 = torch.nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(torch.relu(self.bn2(self.conv2(out)))))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


def _torch_downsample(cin, cout, stride):
    return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))


class TorchResNet(torch.nn.Module):
    """torchvision's ResNet with a 3x3 stem and no max-pool (``small_input``) and custom widths."""

    def __init__(self, block, layers, widths, num_classes):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = torch.nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(widths[0])
        for i, (w, n) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or self.inplanes != w * block.expansion:
                down = _torch_downsample(self.inplanes, w * block.expansion, stride)
            blocks = [block(self.inplanes, w, stride, down)]
            self.inplanes = w * block.expansion
            blocks += [block(self.inplanes, w) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", torch.nn.Sequential(*blocks))
        self.fc = torch.nn.Linear(widths[3] * block.expansion, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def _randomize_bn(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
@pytest.mark.parametrize("training", [True, False])
def test_resnet_block_parity(kind, training, parity, rng):
    if kind == "basic":
        ours = zoo.BasicBlock(4, 6, 2, nn.Sequential(nn.Conv2d(4, 6, 1, 2, bias=False), nn.BatchNorm2d(6)))
        theirs = TorchBasic(4, 6, 2, _torch_downsample(4, 6, 2))
    else:
        ours = zoo.Bottleneck(8, 2, 1)
        theirs = TorchBottleneck(8, 2, 1)
    ours.train(training), _randomize_bn(theirs).train(training)
    cin = 4 if kind == "basic" else 8
    parity(ours, theirs, [rng.standard_normal((3, cin, 6, 6))], "float64")


@pytest.mark.parametrize("block,torch_block,layers", [(zoo.BasicBlock, TorchBasic, (2, 2, 2, 2)),
                                                      (zoo.Bottleneck, TorchBottleneck, (1, 1, 1, 1))],
                         ids=["resnet18-style", "bottleneck"])
def test_small_resnet_parity(block, torch_block, layers, parity, rng):
    widths = (4, 4, 8, 8)
    ours = zoo.ResNet(block, layers, num_classes=3, widths=widths, small_input=True)
    theirs = _randomize_bn(TorchResNet(torch_block, layers, widths, 3))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # float64: a stack of train-mode batch norms amplifies float32 rounding (torch's too) past 1e-5
    parity(ours, theirs, [rng.standard_normal((2, 3, 8, 8))], "float64")


def test_resnet18_matches_torchvision_layout():
    """resnet18's parameter names and shapes are torchvision's (11,689,512 parameters for 1000 classes)."""
    net = zoo.resnet18()
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert net.num_parameters() == 11689512
    assert shapes["conv1.weight"] == (64, 3, 7, 7) and shapes["fc.weight"] == (1000, 512)
    assert shapes["layer2.0.downsample.0.weight"] == (128, 64, 1, 1) and "layer1.0.downsample.0.weight" not in shapes
    assert len(shapes) == 122  # 62 parameters + 60 buffers
    assert zoo.resnet50().num_parameters() == 25557032
    w = net.conv1.weight.value()
    assert abs(w.std() - np.sqrt(2 / (64 * 49))) < 0.05 * np.sqrt(2 / (64 * 49))  # kaiming normal, fan_out
    z = zoo.resnet18(zero_init_residual=True)
    assert not z.layer1[0].bn2.weight.value().any()


def test_small_resnet_trains_with_decreasing_loss(backend, rng):
    """A few compiled SGD steps (B's optimizer) with batch-norm running stats updated in the same step.

    The initialisation is seeded: the weights must not depend on which tests drew from the
    initialisers' stream before (over seeds 0-7 the tenth loss is 3-44% of the first).
    """
    nn.init.manual_seed(0)
    net = zoo.resnet18(num_classes=3, widths=(4, 8, 8, 8), small_input=True)
    x = rg.input(("B", 3, 8, 8), name="x")
    y = rg.input(("B",), "int64", name="y")
    loss = nn.cross_entropy(net(x), y)
    opt = nn.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    step = rg.function([x, y], loss, updates={**opt.updates(loss), **net.state_updates()}, backend=backend)
    images = rng.standard_normal((12, 3, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 12)
    images[np.arange(12), labels] += 1.5  # a learnable signal: the label's channel is brighter
    before = net.bn1.running_mean.value()
    losses = [float(step(images, labels)) for _ in range(10)]
    assert np.isfinite(losses).all() and losses[-1] < 0.6 * losses[0], losses
    assert not np.allclose(net.bn1.running_mean.value(), before)
    assert int(net.bn1.num_batches_tracked.value()) == 10


# --- ViT ------------------------------------------------------------------------------------------------
class TorchViT(torch.nn.Module):
    def __init__(self, image, patch, classes, dim, depth, heads, mlp):
        super().__init__()
        self.patch_embed = torch.nn.Module()
        self.patch_embed.proj = torch.nn.Conv2d(3, dim, patch, stride=patch)
        n = (image // patch) ** 2
        self.cls_token = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = torch.nn.Parameter(torch.randn(1, n + 1, dim))
        self.blocks = torch.nn.ModuleList([torch.nn.TransformerEncoderLayer(
            dim, heads, mlp, 0.0, activation="gelu", layer_norm_eps=1e-6, batch_first=True, norm_first=True)
            for _ in range(depth)])
        self.norm = torch.nn.LayerNorm(dim, eps=1e-6)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, x):
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def test_vit_parity(parity, rng):
    kw = dict(image=8, patch=4, classes=3, dim=8, depth=2, heads=2, mlp=16)
    ours = zoo.ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=2, heads=2, mlp_dim=16)
    theirs = TorchViT(**kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    parity(ours, theirs, [rng.standard_normal((2, 3, 8, 8))], "float32")


def test_vit_errors_and_mean_pool():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        zoo.ViT(image_size=10, patch_size=4)
    vit = zoo.ViT(image_size=8, patch_size=4, num_classes=0, dim=8, depth=1, heads=2, mlp_dim=8, pool="mean")
    assert vit(rg.input((None, 3, 8, 8), name="img")).shape[1:] == (8,)
    with pytest.raises(rg.ShapeError, match="expected 8x8 images"):
        vit(rg.input((1, 3, 16, 16), name="img"))
