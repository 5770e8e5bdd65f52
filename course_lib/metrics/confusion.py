"""A streaming confusion matrix: update per batch with ``bincount``, compute every metric once at the end."""

from __future__ import annotations

import torch


class ConfusionMatrix:
    """Accumulates ``matrix[true, predicted]`` pixel counts over a data set.

    Args:
        num_classes: classes 0..num_classes-1; any other target value (the void label 255, say) is skipped.
        device: where the counts live (CPU or CUDA); updates move their inputs there.

    Example:
        >>> cm = ConfusionMatrix(21)
        >>> for images, masks in val_loader:
        ...     cm.update(model(images).argmax(1), masks)
        >>> mean_iou(cm.matrix)
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Adds one batch.

        Args:
            preds: (N, H, W) integer class predictions (the argmax of the logits).
            target: (N, H, W) integer labels; pixels outside [0, num_classes) are skipped.
        """
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} must have the same shape")
        k = self.num_classes
        preds = preds.to(self.matrix.device).flatten().long()
        target = target.to(self.matrix.device).flatten().long()
        valid = (target >= 0) & (target < k)
        if valid.any() and (preds[valid].min() < 0 or preds[valid].max() >= k):
            raise ValueError(f"predictions must lie in [0, {k}), got [{int(preds.min())}, {int(preds.max())}]")
        index = target[valid] * k + preds[valid]  # (P,) flat cell index
        self.matrix += torch.bincount(index, minlength=k * k).view(k, k)

    def merge(self, other: "ConfusionMatrix") -> None:
        """Adds the counts of another matrix (e.g. from another worker)."""
        self.matrix += other.matrix.to(self.matrix.device)
