"""Segmentation losses as pure tensor functions.

Papers: Dice — Milletari, Navab and Ahmadi, "V-Net", 3DV 2016; focal — Lin et al., "Focal Loss for
Dense Object Detection", ICCV 2017; Tversky — Salehi, Erdogmus and Gholipour, 2017; focal Tversky —
Abraham and Khan, 2019; OHEM — Shrivastava, Gupta and Girshick, CVPR 2016.

Conventions shared by every function here:

- ``logits``: (N, C, H, W) float, unnormalised scores; ``target``: (N, H, W) int64 class ids.
- Pixels whose target equals ``ignore_index`` take no part: not in the loss, not in any sum.
- A batch in which every pixel is ignored returns ``0 * logits.sum()``: zero, finite, with a graph.
- Region losses (Dice, Tversky) sum over the whole batch per class. A class with no ground-truth
  pixel in the batch is *absent*; by default it is left out of the class mean (``absent="skip"``), because
  its ratio is 0/0 or only punishes false positives; ``absent="include"`` keeps it (smoothed by ``eps``),
  which then pushes its probability towards zero everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _valid_pixels(target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """(N, H, W) bool: pixels that count."""
    return target != ignore_index


def _one_hot(target: torch.Tensor, num_classes: int, valid: torch.Tensor) -> torch.Tensor:
    """(N, H, W) int64 → (N, C, H, W) float one-hot; ignored pixels are all-zero."""
    safe = torch.where(valid, target, torch.zeros_like(target))
    if safe.numel() and int(safe.max()) >= num_classes:
        raise ValueError(f"target holds class {int(safe.max())} but the logits have only {num_classes} classes")
    one_hot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(torch.float32)  # (N, C, H, W)
    return one_hot * valid.unsqueeze(1)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255,
                  weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean pixel cross-entropy over non-ignored pixels (``F.cross_entropy``), finite when all are ignored."""
    if not _valid_pixels(target, ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)


def _region_terms(logits: torch.Tensor, target: torch.Tensor, ignore_index: int):
    """Per-class soft true positives, false positives and false negatives over the batch.

    Returns:
        tp, fp, fn: (C,) float; present: (C,) bool, classes with ground-truth pixels.
    """
    valid = _valid_pixels(target, ignore_index)
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)  # (N, C, H, W), ignored pixels zeroed
    one_hot = _one_hot(target, logits.shape[1], valid)
    dims = (0, 2, 3)
    tp = (probs * one_hot).sum(dims)
    fp = (probs * (1 - one_hot)).sum(dims)
    fn = ((1 - probs) * one_hot).sum(dims)
    return tp, fp, fn, one_hot.sum(dims) > 0


def _reduce_classes(per_class: torch.Tensor, present: torch.Tensor, absent: str, logits: torch.Tensor) -> torch.Tensor:
    if absent not in ("skip", "include"):
        raise ValueError(f"absent must be 'skip' or 'include', got {absent!r}")
    keep = present if absent == "skip" else torch.ones_like(present)
    if not keep.any():
        return logits.sum() * 0.0
    return per_class[keep].mean()


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5, beta: float = 0.5,
                 gamma: float = 1.0, ignore_index: int = 255, eps: float = 1.0, absent: str = "skip") -> torch.Tensor:
    """Multiclass Tversky loss ``mean_c (1 - TI_c) ** gamma`` with ``TI = TP / (TP + α·FP + β·FN)``.

    ``alpha = beta = 0.5`` is the Dice loss; ``beta > alpha`` punishes missed pixels (false negatives)
    more, which helps small structures; ``gamma < 1`` (e.g. 0.75) is the focal Tversky loss.
    ``eps`` smooths numerator and denominator. See the module docstring for ``absent``.
    """
    tp, fp, fn, present = _region_terms(logits, target, ignore_index)
    index = (tp + eps) / (tp + alpha * fp + beta * fn + eps)
    return _reduce_classes((1 - index).clamp(min=0) ** gamma, present, absent, logits)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, eps: float = 1.0,
              absent: str = "skip") -> torch.Tensor:
    """Multiclass soft Dice loss ``mean_c 1 - (2·TP + 2·eps) / (2·TP + FP + FN + 2·eps)`` on softmax probabilities.

    It is ``tversky_loss`` with alpha = beta = 0.5, whose ``(TP + eps) / (TP + FP/2 + FN/2 + eps)`` is this ratio
    with numerator and denominator doubled: the smoothing term is 2·eps in the Dice form (tested)."""
    return tversky_loss(logits, target, 0.5, 0.5, 1.0, ignore_index, eps, absent)


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, dice_weight: float = 1.0,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy + ``dice_weight`` · Dice: stable per-pixel gradients plus a direct push on overlap."""
    return cross_entropy(logits, target, ignore_index, weight) + dice_weight * dice_loss(logits, target, ignore_index)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
               alpha: float | torch.Tensor | None = None, ignore_index: int = 255) -> torch.Tensor:
    """Softmax focal loss ``mean over pixels of -α_t (1 - p_t)^γ log p_t``.

    Args:
        gamma: focusing parameter; 0 gives cross-entropy (times alpha).
        alpha: None (no weighting), a scalar applied to every class, or (C,) per-class weights.
    """
    valid = _valid_pixels(target, ignore_index)
    if not valid.any():
        return logits.sum() * 0.0
    log_probs = logits.float().log_softmax(dim=1)  # (N, C, H, W)
    safe = torch.where(valid, target, torch.zeros_like(target))
    log_pt = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)[valid]  # (P,) over valid pixels
    loss = -((1 - log_pt.exp()) ** gamma) * log_pt
    if alpha is not None:
        alpha_t = torch.as_tensor(alpha, dtype=loss.dtype, device=loss.device)
        loss = loss * (alpha_t[safe[valid]] if alpha_t.ndim else alpha_t)
    return loss.mean()


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, keep_fraction: float = 0.25, min_kept: int = 1,
                       ignore_index: int = 255, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard example mining: the mean cross-entropy of the hardest ``keep_fraction`` of valid pixels.

    At least ``min_kept`` pixels are kept (when there are that many).
    """
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    pixel_loss = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="none")
    pixel_loss = pixel_loss[_valid_pixels(target, ignore_index)]  # (P,)
    if pixel_loss.numel() == 0:
        return logits.sum() * 0.0
    k = min(pixel_loss.numel(), max(min_kept, int(round(keep_fraction * pixel_loss.numel()))))
    return pixel_loss.topk(k).values.mean()
