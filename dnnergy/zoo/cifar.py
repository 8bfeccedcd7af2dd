"""Caffe's ``cifar10_quick`` without its 64-unit hidden layer, as in seed 002's table.

Seed 002 (Zhang, Davoodi and Hu) lists its CIFAR10 net as conv 5x5x3x32, conv 5x5x32x32,
conv 5x5x32x64 and one FC 4x4x64x10, with #Parm 89.4K and #Edges 12.3M. The convs pad 2
(same size) and each is followed by a 3x3 stride-2 pool, max then average twice, in Caffe's
ceil mode, so the maps go 32 -> 16 -> 8 -> 4. That is what reproduces 12.3M:
2400*32*32 + 25600*16*16 + 51200*8*8 + 10240 = 12,298,240 MACs. Floor-mode pools
(32 -> 15 -> 7 -> 3) would give 10.7M and a 3x3x64 FC input.

NB: PyTorch's ceil-mode average pool divides a clipped border window by its clipped size
(``count_include_pad`` only affects padding), like Caffe; the counts do not depend on it.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._registry import register_model

__all__ = ["Cifar10Quick", "cifar10_quick"]


class Cifar10Quick(nn.Module):
    """Three 5x5 convs (32, 32, 64) with 3x3/2 ceil-mode pools, then FC 1024 -> classes."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(4 * 4 * 64, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.pool1(self.conv1(x)))  # Caffe applies ReLU after the max pool here
        x = self.pool2(self.relu(self.conv2(x)))
        x = self.pool3(self.relu(self.conv3(x)))
        return self.fc(x.flatten(1))


@register_model(
    input_shape=(1, 3, 32, 32),
    description="Caffe cifar10_quick convs with a single 1024-10 FC (seed 002's CIFAR10 net)",
    published={
        "macs": 12.3e6, "weights": 89_440, "params": 89_578,
        "source": "seed 002 table (#Edges 12.3M, #Parm 89.4K); "
        "weights 2400 + 25600 + 51200 + 10240 = 89,440, biases 32 + 32 + 64 + 10 = 138",
    },
)
def cifar10_quick(num_classes: int = 10) -> nn.Module:
    """The CIFAR-10 net of seed 002 (89,440 weights, 12,298,240 MACs per 32x32 image)."""
    return Cifar10Quick(num_classes)
