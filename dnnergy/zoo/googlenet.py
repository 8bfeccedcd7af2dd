"""GoogLeNet / Inception v1 (Szegedy et al. CVPR 2015), as Caffe's ``bvlc_googlenet``, without aux heads.

The paper's network, not torchvision's variant: no BatchNorm, true 5x5 convs in the
5x5 branch (torchvision uses 3x3 there), LRN after the first pool and after conv2, and
ceil-mode 3x3/2 max pools (224 -> 112 -> 56 -> 28 -> 14 -> 7). The two auxiliary
classifiers are used only in training and are left out, as in the paper's inference cost.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import register_model

__all__ = ["Inception", "GoogLeNet", "googlenet"]

#: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each module, the paper's Table 1.
_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2), nn.ReLU())


class Inception(nn.Module):
    """Four parallel branches (1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pool then 1x1) concatenated."""

    def __init__(self, cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, pp: int):
        super().__init__()
        self.out_channels = c1 + c3 + c5 + pp
        self.b1 = _conv(cin, c1, 1)
        self.b3 = nn.Sequential(_conv(cin, r3, 1), _conv(r3, c3, 3))
        self.b5 = nn.Sequential(_conv(cin, r5, 1), _conv(r5, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), _conv(cin, pp, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class GoogLeNet(nn.Module):
    """Stem (7x7/2 conv, pool, LRN, 1x1 and 3x3 convs, LRN, pool), nine Inception modules, avg pool, FC."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(
            _conv(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, 1e-4, 0.75),
            _conv(64, 64, 1), _conv(64, 192, 3), nn.LocalResponseNorm(5, 1e-4, 0.75), nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        blocks: list[nn.Module] = []
        cin = 192
        for name, widths in _MODULES.items():
            if name in ("4a", "5a"):
                blocks.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            module = Inception(cin, *widths)
            blocks.append(module)
            cin = module.out_channels
        self.inception = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.inception(self.stem(x))).flatten(1)
        return self.fc(self.dropout(x))


@register_model(
    input_shape=(1, 3, 224, 224),
    description="GoogLeNet (Inception v1) as in the paper / Caffe bvlc_googlenet, no auxiliary classifiers",
    published={
        "macs": 1.566e9, "params": 6.9e6,
        "source": "seed 001 (Kim et al. ICLR 2016: GoogLeNet 6.9M weights, 1566M FLOPs); Szegedy et al. CVPR 2015 "
        "Table 1 (about 1.5G ops, 6.8M params); MobileNet paper Table 8 (1550M mult-adds, 6.8M)",
    },
)
def googlenet(num_classes: int = 1000) -> nn.Module:
    """GoogLeNet without auxiliary classifiers (about 7.0M parameters, 1.58G MACs at 224x224)."""
    return GoogLeNet(num_classes)
