"""VGG-16, configuration D of Simonyan and Zisserman (ICLR 2015), 224x224 input, no BatchNorm.

Thirteen 3x3 convs (64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3, M; M = 2x2 max
pool) with ReLU, then FC 25088-4096-4096-1000 with ReLU and dropout.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._registry import register_model

__all__ = ["VGG", "vgg16"]

#: Configuration D: output channels of each 3x3 conv, "M" for a 2x2/2 max pool.
_CONFIG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    """A VGG network from a configuration of conv widths and pools (3x3 convs, padding 1)."""

    def __init__(self, config: tuple = _CONFIG_D, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU()]
                cin = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


@register_model(
    input_shape=(1, 3, 224, 224),
    description="VGG-16 (configuration D), 13 3x3 convs and 3 FC layers",
    published={
        "macs": 15.5e9, "params": 138.36e6,
        "source": "Simonyan & Zisserman ICLR 2015 Table 2 (138M parameters); seed 001 (Kim et al. ICLR 2016: "
        "138M, 15484M FLOPs); seed 004 (15.5 GFLOPS); MobileNet paper Table 8 (15300M mult-adds)",
    },
)
def vgg16(num_classes: int = 1000) -> nn.Module:
    """VGG-16 (138,357,544 parameters, about 15.47G MACs per 224x224 image)."""
    return VGG(_CONFIG_D, num_classes)
