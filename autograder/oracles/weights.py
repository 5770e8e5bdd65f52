"""Median-frequency class weights, as Eigen and Fergus define them ("Predicting Depth, Surface Normals and Semantic
Labels with a Common Multi-Scale Convolutional Architecture", ICCV 2015, section 4.3):

    w_c = median_freq / freq(c),  freq(c) = (pixels of class c) / (pixels of the images in which c is present),

the median taken over the classes that are present. The denominator is what sets it apart from inverse-frequency
weighting on the share of all pixels: a class that is large where it appears but appears in few images is not
treated as rare. Here ignored pixels (``ignore_index``) count nowhere, and an even number of present classes takes
the mean of the two middle frequencies (the usual median; ``torch.median`` would return the lower one).
"""

from __future__ import annotations

import torch


def median_frequency_weights(masks: torch.Tensor, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """(num_classes,) float32 weights; a class that never occurs gets 0.

    Args:
        masks: (N, H, W) integer labels.
    """
    flat = masks.reshape(masks.shape[0], -1).long()  # (N, H*W)
    valid = flat != ignore_index
    if valid.any() and int(flat[valid].max()) >= num_classes:
        raise ValueError(f"masks hold class {int(flat[valid].max())} but num_classes is {num_classes}")
    labels = torch.where(valid, flat, torch.full_like(flat, num_classes))  # ignored pixels: a bin of their own
    per_image = torch.stack([torch.bincount(row, minlength=num_classes + 1)[:num_classes] for row in labels])  # (N, C)
    image_pixels = valid.sum(1)  # (N,) counted pixels of each image
    pixels = per_image.sum(0).double()  # (C,)
    present_in = per_image > 0  # (N, C)
    exposure = (present_in.double() * image_pixels[:, None].double()).sum(0)  # pixels of the images holding c
    present = pixels > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    if present.any():
        freq = pixels[present] / exposure[present]
        weights[present] = torch.quantile(freq, 0.5) / freq
    return weights.float()
