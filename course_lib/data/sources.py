"""One string names a data set and where it lives: ``"synthetic"``, ``"voc:<root or packed file>"`` or
``"camvid:<file or folder>"``.

The notebook's ``DATA`` variable and the course's declared grading setting (``course.toml``) are written in this
form and read by ``DataSource.parse``, so a student and the grader name the same data the same way::

    DataSource.parse("synthetic").load("val", 64)                          # the synthetic default
    DataSource.parse("voc:~/data").load("train_aug", 64)                   # the folder holding VOCdevkit/
    DataSource.parse("voc:~/data/voc64.npz").load("train_aug", 64)         # the term's packed file (packed.py)
    DataSource.parse("camvid:~/camvid_seg96x128.npz").load("val", (96, 128))

``data_record`` is what a submission's results file says about the split it was measured on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_lib.data.camvid import CAMVID_SPLITS, load_camvid
from course_lib.data.classes import CAMVID_CLASSES, VOC_CLASSES
from course_lib.data.dataset import SegmentationTensors
from course_lib.data.synthetic import SPLIT_SIZES, SYNTHETIC_CLASSES, load_synthetic
from course_lib.data.voc import VOC_SPLITS, load_voc

KINDS = ("synthetic", "voc", "camvid")
SPLITS = {"synthetic": tuple(SPLIT_SIZES), "voc": VOC_SPLITS, "camvid": CAMVID_SPLITS}
CLASSES = {"synthetic": SYNTHETIC_CLASSES, "voc": VOC_CLASSES, "camvid": CAMVID_CLASSES}
_NAME_PREFIX = {"synthetic": "synthetic", "voc2012": "voc", "camvid": "camvid"}  # SegmentationTensors.name → kind


def image_size(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``(height, width)`` of a size written as a side (``64``) or a pair (``[96, 128]``)."""
    if isinstance(size, int):
        return (size, size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"an image size is a side or (height, width) of positive ints, got {size!r}")
    return (int(size[0]), int(size[1]))


@dataclass(frozen=True)
class DataSource:
    """A data set of the course and its location.

    Attributes:
        kind: ``"synthetic"``, ``"voc"`` or ``"camvid"``.
        location: the VOC root (the folder holding ``VOCdevkit/``) or a packed file, the CamVid ``.npz`` file or
            folder; ``None`` for the synthetic default, which is generated.
    """

    kind: str
    location: Path | None = None

    @classmethod
    def parse(cls, spec: str) -> "DataSource":
        """``"synthetic"``, ``"voc:<root or packed file>"`` or ``"camvid:<file or folder>"`` (``~`` expanded)."""
        kind, _, location = str(spec).strip().partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown data {spec!r}: write 'synthetic', 'voc:<folder holding VOCdevkit/ or "
                             "packed file>' or 'camvid:<camvid_seg96x128.npz or folder>'")
        if kind == "synthetic":
            if location:
                raise ValueError(f"the synthetic data has no location, got {spec!r}")
            return cls(kind)
        if not location:
            raise ValueError(f"{kind} data needs its location: '{kind}:<path>', got {spec!r}")
        return cls(kind, Path(location).expanduser())

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes of this data set (a packed file holds the same ones, recorded in its manifest)."""
        return CLASSES[self.kind]

    @property
    def is_packed(self) -> bool:
        """True when ``location`` is one file holding the splits (a packed file, or the course's CamVid file)."""
        return self.location is not None and self.location.is_file()

    def __str__(self) -> str:
        return self.kind if self.location is None else f"{self.kind}:{self.location}"

    def load(self, split: str, size: int | tuple[int, int]) -> SegmentationTensors:
        """One split at ``size`` (a side or (height, width); the synthetic set and VOC are square).

        Raises:
            ValueError: a split this data set does not have, or a non-square size for a square-only set.
            DataError: the data is missing or unreadable at ``location`` (the message says what to do).
        """
        if split not in SPLITS[self.kind]:
            raise ValueError(f"{self.kind} has no split {split!r}; its splits: {list(SPLITS[self.kind])}")
        height, width = image_size(size)
        if self.kind == "camvid":
            return load_camvid(self.location, split, (height, width))
        if height != width:
            raise ValueError(f"{self.kind} images are square: give one side, got {height}x{width}")
        if self.kind == "voc":
            return load_voc(self.location, split, height)
        return load_synthetic(split, height)

    def paths(self) -> tuple[Path, ...]:
        """The files and folders that hold this data on disk (none for the synthetic set)."""
        return () if self.location is None else (self.location.resolve(),)


def data_record(data: SegmentationTensors) -> dict:
    """What a results file says about the split a model was measured on.

    Returns:
        ``{"name", "dataset", "split", "image_size": [height, width], "num_classes"}``; ``dataset`` is a
        ``KINDS`` name (``None`` for data the course did not make), ``split`` the split's name.
    """
    prefix, _, rest = data.name.partition("-")
    return {"name": data.name, "dataset": _NAME_PREFIX.get(prefix), "split": rest.partition("@")[0] or None,
            "image_size": list(data.image_size), "num_classes": data.num_classes}

