"""``LeNet5``: LeCun et al.'s convolutional network for 28x28 or 32x32 digit images.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import LeNet5
    >>> LeNet5()(rg.input((None, 1, 28, 28), name="img")).shape
    (Dim(img.0), 10)
"""

from __future__ import annotations

from ..activations import get_activation
from ..conv import Conv2d
from ..linear import Linear
from ..module import Module
from ..pooling import AvgPool2d, MaxPool2d


class LeNet5(Module):
    """``conv1(6@5x5) - pool - conv2(16@5x5) - pool - fc1(120) - fc2(84) - fc3(classes)``.

    28x28 inputs get ``padding=2`` in ``conv1`` (the classic MNIST setup), so both sizes
    reach the 16x5x5 feature map. ``activation`` (``"tanh"`` as in the paper, or ``"relu"``)
    and ``pooling`` (``"avg"`` or ``"max"``) are selectable.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, activation: str = "tanh",
                 pooling: str = "avg", dtype="float32"):
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5: input_size must be 28 or 32, got {input_size}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"LeNet5: pooling must be 'avg' or 'max', got {pooling!r}")
        self.conv1 = Conv2d(in_channels, 6, 5, padding=2 if input_size == 28 else 0, dtype=dtype)
        self.conv2 = Conv2d(6, 16, 5, dtype=dtype)
        self.pool = (AvgPool2d if pooling == "avg" else MaxPool2d)(2)
        self.fc1 = Linear(16 * 5 * 5, 120, dtype=dtype)
        self.fc2 = Linear(120, 84, dtype=dtype)
        self.fc3 = Linear(84, num_classes, dtype=dtype)
        self.act = get_activation(activation)

    def forward(self, x):
        x = self.pool(self.act(self.conv1(x)))
        x = self.pool(self.act(self.conv2(x)))
        x = x.reshape((x.shape[0], 16 * 5 * 5))
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))
