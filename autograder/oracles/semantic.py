"""Dice per class from a confusion matrix ``cm[true, predicted]`` (the Dice half of topic 6's ``iou_and_dice``;
the IoU half is the homework's own metric, ``course_lib.metrics.iou_per_class``).

Dice_c = 2TP / (2TP + FP + FN), NaN for a class that appears in neither truth nor prediction.
"""

from __future__ import annotations

import torch


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """(K,) float64 Dice/F1 per class, NaN where the class appears in neither truth nor prediction."""
    cm = cm.double()
    tp = cm.diag()
    denom = cm.sum(0) + cm.sum(1)  # (TP + FP) + (TP + FN)
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))
