"""Building blocks shared by the reference models: conv-BN-ReLU and the three ways to upsample ×2.

Upsampling (the trade-offs are topic 8 of the concepts assignment):

- ``TransposedConvUp``: ``ConvTranspose2d(k=2, s=2)``, learnable; with k=3, s=2 its kernels overlap
  unevenly and leave a checkerboard (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016).
- ``BilinearConvUp``: fixed bilinear interpolation, then a learnable 3×3 convolution.
- ``PixelShuffleUp``: a 3×3 convolution to ``4 × out_channels`` then ``PixelShuffle(2)``
  (sub-pixel convolution, Shi et al., ESPCN, CVPR 2016).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1) -> nn.Sequential:
    """Conv (no bias) → BatchNorm → ReLU, padded to keep the size when ``stride == 1``."""
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TransposedConvUp(nn.Module):
    """×2 upsampling by a learnable transposed convolution. (N, C_in, H, W) → (N, C_out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        # output = (H - 1)·2 - 2·padding + kernel_size + output_padding = 2H for k=2 (p=0) and k=3 (p=1, op=1)
        padding, output_padding = (kernel_size - 1) // 2, kernel_size % 2
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=padding,
                                     output_padding=output_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class BilinearConvUp(nn.Module):
    """×2 bilinear interpolation followed by a 3×3 convolution. (N, C_in, H, W) → (N, C_out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class PixelShuffleUp(nn.Module):
    """×2 sub-pixel convolution: 3×3 conv to 4·C_out channels, then PixelShuffle. (N, C_in, H, W) → (N, C_out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))  # (N, 4·C_out, H, W) → (N, C_out, 2H, 2W)


UPSAMPLERS: dict[str, type[nn.Module]] = {
    "transposed": TransposedConvUp,
    "bilinear": BilinearConvUp,
    "pixelshuffle": PixelShuffleUp,
}


def make_upsampler(mode: str, in_channels: int, out_channels: int) -> nn.Module:
    """A ×2 upsampling block by name: one of ``UPSAMPLERS``."""
    if mode not in UPSAMPLERS:
        raise ValueError(f"unknown upsampling mode {mode!r}; valid modes: {sorted(UPSAMPLERS)}")
    return UPSAMPLERS[mode](in_channels, out_channels)
