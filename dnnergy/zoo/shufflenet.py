"""ShuffleNet v1 1x with g = 3 groups (Zhang et al. CVPR 2018), 224x224 input.

Table 1 of the paper: a 3x3/2 conv to 24 channels and a 3x3/2 max pool, then three stages
of ShuffleNet units (1 + 3, 1 + 7, 1 + 3 units; output widths 240, 480, 960 for g = 3),
global average pool and FC 960-1000. A unit (Figure 2) is a 1x1 group conv (g groups) to
a bottleneck of a quarter of the output width, BN, ReLU, channel shuffle, a 3x3 depthwise
conv (stride 1 or 2), BN, a 1x1 group conv, BN. Stride 1 units add the input and apply
ReLU; stride 2 units concatenate a 3x3/2 average pool of the input (so the branch outputs
``out - in`` channels) and apply ReLU. The first 1x1 conv of Stage 2 is not grouped: it
sees only 24 input channels (Section 3.3). The shuffle is a reshape and a transpose.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._layers import StagedNet, channel_shuffle, conv_bn
from ._registry import register_model

__all__ = ["ShuffleUnit", "ShuffleNetV1", "shufflenet"]

#: Output width of each stage for g = 1, 2, 3, 4, 8 at 1x (Table 1).
_WIDTHS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088), 8: (384, 768, 1536)}
_REPEATS = (4, 8, 4)


class ShuffleUnit(nn.Module):
    """One ShuffleNet unit; ``stride=2`` makes the concatenating down-sampling variant."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int, first_grouped: bool = True):
        super().__init__()
        mid = cout // 4
        self.groups = groups
        self.stride = stride
        self.reduce = conv_bn(cin, mid, 1, groups=groups if first_grouped else 1)
        self.depthwise = conv_bn(mid, mid, 3, stride, groups=mid, act=None)
        self.expand = conv_bn(mid, cout - cin if stride == 2 else cout, 1, groups=groups, act=None)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.expand(self.depthwise(channel_shuffle(self.reduce(x), self.groups)))
        y = torch.cat([self.shortcut(x), y], 1) if self.stride == 2 else x + y
        return self.relu(y)


class ShuffleNetV1(StagedNet):
    """ShuffleNet v1 at 1x width with ``groups`` in {1, 2, 3, 4, 8} (Table 1)."""

    def __init__(self, groups: int = 3, num_classes: int = 1000):
        super().__init__()
        units: list[nn.Module] = []
        cin = 24
        for stage, (cout, repeats) in enumerate(zip(_WIDTHS[groups], _REPEATS)):
            for i in range(repeats):
                units.append(ShuffleUnit(cin, cout, 2 if i == 0 else 1, groups, first_grouped=stage > 0 or i > 0))
                cin = cout
        self.finish(nn.Sequential(conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)), units, cin, num_classes)


@register_model(
    input_shape=(1, 3, 224, 224),
    description="ShuffleNet v1 1x, g=3: grouped 1x1 convs, channel shuffle, depthwise 3x3",
    published={
        "macs": 137e6, "params": 1.9e6,
        "source": "Zhang et al. CVPR 2018 Table 1 (1x, g=3: 137 MFLOPs, their FLOPs being mult-adds); "
        "megvii-model/ShuffleNet-Series ShuffleNetV1/README.md (1.0x group=3: 138M FLOPs, 1.9M params)",
    },
)
def shufflenet(num_classes: int = 1000) -> nn.Module:
    """ShuffleNet v1 1x with 3 groups (about 1.87M parameters, 137M MACs at 224x224)."""
    return ShuffleNetV1(3, num_classes)
