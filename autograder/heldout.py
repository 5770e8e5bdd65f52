"""What a checkpoint is evaluated on: the public validation split, and held-out data drawn from the term's secret.

A model can answer the public split by lookup (its masks are published, or on the synthetic default rebuilt with
``course_lib``). So the judge also evaluates it on data no student can know:

- **synthetic**: held-out scenes, drawn by a generator whose whole state comes from the term's secret
  (``autograder.term.secret_generator``: not a 32-bit seed, which a leaked fingerprint of a few scenes recovers);
- **VOC, CamVid**: a copy of each validation image transformed by the secret (``transformed_copies``: a
  horizontal flip, a zoom into a crop and a small brightness change, each drawn per image), in a secret order.

The held-out figure alone decides the tiers (``autograder.judge``): no answer about the public split, looked up or
honest, can move one. A model that does far better on the public split than on the held-out data (``HELDOUT_GAP``)
is flagged for the TA. The masks never leave the grader's process, and the sandbox sees none of the data's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from autograder.term import GradedSetting, secret_generator, term_secret
from course_lib.data import SegmentationTensors, make_synthetic

HELDOUT_SCENES = 500  # synthetic held-out scenes
HELDOUT_GAP = 0.08  # public minus held-out mIoU beyond which the TA is told (a lookup's sign)
ZOOM_RANGE = (1.1, 1.35)  # the crop's side is the image's divided by this
BRIGHTNESS_RANGE = (0.9, 1.1)


@dataclass
class GradingData:
    """Images and masks the grader evaluates on; the masks never leave the grader's process.

    Attributes:
        setting: the term's declared setting this data is drawn for.
        public: the validation split the students report on.
        heldout: data drawn from the term's secret, the same size and classes as ``public``.
        heldout_kind: what ``heldout`` is, in words for the student's row.
    """

    setting: GradedSetting
    public: SegmentationTensors
    heldout: SegmentationTensors
    heldout_kind: str


def transformed_copies(data: SegmentationTensors, generator: torch.Generator) -> SegmentationTensors:
    """One copy of each image and mask, transformed by draws from ``generator`` (``secret_generator``), in a
    shuffled order.

    Each copy is flipped horizontally with probability 1/2, cropped to its size divided by a zoom in
    ``ZOOM_RANGE`` at a random place and resized back (image bilinear, mask nearest through ``tv_tensors.Mask``),
    and its brightness scaled by a factor in ``BRIGHTNESS_RANGE``.

    Returns:
        ``SegmentationTensors`` of the same shape, dtypes and classes as ``data``.
    """
    g = generator
    height, width = data.image_size
    order = torch.randperm(len(data), generator=g)
    draws = torch.rand(len(data), 5, generator=g)  # flip, zoom, top, left, brightness
    images, masks = [], []
    for i, (flip, zoom, top, left, bright) in zip(order.tolist(), draws.tolist()):
        image, mask = tv_tensors.Image(data.images[i]), tv_tensors.Mask(data.masks[i])
        if flip < 0.5:
            image, mask = TF.horizontal_flip(image), TF.horizontal_flip(mask)
        zoom = ZOOM_RANGE[0] + zoom * (ZOOM_RANGE[1] - ZOOM_RANGE[0])
        crop_h, crop_w = round(height / zoom), round(width / zoom)
        top, left = int(top * (height - crop_h + 1)), int(left * (width - crop_w + 1))
        image = TF.resized_crop(image, top, left, crop_h, crop_w, [height, width], antialias=True)
        mask = TF.resized_crop(mask, top, left, crop_h, crop_w, [height, width])
        factor = BRIGHTNESS_RANGE[0] + bright * (BRIGHTNESS_RANGE[1] - BRIGHTNESS_RANGE[0])
        images.append(TF.adjust_brightness(image, factor).as_subclass(torch.Tensor))
        masks.append(mask.as_subclass(torch.Tensor))
    return SegmentationTensors(torch.stack(images), torch.stack(masks), data.class_names, data.palette,
                               data.ignore_index, name=f"{data.name}-transformed")


_CACHE: dict[tuple, GradingData] = {}


def grading_data(course_root: str | Path, setting: GradedSetting | None = None) -> GradingData:
    """The data the term's checkpoints are graded on (cached per setting and secret in this process).

    Raises:
        TermError: the term has no usable secret.
        DataError: the declared data is missing on this machine.
    """
    setting = setting or GradedSetting.read(course_root)
    secret = term_secret(course_root)
    key = (setting, secret)
    if key not in _CACHE:
        public = setting.data.load("val", setting.image_size)
        if setting.data.kind == "synthetic":
            heldout = make_synthetic(HELDOUT_SCENES, size=setting.image_size[0],
                                     generator=secret_generator(secret, "heldout-scenes"))
            kind = "held-out scenes"
        else:
            heldout = transformed_copies(public, secret_generator(secret, "transformed-copies"))
            kind = "secretly transformed copies of the validation images"
        _CACHE[key] = GradingData(setting, public, heldout, kind)
    return _CACHE[key]
