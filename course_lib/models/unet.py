"""U-Net: Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015.

An encoder of double-conv blocks and 2×2 max pools (channels double, resolution halves at each
level), a decoder that upsamples ×2 and concatenates the encoder features of the same resolution
(the skip connections) before another double conv, and a 1×1 classifier at full resolution.

Parameters at 21 classes: ``UNet()`` (base_width 32, depth 4, transposed) 7,763,701;
``UNet(base_width=16, depth=3)`` 483,077.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.models.blocks import conv_bn_relu, make_upsampler


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3 conv-BN-ReLU layers, size kept."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


class UNet(nn.Module):
    """Encoder–decoder with concatenated skip connections.

    Args:
        in_channels: image channels.
        num_classes: output channels.
        base_width: channels at full resolution; level ``i`` has ``base_width · 2**i``.
        depth: number of 2× poolings (the bottleneck sits at 1/2**depth).
        up_mode: ``"transposed"``, ``"bilinear"`` (bilinear + 3×3 conv) or ``"pixelshuffle"``.
        skips: ``False`` drops the skip connections (the ablation of the concepts notebook): each decoder
            level convolves the upsampled features alone, so its double conv takes ``w_i`` channels, not ``2·w_i``.
    Shape:
        (N, in_channels, H, W) → (N, num_classes, H, W); H and W divisible by 2**depth.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 21, base_width: int = 32, depth: int = 4,
                 up_mode: str = "transposed", skips: bool = True) -> None:
        super().__init__()
        self.skips = skips
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.encoders = nn.ModuleList([double_conv(in_channels, widths[0])])
        self.encoders.extend(double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(make_upsampler(up_mode, widths[i + 1], widths[i]) for i in reversed(range(depth)))
        fused = 2 if skips else 1  # a decoder level convolves the upsampled features with (or without) the skip
        self.decoders = nn.ModuleList(double_conv(fused * widths[i], widths[i]) for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"UNet(depth={self.depth}) needs H and W divisible by {2**self.depth}, got {tuple(x.shape)}")
        features = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else self.pool(x))  # level i: (N, widths[i], H/2**i, W/2**i)
            features.append(x)
        x = features.pop()  # the bottleneck
        for up, decoder in zip(self.ups, self.decoders):
            skip = features.pop()
            x = decoder(torch.cat([up(x), skip], dim=1) if self.skips else up(x))  # (N, 2·w_i or w_i, ...) → (N, w_i, ...)
        return self.classifier(x)
