"""Semantic-segmentation metrics of the homework, every one derived from a confusion matrix ``cm[true, predicted]``.

Convention: counts are accumulated over the whole data set, then divided once (not averaged per
image). A class absent from both ground truth and prediction (its row and column are empty) has an
undefined IoU: it is reported as NaN per class and left out of every mean. This is the
convention of torchmetrics' ``MulticlassJaccardIndex(average="macro")``.

IoU_c = TP / (TP + FP + FN).
"""

from __future__ import annotations

import torch


def _counts(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cm = cm.double()
    tp = cm.diag()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp  # true positives, false positives, false negatives


def _nanmean(x: torch.Tensor) -> float:
    valid = ~torch.isnan(x)
    return float(x[valid].mean()) if valid.any() else float("nan")


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """(K,) float64 IoU per class, NaN where the class appears in neither truth nor prediction."""
    tp, fp, fn = _counts(cm)
    union = tp + fp + fn
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(cm: torch.Tensor) -> float:
    """Mean of ``iou_per_class`` over the classes that appear."""
    return _nanmean(iou_per_class(cm))


def pixel_accuracy(cm: torch.Tensor) -> float:
    """Correct pixels / counted pixels (NaN when nothing was counted)."""
    total = cm.sum()
    return float(cm.diag().sum().double() / total) if total > 0 else float("nan")


def class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """(K,) recall per class, TP / (TP + FN); NaN for classes with no ground-truth pixel."""
    tp, _, fn = _counts(cm)
    support = tp + fn
    return torch.where(support > 0, tp / support.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_class_accuracy(cm: torch.Tensor) -> float:
    return _nanmean(class_accuracy(cm))


def frequency_weighted_iou(cm: torch.Tensor) -> float:
    """IoU per class weighted by the class's share of ground-truth pixels."""
    tp, _, fn = _counts(cm)
    freq = (tp + fn) / (tp + fn).sum().clamp(min=1)
    iou = torch.nan_to_num(iou_per_class(cm), nan=0.0)
    return float((freq * iou).sum())
