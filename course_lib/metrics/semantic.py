"""Semantic-segmentation metrics, every one derived from a confusion matrix ``cm[true, predicted]``.

Convention: counts are accumulated over the whole data set, then divided once (not averaged per
image). A class absent from both ground truth and prediction (its row and column are empty) has an
undefined IoU/Dice: it is reported as NaN per class and left out of every mean. This is the
convention of torchmetrics' ``MulticlassJaccardIndex(average="macro")``.

IoU_c = TP / (TP + FP + FN), Dice_c = 2TP / (2TP + FP + FN), Dice = 2·IoU / (1 + IoU).
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


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """(K,) Dice/F1 per class, NaN where the class appears in neither truth nor prediction."""
    tp, fp, fn = _counts(cm)
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_dice(cm: torch.Tensor) -> float:
    return _nanmean(dice_per_class(cm))


def frequency_weighted_iou(cm: torch.Tensor) -> float:
    """IoU per class weighted by the class's share of ground-truth pixels."""
    tp, _, fn = _counts(cm)
    freq = (tp + fn) / (tp + fn).sum().clamp(min=1)
    iou = torch.nan_to_num(iou_per_class(cm), nan=0.0)
    return float((freq * iou).sum())


def dice_from_iou(iou: float | torch.Tensor) -> float | torch.Tensor:
    """Dice = 2·IoU / (1 + IoU) (for one class, one mask pair); e.g. IoU 0.818 ↔ Dice 0.90."""
    return 2 * iou / (1 + iou)


def iou_from_dice(dice: float | torch.Tensor) -> float | torch.Tensor:
    """IoU = Dice / (2 − Dice)."""
    return dice / (2 - dice)


def summarize(cm: torch.Tensor) -> dict[str, float]:
    """All scalar metrics of a confusion matrix, as plain floats."""
    return {
        "miou": mean_iou(cm),
        "pixel_accuracy": pixel_accuracy(cm),
        "mean_class_accuracy": mean_class_accuracy(cm),
        "mean_dice": mean_dice(cm),
        "fw_iou": frequency_weighted_iou(cm),
    }
