"""Building blocks shared by several families: conv + BatchNorm (+ ReLU), channel shuffle."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["conv_bn", "channel_shuffle"]


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
