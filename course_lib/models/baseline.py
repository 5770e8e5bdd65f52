"""Two baselines: a per-pixel classifier (1×1 convolutions only) and a small FCN.

FCN: Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015.
Here a VGG-like stack of 3×3 conv-BN-ReLU layers reaches stride 8, a 1×1 convolution scores the
classes, and bilinear interpolation brings the scores back to the input size (FCN-8s without skips).

Parameters at 21 classes: ``PixelwiseClassifier()`` 5,781; ``FCN()`` 437,877.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.blocks import conv_bn_relu


class PixelwiseClassifier(nn.Module):
    """Classifies each pixel from its own colour alone: a 1×1-convolution MLP, receptive field 1 pixel.

    (N, in_channels, H, W) → (N, num_classes, H, W). The floor of the calibration: it cannot see shape or texture.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 21, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FCN(nn.Module):
    """A small fully convolutional network with output stride 8.

    Args:
        in_channels: image channels.
        num_classes: output channels.
        width: channels of the first stage; stages have width, 2·width, 4·width.
    Shape:
        (N, in_channels, H, W) → (N, num_classes, H, W) logits; H and W divisible by 8.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 21, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, w), conv_bn_relu(w, w, stride=2),          # 1/2
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w, stride=2),        # 1/4
            conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w, stride=2),    # 1/8
            conv_bn_relu(4 * w, 4 * w),
        )
        self.classifier = nn.Conv2d(4 * w, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.classifier(self.features(x))  # (N, K, H/8, W/8)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
