"""CamVid road scenes (Brostow, Fauqueur and Cipolla, Pattern Recognition Letters 2009), 11 classes + void.

Two sources are read:

- the course's ``camvid_seg96x128.npz`` (arrays ``{split}_images`` (N, H, W, 3) uint8 RGB and
  ``{split}_masks`` (N, H, W) uint8 with void 255), or a file ``python -m course_lib.data pack camvid`` wrote in the
  same form with a manifest (``course_lib.data.packed``: checked on loading, read at its own size only), and
- the usual folder layout of the SegNet tutorial: ``train/ trainannot/ val/ valannot/ test/ testannot/``
  with RGB PNGs and label PNGs holding 0..10 and 11 for "Unlabelled" (mapped to 255).

CamVid is for non-commercial research and education; it is never bundled with the course.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from course_lib.data.classes import CAMVID_CLASSES, CAMVID_PALETTE, IGNORE_INDEX
from course_lib.data.dataset import SegmentationTensors
from course_lib.data.transforms import resize_pair
from course_lib.data.voc import DataError

CAMVID_SPLITS = ("train", "val", "test")
_UNLABELLED = 11


def _from_npz(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            images, masks = arrays[f"{split}_images"], arrays[f"{split}_masks"]
    except KeyError as err:
        raise DataError(f"{path} has no arrays for split {split!r} ({err})") from err
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {path} as a .npz file: {err}") from err
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(masks)


def _from_folder(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    image_dir, label_dir = root / split, root / f"{split}annot"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise DataError(f"CamVid folder layout expected: {image_dir} and {label_dir}")
    image_paths = sorted(image_dir.glob("*.png"))
    if not image_paths:
        raise DataError(f"no PNG images in {image_dir}")
    images, masks = [], []
    for path in image_paths:
        label_path = label_dir / path.name
        try:
            with Image.open(path) as img:
                images.append(torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1))
            with Image.open(label_path) as lab:
                mask = torch.from_numpy(np.array(lab.convert("L")))
        except Exception as err:
            raise DataError(f"cannot read {path} or its label {label_path}: {err}") from err
        masks.append(torch.where(mask >= _UNLABELLED, torch.full_like(mask, IGNORE_INDEX), mask))
    shapes = {tuple(m.shape) for m in masks}
    if len(shapes) > 1:
        raise DataError(f"CamVid images in {image_dir} differ in size {sorted(shapes)}; pass size= to resize them")
    return torch.stack(images), torch.stack(masks)


def load_camvid(path: str | os.PathLike, split: str = "train", size: int | tuple[int, int] | None = None) -> SegmentationTensors:
    """Loads one CamVid split.

    Args:
        path: the ``.npz`` file or the folder with ``train/ trainannot/ ...``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: resize to a square side or (height, width); ``None`` keeps the stored size.
    Returns:
        ``SegmentationTensors`` with 11 classes and void 255.
    """
    if split not in CAMVID_SPLITS:
        raise ValueError(f"unknown CamVid split {split!r}; valid splits: {list(CAMVID_SPLITS)}")
    path = Path(path).expanduser()
    if path.is_file():
        from course_lib.data.packed import load_packed, read_manifest

        if read_manifest(path) is not None:
            return load_packed(path, split, size, kind="camvid")
        images, masks = _from_npz(path, split)
    elif path.is_dir():
        images, masks = _from_folder(path, split)
    else:
        raise DataError(f"no CamVid data at {path}: pass the camvid_seg96x128.npz file (see shared/data/README.md) "
                        "or a folder with train/ trainannot/ val/ valannot/ test/ testannot/")
    if size is not None:
        images, masks = resize_pair(images, masks, size)
    name = f"camvid-{split}@{images.shape[2]}x{images.shape[3]}"
    return SegmentationTensors(images, masks.to(torch.uint8), CAMVID_CLASSES, tuple(CAMVID_PALETTE), IGNORE_INDEX, name)
