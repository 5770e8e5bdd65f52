"""The SBD labels (Hariharan et al., "Semantic Contours from Inverse Detectors", ICCV 2011) as VOC PNGs.

``load_voc(root, "train_aug")`` trains on every image with a label in ``VOC2012/SegmentationClassAug/`` or
``SegmentationClass/`` that is not in VOC's val list: 10,582 images once SBD's 11,355 labels are there. SBD ships
its labels as MATLAB files; ``write_sbd_labels`` reads them through ``torchvision.datasets.SBDataset`` (which needs
``scipy``) and writes each as a palette PNG with the VOC palette, so the VOC loader reads them like its own::

    pip install scipy   # once, on the machine that prepares the data
    python -c "from course_lib.data.sbd import write_sbd_labels; write_sbd_labels('/data/sbd', '/data/voc', download=True)"

SBD's images are VOC 2011 photos, all present in VOC 2012's ``JPEGImages/``; only the labels are copied.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from course_lib.data.classes import VOC_PALETTE
from course_lib.data.voc import DataError, find_voc_root

SBD_SPLITS = ("train", "val")  # SBD's own lists; together they cover all 11,355 labelled images


def write_sbd_labels(sbd_root: str | os.PathLike, voc_root: str | os.PathLike, download: bool = False) -> int:
    """Writes SBD's segmentation labels into ``<VOC2012>/SegmentationClassAug/<id>.png``.

    Args:
        sbd_root: the folder holding SBD's ``img/``, ``cls/``, ``train.txt`` and ``val.txt`` (``benchmark_RELEASE/
            dataset`` of the archive), or where to put it with ``download``.
        voc_root: the folder holding ``VOCdevkit/`` (as for ``load_voc``).
        download: fetch SBD first with torchvision (about 1.4 GB; needs internet).
    Returns:
        The number of label files written (existing ones are rewritten: the result is the same).
    Raises:
        DataError: scipy is missing, SBD is not at ``sbd_root``, or a label names an image VOC 2012 does not have.
    """
    try:
        import scipy.io  # noqa: F401  (torchvision's SBDataset reads the .mat files with it)
        from torchvision.datasets import SBDataset
    except ImportError as err:
        raise DataError(f"reading SBD's .mat labels needs scipy ({err}): pip install scipy") from err
    voc = find_voc_root(voc_root)
    target = voc / "SegmentationClassAug"
    target.mkdir(exist_ok=True)
    palette = [c for rgb in VOC_PALETTE for c in rgb]
    written = 0
    for split in SBD_SPLITS:
        try:
            dataset = SBDataset(str(sbd_root), image_set=split, mode="segmentation", download=download and written == 0)
        except RuntimeError as err:
            raise DataError(f"no SBD data at {sbd_root} ({err}); pass download=True on a machine with internet, or "
                            "the benchmark_RELEASE/dataset folder of SBD's archive") from err
        for index, image_path in enumerate(dataset.images):
            image_id = Path(image_path).stem
            if not (voc / "JPEGImages" / f"{image_id}.jpg").is_file():
                raise DataError(f"SBD labels {image_id}, which is not in {voc / 'JPEGImages'}: is this VOC 2012?")
            label = np.asarray(dataset[index][1], dtype=np.uint8)  # (H, W) class ids 0..20
            png = Image.fromarray(label, mode="P")
            png.putpalette(palette)
            png.save(target / f"{image_id}.png")
            written += 1
    return written
