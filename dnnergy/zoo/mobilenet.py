"""MobileNet v1 (Howard et al. 2017) and MobileNet v2 (Sandler et al. CVPR 2018), width 1.0, 224x224.

v1 follows Table 1 of its paper: a 3x3/2 conv, thirteen depthwise-separable pairs (3x3
depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU), 7x7 average pool, FC 1024-1000. The
table's second-to-last depthwise conv reads "s2" on a 7x7 input with a 7x7 output; it is
stride 1, as in every released implementation.

v2 follows Table 2 of its paper: a 3x3/2 conv to 32, seventeen inverted residual
bottlenecks (expand 1x1 by t, 3x3 depthwise, linear 1x1 projection; a residual add when
the stride is 1 and the widths match), a 1x1 conv to 1280, global average pool, and the
classifier (a 1x1 conv in the paper, an FC here: identical counts). ReLU6 throughout.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._layers import conv_bn
from ._registry import register_model

__all__ = ["MobileNetV1", "InvertedResidual", "MobileNetV2", "mobilenet_v1", "mobilenet_v2"]

#: v1: (output channels, stride) of each depthwise-separable pair, Table 1.
_V1_PAIRS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5, (1024, 2), (1024, 1))

#: v2: (expansion t, output channels c, repeats n, first stride s) of each bottleneck sequence, Table 2.
_V2_SEQUENCES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV1(nn.Module):
    """MobileNet v1 at width 1.0: 28 conv layers (counting depthwise and pointwise separately) and an FC."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
        cin = 32
        for cout, stride in _V1_PAIRS:
            layers += [conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class InvertedResidual(nn.Module):
    """MobileNet v2 bottleneck: 1x1 expand (skipped when t = 1), 3x3 depthwise, linear 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn(cin, hidden, 1, act=nn.ReLU6)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6), conv_bn(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """MobileNet v2 at width 1.0 (Table 2 of the paper)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)]
        cin = 32
        for t, c, n, s in _V2_SEQUENCES:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.pool(self.features(x)).flatten(1)))


@register_model(
    input_shape=(1, 3, 224, 224),
    description="MobileNet v1 1.0-224: depthwise-separable convs with BatchNorm and ReLU",
    published={
        "macs": 569e6, "params": 4.2e6,
        "source": "Howard et al. 2017 Table 8 (1.0 MobileNet-224: 569 million mult-adds, 4.2 million parameters); seed 004",
    },
)
def mobilenet_v1(num_classes: int = 1000) -> nn.Module:
    """MobileNet v1 1.0-224 (about 4.23M parameters with BN, 569M MACs)."""
    return MobileNetV1(num_classes)


@register_model(
    input_shape=(1, 3, 224, 224),
    description="MobileNet v2 1.0-224: inverted residual bottlenecks with linear projections",
    published={
        "macs": 300e6, "params": 3.4e6,
        "source": "Sandler et al. CVPR 2018 Table 4 (MobileNetV2: 3.4M parameters, 300M multiply-adds)",
    },
)
def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    """MobileNet v2 1.0-224 (about 3.5M parameters with BN, 301M MACs)."""
    return MobileNetV2(num_classes)
