"""Thin ``nn.Module`` wrappers around ``course_lib.losses.functional``; each forward is ``(logits, target) → scalar``."""

from __future__ import annotations

import torch
from torch import nn

from course_lib.losses import functional as LF


class CrossEntropyLoss(nn.Module):
    def __init__(self, ignore_index: int = 255, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.cross_entropy(logits, target, self.ignore_index, self.weight, self.label_smoothing)


class TverskyLoss(nn.Module):
    def __init__(self, alpha: float = 0.5, beta: float = 0.5, gamma: float = 1.0, ignore_index: int = 255,
                 eps: float = 1.0, absent: str = "skip"):
        super().__init__()
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.ignore_index, self.eps, self.absent = ignore_index, eps, absent

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.tversky_loss(logits, target, self.alpha, self.beta, self.gamma, self.ignore_index, self.eps, self.absent)


class DiceLoss(TverskyLoss):
    """Tversky with α = β = 0.5, γ = 1."""

    def __init__(self, ignore_index: int = 255, eps: float = 1.0, absent: str = "skip"):
        super().__init__(0.5, 0.5, 1.0, ignore_index, eps, absent)


class CEDiceLoss(nn.Module):
    def __init__(self, ignore_index: int = 255, dice_weight: float = 1.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.ignore_index, self.dice_weight = ignore_index, dice_weight
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.ce_dice_loss(logits, target, self.ignore_index, self.dice_weight, self.weight)


class FocalLoss(nn.Module):
    def __init__(self, gamma: float = 2.0, alpha: float | torch.Tensor | None = None, ignore_index: int = 255):
        super().__init__()
        self.gamma, self.alpha, self.ignore_index = gamma, alpha, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.focal_loss(logits, target, self.gamma, self.alpha, self.ignore_index)


class OhemCrossEntropyLoss(nn.Module):
    def __init__(self, keep_fraction: float = 0.25, min_kept: int = 1, ignore_index: int = 255):
        super().__init__()
        self.keep_fraction, self.min_kept, self.ignore_index = keep_fraction, min_kept, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.ohem_cross_entropy(logits, target, self.keep_fraction, self.min_kept, self.ignore_index)
