"""ResNet (He et al.) with torchvision's module names: ``BasicBlock``, ``Bottleneck``, ``ResNet``, ``resnet18`` ...

Names follow ``torchvision.models.resnet`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``), so torchvision checkpoints load with
``load_state_dict``. ``widths`` and ``small_input`` (3x3 stem, no max-pool, as used
for 32x32 CIFAR images) make small variants for tests and small data.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import resnet18
    >>> net = resnet18(num_classes=10, widths=(8, 16, 32, 64), small_input=True)
    >>> net(rg.input((None, 3, 32, 32), name="img")).shape
    (Dim(img.0), 10)
"""

from __future__ import annotations

from typing import Optional, Sequence, Type, Union

import rustyasg.core as rg
from rustyasg.core import Tensor

from .. import init
from ..containers import Sequential
from ..conv import Conv2d
from ..linear import Linear
from ..module import Module
from ..normalization import BatchNorm2d
from ..pooling import AdaptiveAvgPool2d, MaxPool2d


def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1, dtype="float32") -> Conv2d:
    """3x3 convolution with padding 1 and no bias (a batch norm follows)."""
    return Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False, dtype=dtype)


def conv1x1(cin: int, cout: int, stride: int = 1, dtype="float32") -> Conv2d:
    """1x1 convolution without bias."""
    return Conv2d(cin, cout, 1, stride=stride, bias=False, dtype=dtype)


class BasicBlock(Module):
    """Two 3x3 convolutions with batch norm and an identity (or projected) shortcut; ``expansion = 1``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[Module] = None,
                 groups: int = 1, base_width: int = 64, dtype="float32"):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and base_width=64 (as torchvision)")
        self.conv1 = conv3x3(inplanes, planes, stride, dtype=dtype)
        self.bn1 = BatchNorm2d(planes, dtype=dtype)
        self.conv2 = conv3x3(planes, planes, dtype=dtype)
        self.bn2 = BatchNorm2d(planes, dtype=dtype)
        self.downsample = downsample
        self.stride = stride

    def last_bn(self) -> BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        out = rg.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return rg.relu(out + identity)


class Bottleneck(Module):
    """1x1 reduce, 3x3 (strided, optionally grouped), 1x1 expand by 4; the stride sits on the 3x3 (ResNet v1.5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[Module] = None,
                 groups: int = 1, base_width: int = 64, dtype="float32"):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width, dtype=dtype)
        self.bn1 = BatchNorm2d(width, dtype=dtype)
        self.conv2 = conv3x3(width, width, stride, groups, dtype=dtype)
        self.bn2 = BatchNorm2d(width, dtype=dtype)
        self.conv3 = conv1x1(width, planes * self.expansion, dtype=dtype)
        self.bn3 = BatchNorm2d(planes * self.expansion, dtype=dtype)
        self.downsample = downsample
        self.stride = stride

    def last_bn(self) -> BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        out = rg.relu(self.bn1(self.conv1(x)))
        out = rg.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return rg.relu(out + identity)


Block = Union[Type[BasicBlock], Type[Bottleneck]]


class ResNet(Module):
    """Stem, four stages of ``layers[i]`` blocks (stages 2-4 halve the resolution), global pool, ``fc``.

    Convolutions start from Kaiming normal (fan_out, relu) and batch norms from (1, 0), as
    torchvision; ``zero_init_residual`` zeroes each block's last batch-norm weight.
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000, in_channels: int = 3,
                 widths: Sequence[int] = (64, 128, 256, 512), small_input: bool = False,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64, dtype="float32"):
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"ResNet needs 4 stages, got layers={tuple(layers)} widths={tuple(widths)}")
        self.groups, self.base_width, self.dtype = groups, width_per_group, dtype
        self.inplanes = widths[0]
        if small_input:
            self.conv1 = Conv2d(in_channels, self.inplanes, 3, stride=1, padding=1, bias=False, dtype=dtype)
        else:
            self.conv1 = Conv2d(in_channels, self.inplanes, 7, stride=2, padding=3, bias=False, dtype=dtype)
        self.bn1 = BatchNorm2d(self.inplanes, dtype=dtype)
        self.maxpool = None if small_input else MaxPool2d(3, stride=2, padding=1)
        for i, (width, n) in enumerate(zip(widths, layers)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, n, stride=1 if i == 0 else 2))
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(widths[3] * block.expansion, num_classes, dtype=dtype)
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif zero_init_residual and isinstance(m, (BasicBlock, Bottleneck)):
                init.zeros_(m.last_bn().weight)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int) -> Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = Sequential(conv1x1(self.inplanes, planes * block.expansion, stride, dtype=self.dtype),
                                    BatchNorm2d(planes * block.expansion, dtype=self.dtype))
        kw = dict(groups=self.groups, base_width=self.base_width, dtype=self.dtype)
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """The ``(N, C)`` pooled features before ``fc``."""
        x = rg.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return rg.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def _factory(block: Block, layers, name: str):
    def make(num_classes: int = 1000, **kwargs) -> ResNet:
        return ResNet(block, layers, num_classes=num_classes, **kwargs)
    make.__name__ = name
    make.__doc__ = (f"{name}: ``ResNet({block.__name__}, {list(layers)})`` (torchvision's layout); "
                    f"keyword arguments go to :class:`ResNet`.")
    return make


resnet18 = _factory(BasicBlock, (2, 2, 2, 2), "resnet18")
resnet34 = _factory(BasicBlock, (3, 4, 6, 3), "resnet34")
resnet50 = _factory(Bottleneck, (3, 4, 6, 3), "resnet50")
resnet101 = _factory(Bottleneck, (3, 4, 23, 3), "resnet101")
