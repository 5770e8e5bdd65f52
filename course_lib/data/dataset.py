"""The in-memory form every data set of the course takes: uint8 tensors plus class metadata."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from course_lib.data.classes import IGNORE_INDEX


@dataclass(frozen=True, eq=False)
class SegmentationTensors(Dataset):
    """A whole split held as two tensors.

    Attributes:
        images: (N, 3, H, W) uint8 RGB.
        masks: (N, H, W) uint8 class ids; ``ignore_index`` marks void pixels.
        class_names: one name per class id, ``len(class_names) == num_classes``.
        palette: RGB colour per class id (index 255 may be present for void).
        ignore_index: label of pixels that no loss or metric counts.
        name: a short description, e.g. ``"voc2012-val@64"``.
    """

    images: torch.Tensor
    masks: torch.Tensor
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if self.masks.dtype != torch.uint8 or self.masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W) uint8, got {tuple(self.masks.shape)} {self.masks.dtype}")
        if self.images.shape[0] != self.masks.shape[0] or self.images.shape[2:] != self.masks.shape[1:]:
            raise ValueError(
                f"images {tuple(self.images.shape)} and masks {tuple(self.masks.shape)} do not pair up"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(image, mask)``: (3, H, W) uint8 and (H, W) int64."""
        return self.images[index], self.masks[index].long()

    def subset(self, count: int) -> "SegmentationTensors":
        """The first ``count`` samples, same metadata."""
        return SegmentationTensors(
            self.images[:count], self.masks[:count], self.class_names, self.palette, self.ignore_index, self.name
        )

    def class_pixel_counts(self) -> torch.Tensor:
        """(num_classes,) int64 pixel count of each class, void excluded."""
        labels = self.masks.flatten().long()
        labels = labels[labels != self.ignore_index]
        return torch.bincount(labels, minlength=self.num_classes)[: self.num_classes]
