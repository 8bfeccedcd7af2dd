"""Building blocks shared by several families: conv + BatchNorm (+ ReLU), channel shuffle, stem-stages-classifier nets."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["conv_bn", "channel_shuffle", "StagedNet"]


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """A bias-free ``kernel x kernel`` conv with "same" padding, BatchNorm, then ``act`` (None: no activation)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle by reshape/transpose: ``[N, g*c, H, W] -> [N, c*g, H, W]`` (no arithmetic)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class StagedNet(nn.Module):
    """``stem`` -> ``stages`` -> global average pool -> ``fc``: the outline of ResNet and ShuffleNet.

    Subclasses build ``stem`` and the list of stage blocks, then call :meth:`finish` with
    the channel count the last block produces.
    """

    def finish(self, stem: nn.Module, blocks: list[nn.Module], channels: int, num_classes: int) -> None:
        self.stem = stem
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))
