"""A batch iterator for data held as tensors, with augmentation done on the device.

At 64×64 a per-image ``DataLoader`` with PIL transforms spends more time in Python than the model
spends on the GPU. ``TensorLoader`` keeps the whole split as uint8 tensors (on the GPU when there is
one), draws a permutation, and augments a whole batch in one ``grid_sample`` call: random horizontal
flip and random scale-and-crop, applied to image and mask with the same affine map (image bilinear,
mask nearest, padding void in the mask). It runs the same way on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from course_lib.data.dataset import SegmentationTensors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) in [0, 255] → float32 (N, 3, H, W) standardised with the ImageNet statistics."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def denormalize_images(images: torch.Tensor) -> torch.Tensor:
    """Inverse of ``normalize_images``: float (N, 3, H, W) → float in [0, 1], for plotting."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


@dataclass(frozen=True)
class Augment:
    """Joint image/mask augmentation parameters.

    Attributes:
        hflip: probability of a horizontal flip.
        scale: (low, high) zoom factor; > 1 zooms in (a crop), < 1 zooms out (void padding).
        translate: largest shift of the crop centre, as a fraction of the image side.
    """

    hflip: float = 0.5
    scale: tuple[float, float] = (0.75, 1.5)
    translate: float = 0.25


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, augment: Augment, ignore_index: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Applies one random flip + scale + shift per sample, the same map to image and mask.

    Args:
        images: (B, 3, H, W) float, already normalised (padding becomes 0 = the mean colour).
        masks: (B, H, W) int64.
        augment: the parameters.
        ignore_index: label of padded mask pixels.
        generator: CPU generator for the random draws (reproducible augmentation).
    Returns:
        (B, 3, H, W) float and (B, H, W) int64 on the input device.
    """
    b, device = images.shape[0], images.device
    rand = torch.rand(b, 4, generator=generator).to(device)
    low, high = augment.scale
    zoom = low * (high / low) ** rand[:, 0]  # log-uniform in [low, high]
    flip = torch.where(rand[:, 1] < augment.hflip, -1.0, 1.0)
    shift = (rand[:, 2:] * 2 - 1) * augment.translate * 2  # normalised coords span [-1, 1]
    theta = torch.zeros(b, 2, 3, device=device)  # output coords → input coords
    theta[:, 0, 0] = flip / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    shifted = (masks.float() + 1).unsqueeze(1)  # +1 so that zero padding can be told apart
    sampled = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    sampled = sampled.squeeze(1).round().long() - 1
    masks = torch.where(sampled < 0, torch.full_like(sampled, ignore_index), sampled)
    return images, masks


class TensorLoader:
    """Iterates over a ``SegmentationTensors`` split in batches, on ``device``.

    Each batch is ``(images, masks)``: (B, 3, H, W) float32 normalised and (B, H, W) int64.

    Args:
        data: the split.
        batch_size: samples per batch.
        shuffle: a new permutation every epoch.
        augment: joint augmentation, or ``None`` for evaluation.
        device: where the split is copied once and the batches are made.
        drop_last: skip a final partial batch (keeps BatchNorm statistics sane when training).
        seed: seeds the permutation and augmentation stream.
    """

    def __init__(
        self,
        data: SegmentationTensors,
        batch_size: int,
        shuffle: bool = False,
        augment: Augment | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.masks = data.masks.to(self.device)
        self.ignore_index = data.ignore_index
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.images.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            images = normalize_images(self.images[index])
            masks = self.masks[index].long()
            if self.augment is not None:
                images, masks = augment_batch(images, masks, self.augment, self.ignore_index, self.generator)
            yield images, masks
