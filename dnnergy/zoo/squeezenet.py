"""SqueezeNet 1.0 (Iandola et al. 2016) and 1.1 (the SqueezeNet repository's v1.1), 224x224 input.

A Fire module squeezes with ``s`` 1x1 filters, then expands with ``e`` 1x1 and ``e`` 3x3
filters whose outputs are concatenated. Max pools are 3x3/2 in ceil mode, as in Caffe.
1.0: conv1 96 7x7/2, pools after conv1, fire4 and fire8. 1.1: conv1 64 3x3/2, pools after
conv1, fire3 and fire5, which cuts the MACs 2.4x at nearly the same parameter count.
The classifier is dropout, conv10 (1x1 to the classes), ReLU and global average pooling.

NB: the paper's Table 1 shapes (conv1 111x111) are for a 227x227 input; at the 224x224
used here conv1 of 1.0 is 109x109 and the later maps are 54, 27 and 13 (1.1: 111, 55, 27, 13).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import register_model

__all__ = ["Fire", "SqueezeNet", "squeezenet1_0", "squeezenet1_1"]

#: Per version: (conv1 width, conv1 kernel, stages); a stage is a list of (squeeze, expand) Fire modules
#: and every stage but the last ends with a max pool.
_VERSIONS = {
    "1_0": (96, 7, [[(16, 64), (16, 64), (32, 128)], [(32, 128), (48, 192), (48, 192), (64, 256)], [(64, 256)]]),
    "1_1": (64, 3, [[(16, 64), (16, 64)], [(32, 128), (32, 128)], [(48, 192), (48, 192), (64, 256), (64, 256)]]),
}


class Fire(nn.Module):
    """Squeeze (1x1, ``s``) then expand (1x1 ``e`` and 3x3 ``e``, concatenated), ReLU after each conv."""

    def __init__(self, cin: int, s: int, e: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, s, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(s, e, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(s, e, 3, padding=1), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1(x), self.expand3(x)], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet ``version`` "1_0" or "1_1" (see the module docstring)."""

    def __init__(self, version: str = "1_0", num_classes: int = 1000):
        super().__init__()
        width, kernel, stages = _VERSIONS[version]
        layers: list[nn.Module] = [nn.Conv2d(3, width, kernel, stride=2), nn.ReLU()]
        cin = width
        for stage in stages:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            for s, e in stage:
                layers.append(Fire(cin, s, e))
                cin = 2 * e
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(cin, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x)).flatten(1)


@register_model(
    input_shape=(1, 3, 224, 224),
    description="SqueezeNet 1.0: conv1 96 7x7/2, eight Fire modules, conv10",
    published={
        "macs": 0.84e9, "params": 1_248_424,
        "source": "Iandola et al. 2016 Table 1 (1,248,424 parameters, 4.8 MB uncompressed at 32 bit); "
        "seed 004 (0.84 GFLOPS, from albanie/convnet-burden)",
    },
)
def squeezenet1_0(num_classes: int = 1000) -> nn.Module:
    """SqueezeNet 1.0 (1,248,424 parameters)."""
    return SqueezeNet("1_0", num_classes)


@register_model(
    input_shape=(1, 3, 224, 224),
    description="SqueezeNet 1.1: conv1 64 3x3/2, earlier pools, 2.4x fewer MACs than 1.0",
    published={
        "macs": 0.36e9, "params": 1_235_496,
        "source": "DeepScale/SqueezeNet README for v1.1 (0.72 GFLOPS/image = 0.36G MACs, 2.4x less than 1.0's 1.72); "
        "parameters 1,235,496 counted from its prototxt (ONNX/OpenVINO model zoo: 1.236 MParams)",
    },
)
def squeezenet1_1(num_classes: int = 1000) -> nn.Module:
    """SqueezeNet 1.1 (1,235,496 parameters)."""
    return SqueezeNet("1_1", num_classes)
