"""ResNet-18 and ResNet-50 (He et al. CVPR 2016, Table 1), 224x224 input, BatchNorm after every conv.

A 7x7/2 conv to 64 and a 3x3/2 max pool, four stages (64, 128, 256, 512 base widths;
18 layers: 2-2-2-2 basic blocks of two 3x3 convs; 50 layers: 3-4-6-3 bottlenecks of 1x1,
3x3, 1x1 with 4x expansion), global average pool and FC. Shortcuts that change shape are
1x1 convs with BN (option B of the paper).

NB: ``resnet50`` puts a down-sampling bottleneck's stride on its 3x3 conv ("ResNet v1.5",
torchvision, timm, fvcore's 4.1G), the form used by almost every tool. The paper puts it on
the first 1x1 conv, which gives 3.86G MACs; pass ``stride_on_3x3=False`` for that. Parameter
counts are identical.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._layers import StagedNet, conv_bn
from ._registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet50"]


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN; output width ``width``. ``stride_on_3x3`` is accepted for the common block signature (both convs are 3x3)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, stride_on_3x3: bool = True):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, width, 3, stride), conv_bn(width, width, 3, act=None))
        self.shortcut = conv_bn(cin, width, 1, stride, act=None) if stride != 1 or cin != width else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce to ``width``, 3x3, 1x1 expand to ``4*width``; the stride sits on the 3x3 or the first 1x1."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, stride_on_3x3: bool = True):
        super().__init__()
        cout = width * self.expansion
        s1, s3 = (1, stride) if stride_on_3x3 else (stride, 1)
        self.body = nn.Sequential(conv_bn(cin, width, 1, s1), conv_bn(width, width, 3, s3), conv_bn(width, cout, 1, act=None))
        self.shortcut = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(StagedNet):
    """A ResNet of ``block`` type with ``depths`` blocks per stage (stages 2-4 start with stride 2)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, ...], num_classes: int = 1000, stride_on_3x3: bool = True):
        super().__init__()
        blocks: list[nn.Module] = []
        cin = 64
        for stage, depth in enumerate(depths):
            width = 64 * 2**stage
            for i in range(depth):
                blocks.append(block(cin, width, 2 if stage > 0 and i == 0 else 1, stride_on_3x3))
                cin = width * block.expansion
        self.finish(nn.Sequential(conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)), blocks, cin, num_classes)


@register_model(
    input_shape=(1, 3, 224, 224),
    description="ResNet-18: 8 basic blocks (2-2-2-2), 1x1 projection shortcuts",
    published={
        "macs": 1.8e9, "params": 11.7e6,
        "source": "He et al. CVPR 2016 Table 1 (18-layer: 1.8 x 10^9 FLOPs, their FLOPs being multiply-adds); "
        "11.7M parameters (torchvision/timm model cards: 11,689,512)",
    },
)
def resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18 (11,689,512 parameters, about 1.82G MACs at 224x224)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


@register_model(
    input_shape=(1, 3, 224, 224),
    description="ResNet-50 v1.5: 16 bottlenecks (3-4-6-3), stride on the 3x3 conv",
    published={
        "macs": 4.1e9, "params": 25.6e6,
        "source": "torchvision/timm/fvcore ResNet-50 (v1.5): 4.1G MACs, 25.6M parameters (25,557,032); "
        "He et al. CVPR 2016 Table 1 gives 3.8 x 10^9 for the stride-on-1x1 original",
    },
)
def resnet50(num_classes: int = 1000, stride_on_3x3: bool = True) -> nn.Module:
    """ResNet-50 (25,557,032 parameters; 4.09G MACs, or 3.86G with ``stride_on_3x3=False``)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, stride_on_3x3)
