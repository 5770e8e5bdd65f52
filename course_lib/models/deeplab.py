"""DeepLabV3 in miniature: Chen, Papandreou, Schroff and Adam, "Rethinking Atrous Convolution for
Semantic Image Segmentation", 2017; ASPP from DeepLab (Chen et al., TPAMI 2018). Backbone: the
inverted residual blocks of MobileNetV2 (Sandler et al., CVPR 2018), as in DeepLabV3-MobileNetV2.

Once the backbone reaches the chosen output stride (8 or 16), its later stages stop striding and
dilate their depthwise convolutions instead, so the receptive field keeps growing while the
resolution stays. ASPP then looks at the feature map through parallel atrous convolutions at
several rates plus an image-level pooling branch, and the scores are bilinearly upsampled.

The rates of the paper (6, 12, 18 at output stride 16) suit 513-pixel crops whose feature map is 33
pixels wide; at 64×64 and output stride 8 the map is 8 pixels wide, so the default rates are (2, 4, 6).

Parameters at 21 classes: ``DeepLabV3()`` (output stride 8, width_mult 1.0) 959,957.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.blocks import conv_bn_relu


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand → 3×3 depthwise (strided or dilated) → 1×1 linear projection,
    added to the input when the shapes match (stride 1, same channels); no projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dilation: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers = [] if expand_ratio == 1 else [conv_bn_relu(in_channels, hidden, kernel_size=1)]
        layers += [
            conv_bn_relu(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: a 1×1 branch, one 3×3 branch per rate, and global pooling.

    Shape: (N, in_channels, h, w) → (N, out_channels, h, w), resolution kept.
    """

    def __init__(self, in_channels: int, out_channels: int = 128, rates: tuple[int, ...] = (2, 4, 6)) -> None:
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(in_channels, out_channels, kernel_size=1)])
        self.branches.extend(conv_bn_relu(in_channels, out_channels, dilation=r) for r in rates)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.ReLU(inplace=True)
        )  # no BatchNorm on a 1×1 map: batch statistics of one value per image are unstable at batch size 1
        self.project = nn.Sequential(
            conv_bn_relu(out_channels * (len(rates) + 2), out_channels, kernel_size=1), nn.Dropout(0.1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])  # (N, C, 1, 1) → (N, C, h, w)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


# (expand_ratio, out_channels, repeats, stride) of MobileNetV2, trimmed to four stages after the stem
_BACKBONE = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1))


class DeepLabV3(nn.Module):
    """DeepLabV3 with a small MobileNetV2-style backbone.

    Args:
        in_channels: image channels.
        num_classes: output channels.
        output_stride: 8 or 16; strides beyond it become dilation.
        atrous_rates: dilation of the ASPP 3×3 branches.
        width_mult: scales the backbone's channel counts.
        aspp_channels: channels of every ASPP branch.
    Shape:
        (N, in_channels, H, W) → (N, num_classes, H, W); H and W divisible by ``output_stride``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 21, output_stride: int = 8,
                 atrous_rates: tuple[int, ...] = (2, 4, 6), width_mult: float = 1.0, aspp_channels: int = 128) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        channels = max(8, int(32 * width_mult))
        layers: list[nn.Module] = [conv_bn_relu(in_channels, channels, stride=2)]
        stride, dilation = 2, 1
        for expand, out, repeats, s in _BACKBONE:
            out = max(8, int(out * width_mult))
            for i in range(repeats):
                block_stride = s if i == 0 else 1
                if block_stride > 1 and stride * block_stride > output_stride:
                    dilation *= block_stride  # keep the resolution, grow the receptive field
                    block_stride = 1
                stride *= block_stride
                layers.append(InvertedResidual(channels, out, block_stride, dilation, expand))
                channels = out
        self.backbone = nn.Sequential(*layers)
        self.aspp = ASPP(channels, aspp_channels, atrous_rates)
        self.head = nn.Sequential(conv_bn_relu(aspp_channels, aspp_channels), nn.Conv2d(aspp_channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)  # (N, C, H/os, W/os)
        scores = self.head(self.aspp(features))
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
