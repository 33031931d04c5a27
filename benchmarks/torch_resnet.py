"""The PyTorch twin of ``rustyasg.nn.zoo.resnet18`` in torchvision's layout and names (torchvision is not needed).

The inference benchmark loads the rustyasg model's state dict into it, so both sides hold the same weights.

Example:
    >>> net = torch_resnet18()   # doctest: +SKIP
"""

from __future__ import annotations


def torch_resnet18(num_classes: int = 1000):
    """A torch ``nn.Module``: ResNet-18 mapping images (N, 3, H, W) to logits (N, num_classes)."""
    import torch
    import torch.nn as tnn

    class BasicBlock(tnn.Module):
        def __init__(self, cin, planes, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or cin != planes:
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, planes in enumerate((64, 128, 256, 512)):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", tnn.Sequential(BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)))
                cin = planes
            self.fc = tnn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(x.mean(dim=(2, 3)), 1))

    return ResNet18()
