"""A small vision transformer for 32x32 CIFAR images, with attention written out by hand.

Dosovitskiy et al. (ICLR 2021) architecture at a CIFAR scale: 4x4 patches (a 4x4/4 conv,
so 8x8 = 64 patches), a class token and a learned position embedding (65 tokens of width
192), six pre-norm blocks, a final LayerNorm and a linear head on the class token. Each
block is ``x + attn(LN(x))`` then ``x + mlp(LN(x))`` with 3 heads of width 64 and an MLP
of width 384 with GELU.

Attention is hand-written, not ``nn.MultiheadAttention`` or ``scaled_dot_product_attention``:
one fused q,k,v projection (``Linear(192, 576)``), ``q @ k.transpose(-2, -1)`` scaled by
``64 ** -0.5``, softmax, ``@ v``, and an output projection. The tracer therefore sees two
activation x activation matmuls per block (``MATMUL`` layers), as a user's own transformer
code would produce. Counts at batch 1 are derived by hand in ``tests/zoo/test_zoo.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import register_model

__all__ = ["Attention", "Block", "VisionTransformer", "vit_tiny"]


class Attention(nn.Module):
    """Multi-head self-attention: fused qkv projection, softmax(q k^T / sqrt(d)) v, output projection."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [n, heads, t, d/heads]
        scores = (q * self.scale) @ k.transpose(-2, -1)  # [n, heads, t, t]
        out = scores.softmax(dim=-1) @ v  # [n, heads, t, d/heads]
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: attention and an MLP (dim -> hidden -> dim, GELU), each residual."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT with a class token and learned position embedding; ``image`` and ``patch`` sizes in pixels."""

    def __init__(self, image: int = 32, patch: int = 4, dim: int = 192, depth: int = 6, heads: int = 3, hidden: int = 384, num_classes: int = 10):
        super().__init__()
        tokens = (image // patch) ** 2 + 1
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [n, patches, dim]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


@register_model(
    input_shape=(1, 3, 32, 32),
    description="ViT for CIFAR: 4x4 patches, dim 192, depth 6, 3 heads, MLP 384, hand-written attention",
    published={
        "macs": 125_341_824, "params": 1_806_538,
        "source": "derived by hand from the configuration (arithmetic in tests/zoo/test_zoo.py); no paper reports this size",
    },
)
def vit_tiny(num_classes: int = 10) -> nn.Module:
    """The CIFAR ViT above (1,806,538 parameters, 125,341,824 MACs per 32x32 image)."""
    return VisionTransformer(num_classes=num_classes)
