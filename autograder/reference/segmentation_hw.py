"""Reference solution of the homework's ``ResidualBlock`` and ``SegmentationModel``.

Kept identical, line for line, to the solution regions of ``source/segmentation_hw/segmentation_hw.ipynb``
(``tests/test_hw_notebook.py`` checks it); the benchmarks and the grader import it from here.
"""

import torch
import torch.nn.functional as F
from torch import nn


# BEGIN ResidualBlock
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            # projection shortcut: match channels and resolution of the main path
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))
# END ResidualBlock


# BEGIN SegmentationModel
class SegmentationModel(nn.Module):
    def __init__(self, num_classes=21, width=32, num_blocks=2, downsample=True, in_channels=3):
        super().__init__()
        self.downsample = downsample
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        if downsample:
            widths = [width, 2 * width, 4 * width]  # stages at 1/2, 1/4, 1/8 of the input
        else:
            widths = [width, width, width]  # full resolution throughout
        stride = 2 if downsample else 1
        self.stages = nn.ModuleList()
        in_ch = width
        for out_ch in widths:
            blocks = [ResidualBlock(in_ch, out_ch, stride)]
            blocks += [ResidualBlock(out_ch, out_ch) for _ in range(num_blocks - 1)]
            self.stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        if downsample:
            # upsampling path: x2 bilinear, concatenate the skip of that size, fuse with a residual block
            self.fuse = nn.ModuleList([
                ResidualBlock(widths[2] + widths[1], widths[1]),  # 1/8 -> 1/4
                ResidualBlock(widths[1] + widths[0], widths[0]),  # 1/4 -> 1/2
            ])
            head_in = 2 * width  # 1/2 -> full size, concatenated with the stem's features
        else:
            head_in = width
        self.classifier = nn.Conv2d(head_in, num_classes, 1)

    def forward(self, x):
        stem = self.stem(x)
        features = []
        out = stem
        for stage in self.stages:
            out = stage(out)
            features.append(out)
        if self.downsample:
            for fuse, skip in zip(self.fuse, [features[1], features[0]]):
                out = F.interpolate(out, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                out = fuse(torch.cat([out, skip], dim=1))
            out = F.interpolate(out, size=stem.shape[-2:], mode="bilinear", align_corners=False)
            out = torch.cat([out, stem], dim=1)
        return self.classifier(out)
# END SegmentationModel
