"""Mask AP, the COCO measure of instance segmentation (Lin et al., "Microsoft COCO: Common Objects in Context",
ECCV 2014; the evaluation of ``pycocotools.cocoeval``), for one class of one image: the grader's oracle of topic
6's ``mask_ap``.

At an IoU threshold t, the predictions are taken in order of decreasing score. Each one is matched to the
still-unmatched ground-truth mask it overlaps best, provided that IoU reaches t (a true positive); otherwise it
is a false positive. Precision and recall along that list trace a curve; AP at t is the mean, over the 101 recall
levels 0, 0.01, …, 1, of the best precision reached at that recall or beyond (0 where the recall is never reached).
COCO's mask AP is the mean of AP at t = 0.50, 0.55, …, 0.95.
"""

from __future__ import annotations

import numpy
import torch

COCO_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
RECALL_LEVELS = 101
MAX_DETECTIONS = 100  # COCO keeps the 100 best-scored predictions of an image


def mask_iou(pred_masks: torch.Tensor, true_masks: torch.Tensor) -> torch.Tensor:
    """IoU of every predicted mask with every true mask.

    Args:
        pred_masks: (P, H, W) bool.
        true_masks: (G, H, W) bool.
    Returns:
        (P, G) float64; 0 where both masks are empty.
    """
    p, g = pred_masks.flatten(1).double(), true_masks.flatten(1).double()
    inter = p @ g.t()
    union = p.sum(1, keepdim=True) + g.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def average_precision(pred_masks: torch.Tensor, scores: torch.Tensor, true_masks: torch.Tensor,
                      iou_threshold: float) -> float:
    """AP of one class of one image at one IoU threshold, as ``pycocotools`` computes it (101 recall levels).

    Args:
        pred_masks: (P, H, W) bool predicted instances.
        scores: (P,) float confidences.
        true_masks: (G, H, W) bool ground-truth instances.
        iou_threshold: t; a match needs IoU ≥ t.
    Returns:
        AP in [0, 1]; NaN when there is no ground truth (COCO leaves such a class out). Only the
        ``MAX_DETECTIONS`` best-scored predictions count.
    """
    if true_masks.shape[0] == 0:
        return float("nan")
    order = torch.argsort(scores, descending=True, stable=True)[:MAX_DETECTIONS]
    ious = mask_iou(pred_masks[order], true_masks)
    taken = torch.zeros(true_masks.shape[0], dtype=torch.bool)
    hits = []
    for row in ious:
        best, best_iou = -1, min(iou_threshold, 1 - 1e-10)
        for g, iou in enumerate(row.tolist()):  # the last unmatched mask of the highest IoU ≥ t, as pycocotools
            if not taken[g] and iou >= best_iou:
                best, best_iou = g, iou
        if best >= 0:
            taken[best] = True
        hits.append(best >= 0)
    tp = torch.tensor(hits, dtype=torch.float64).cumsum(0)
    recall = tp / true_masks.shape[0]
    precision = tp / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    envelope = precision.flip(0).cummax(0).values.flip(0)  # the best precision from each rank on
    total = 0.0
    for level in numpy.linspace(0.0, 1.0, RECALL_LEVELS):  # the levels pycocotools uses, bit for bit
        reached = torch.nonzero(recall >= float(level))
        total += float(envelope[reached[0, 0]]) if reached.numel() else 0.0
    return total / RECALL_LEVELS


def coco_mask_ap(pred_masks: torch.Tensor, scores: torch.Tensor, true_masks: torch.Tensor,
                 thresholds: tuple[float, ...] = COCO_THRESHOLDS) -> float:
    """Mask AP averaged over IoU thresholds (COCO's 0.50:0.95 by default). Shapes as ``average_precision``."""
    return sum(average_precision(pred_masks, scores, true_masks, t) for t in thresholds) / len(thresholds)
