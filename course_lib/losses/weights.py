"""Class weights from the label statistics of a mask set, for weighted cross-entropy.

Median-frequency balancing: Eigen and Fergus, "Predicting Depth, Surface Normals and Semantic Labels
with a Common Multi-Scale Convolutional Architecture", ICCV 2015.
"""

from __future__ import annotations

import torch


def class_frequencies(masks: torch.Tensor, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """Fraction of non-ignored pixels in each class.

    Args:
        masks: (N, H, W) integer labels.
    Returns:
        (num_classes,) float64, summing to 1 (all zeros when every pixel is ignored).
    """
    labels = masks.flatten().long()
    labels = labels[labels != ignore_index]
    if labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"masks hold class {int(labels.max())} but num_classes is {num_classes}")
    counts = torch.bincount(labels, minlength=num_classes).double()
    return counts / counts.sum().clamp(min=1)


def class_weights(masks: torch.Tensor, num_classes: int, method: str = "median", ignore_index: int = 255) -> torch.Tensor:
    """Per-class loss weights; a class that never occurs gets weight 0.

    Args:
        method: ``"inverse"`` — ``w_c = 1 / f_c`` normalised to mean 1 over present classes;
            ``"median"`` — ``w_c = median(f) / f_c`` with the median over present classes.
    Returns:
        (num_classes,) float32.
    """
    freq = class_frequencies(masks, num_classes, ignore_index)
    present = freq > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    if not present.any():
        return weights.float()
    if method == "inverse":
        weights[present] = 1.0 / freq[present]
        weights[present] /= weights[present].mean()
    elif method == "median":
        weights[present] = freq[present].median() / freq[present]
    else:
        raise ValueError(f"unknown weighting {method!r}; valid methods: ['inverse', 'median']")
    return weights.float()
