"""CaffeNet and AlexNet (Krizhevsky et al. NeurIPS 2012) on 227x227 inputs, two-GPU groups kept.

``caffenet`` is Caffe's ``bvlc_reference_caffenet``: each of the first two conv blocks is
conv, ReLU, 3x3/2 max pool, then local response normalization (size 5, alpha 1e-4, beta
0.75). ``alexnet`` is Caffe's ``bvlc_alexnet``, the paper's order: normalization before the
pool. Every shape and count of weights is identical; the normalization runs on the larger
55x55 / 27x27 map in ``alexnet``, so only its element-wise op counts differ. conv2, conv4
and conv5 have ``groups=2`` (the paper's split over two GPUs), which is what gives 61M
parameters and 724M MACs.

NB: ``nn.LocalResponseNorm`` divides alpha by the size, as Caffe's ACROSS_CHANNELS LRN does.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._registry import register_model

__all__ = ["CaffeNet", "caffenet", "alexnet"]

_PUBLISHED = {
    "macs": 724e6, "params": 61e6,
    "source": "seed 002 table (CaffeNet #Edges 724M, #Parm 61M); seed 001 (Kim et al. ICLR 2016: AlexNet 61M weights, 725M FLOPs)",
}


class CaffeNet(nn.Module):
    """Five convs (96 11x11/4, 256 5x5 g2, 384 3x3, 384 3x3 g2, 256 3x3 g2) and FC 9216-4096-4096-classes.

    ``lrn_first`` puts each LRN before its max pool (AlexNet) instead of after (CaffeNet).
    """

    def __init__(self, num_classes: int = 1000, lrn_first: bool = False):
        super().__init__()

        def block(conv: nn.Conv2d, pool: bool, lrn: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [conv, nn.ReLU()]
            tail = ([nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)] if lrn else []) + ([nn.MaxPool2d(3, 2)] if pool else [])
            return layers + (tail if lrn_first else tail[::-1])

        self.features = nn.Sequential(
            *block(nn.Conv2d(3, 96, 11, stride=4), pool=True, lrn=True),
            *block(nn.Conv2d(96, 256, 5, padding=2, groups=2), pool=True, lrn=True),
            *block(nn.Conv2d(256, 384, 3, padding=1), pool=False, lrn=False),
            *block(nn.Conv2d(384, 384, 3, padding=1, groups=2), pool=False, lrn=False),
            *block(nn.Conv2d(384, 256, 3, padding=1, groups=2), pool=True, lrn=False),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


@register_model(
    input_shape=(1, 3, 227, 227),
    description="Caffe bvlc_reference_caffenet: AlexNet with pool before LRN, grouped conv2/4/5",
    published=_PUBLISHED,
)
def caffenet(num_classes: int = 1000) -> nn.Module:
    """CaffeNet (60,965,224 parameters, 724,406,816 MACs per 227x227 image)."""
    return CaffeNet(num_classes, lrn_first=False)


@register_model(
    input_shape=(1, 3, 227, 227),
    description="AlexNet as in the paper (Caffe bvlc_alexnet): LRN before pool, grouped conv2/4/5",
    published=_PUBLISHED,
)
def alexnet(num_classes: int = 1000) -> nn.Module:
    """AlexNet; same shapes and counts as :func:`caffenet`, LRN and pool swapped."""
    return CaffeNet(num_classes, lrn_first=True)
