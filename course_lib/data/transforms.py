"""Resizing image/mask pairs with ``torchvision.transforms.v2``: images bilinear with antialias, masks nearest.

Wrapping the mask as ``tv_tensors.Mask`` is what makes v2 choose nearest-neighbour for it, so label
values (255 included) are never blended.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resizes an image and its mask together.

    Args:
        image: (3, H, W) or (N, 3, H, W) uint8.
        mask: (H, W) or (N, H, W) uint8.
        size: an int for a square output, or (height, width).
    Returns:
        The resized image and mask, same dtypes, as plain tensors.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(image.shape[-2:]) == size and tuple(mask.shape[-2:]) == size:
        return image, mask
    resize = v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    out_image, out_mask = resize(tv_tensors.Image(image), tv_tensors.Mask(mask))
    return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)
