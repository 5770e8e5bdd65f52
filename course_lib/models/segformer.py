"""SegFormer in miniature: Xie et al., "SegFormer: Simple and Efficient Design for Semantic
Segmentation with Transformers", NeurIPS 2021.

A hierarchical Mix Transformer encoder (four stages at 1/4, 1/8, 1/16, 1/32 of the input) built from
overlapping patch embeddings (strided convolutions), efficient self-attention whose keys and values
come from a map shrunk by a spatial-reduction ratio R (cost O(N²/R²) instead of O(N²) for N
tokens), and Mix-FFN (a 3×3 depthwise convolution between the two linear layers gives position
information, so there is no positional encoding). The all-MLP decoder projects each stage to one
width, upsamples all to 1/4, concatenates, fuses and classifies.

Parameters at 21 classes: ``SegFormer()`` (the MiT-B0 widths, decoder 256) 3,719,541.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OverlapPatchEmbed(nn.Module):
    """Strided convolution with a kernel larger than its stride, then LayerNorm.

    Shape: (N, C_in, H, W) → tokens (N, h·w, dim) and the grid size (h, w).
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)  # (N, dim, h, w)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w  # (N, h·w, dim)


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from the token grid shrunk ``sr_ratio`` times per side.

    Shape: (N, h·w, dim) → (N, h·w, dim).
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.sr_ratio = num_heads, sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, tokens, dim = x.shape
        heads = self.num_heads
        q = self.q(x).view(n, tokens, heads, dim // heads).transpose(1, 2)  # (N, heads, h·w, d)
        if self.sr_ratio > 1:
            grid = x.transpose(1, 2).reshape(n, dim, h, w)
            x = self.norm(self.sr(grid).flatten(2).transpose(1, 2))  # (N, h·w / R², dim)
        k, v = self.kv(x).view(n, -1, 2, heads, dim // heads).permute(2, 0, 3, 1, 4)  # each (N, heads, m, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, h·w, d)
        return self.proj(out.transpose(1, 2).reshape(n, tokens, dim))


class MixFFN(nn.Module):
    """Linear → 3×3 depthwise conv → GELU → linear. Shape: (N, h·w, dim) → (N, h·w, dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.fc1(x)
        n, _, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(n, c, h, w)).flatten(2).transpose(1, 2)  # (N, h·w, hidden)
        return self.fc2(F.gelu(x))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MixFFN(LN(x))."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.ffn = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class SegFormer(nn.Module):
    """Mix Transformer encoder + all-MLP decoder.

    Args:
        in_channels: image channels.
        num_classes: output channels.
        embed_dims, depths, num_heads, sr_ratios: per stage (four stages).
        decoder_dim: the common width of the decoder.
    Shape:
        (N, in_channels, H, W) → (N, num_classes, H, W); H and W divisible by 32.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 21, embed_dims: tuple[int, ...] = (32, 64, 160, 256),
                 depths: tuple[int, ...] = (2, 2, 2, 2), num_heads: tuple[int, ...] = (1, 2, 5, 8),
                 sr_ratios: tuple[int, ...] = (8, 4, 2, 1), decoder_dim: int = 256) -> None:
        super().__init__()
        self.embeds, self.stages, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        channels = in_channels
        for i, dim in enumerate(embed_dims):
            patch, stride = (7, 4) if i == 0 else (3, 2)
            self.embeds.append(OverlapPatchEmbed(channels, dim, patch, stride))
            self.stages.append(nn.ModuleList(TransformerBlock(dim, num_heads[i], sr_ratios[i]) for _ in range(depths[i])))
            self.norms.append(nn.LayerNorm(dim))
            channels = dim
        self.linear_c = nn.ModuleList(nn.Linear(dim, decoder_dim) for dim in embed_dims)
        self.fuse = nn.Sequential(
            nn.Conv2d(decoder_dim * len(embed_dims), decoder_dim, 1, bias=False),
            nn.BatchNorm2d(decoder_dim), nn.ReLU(inplace=True), nn.Dropout(0.1),
        )
        self.classifier = nn.Conv2d(decoder_dim, num_classes, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four stage outputs: (N, embed_dims[i], H/2**(i+2), W/2**(i+2))."""
        features = []
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms):
            tokens, h, w = embed(x)
            for block in blocks:
                tokens = block(tokens, h, w)
            x = norm(tokens).transpose(1, 2).reshape(tokens.shape[0], -1, h, w)  # (N, dim, h, w)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encode(x)
        size = features[0].shape[-2:]  # 1/4 of the input
        projected = []
        for feat, linear in zip(features, self.linear_c):
            y = linear(feat.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(feat.shape[0], -1, *feat.shape[-2:])
            projected.append(F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        scores = self.classifier(self.fuse(torch.cat(projected[::-1], dim=1)))  # (N, K, H/4, W/4)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
