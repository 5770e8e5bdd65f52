"""The SBD labels (Hariharan et al., "Semantic Contours from Inverse Detectors", ICCV 2011) as VOC PNGs.

``load_voc(root, "train_aug")`` trains on every image with a label in ``VOC2012/SegmentationClassAug/`` or
``SegmentationClass/`` that is not in VOC's val list: 10,582 images once SBD's 11,355 labels are there. SBD ships
its labels as MATLAB files; ``write_sbd_labels`` reads them through ``torchvision.datasets.SBDataset`` (which needs
``scipy``) and writes each as a palette PNG with the VOC palette, so the VOC loader reads them like its own. The
archive itself is fetched and checked by ``course_lib.data.fetch`` (never by torchvision's download)::

    pip install scipy   # once, on the machine that prepares the data
    python -m course_lib.data fetch sbd /data/voc       # benchmark.tgz → /data/voc/SBD, labels → SegmentationClassAug

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


def find_sbd_root(root: str | os.PathLike) -> Path:
    """SBD's ``dataset`` folder (``img/``, ``cls/``, ``train.txt``, ``val.txt``) at or under ``root``: ``root``
    itself, ``root/benchmark_RELEASE/dataset`` (the archive's layout) or ``root/SBD/benchmark_RELEASE/dataset``."""
    root = Path(root).expanduser()
    for candidate in (root, root / "benchmark_RELEASE" / "dataset", root / "SBD" / "benchmark_RELEASE" / "dataset"):
        if (candidate / "cls").is_dir() and (candidate / "train.txt").is_file():
            return candidate
    raise DataError(f"no SBD data at {root}: expected cls/, img/, train.txt and val.txt there or in "
                    "benchmark_RELEASE/dataset/. Fetch it with `python -m course_lib.data fetch sbd <VOC root>`, "
                    "or pass the benchmark_RELEASE/dataset folder of SBD's archive")


def write_sbd_labels(sbd_root: str | os.PathLike, voc_root: str | os.PathLike, download: bool = False) -> int:
    """Writes SBD's segmentation labels into ``<VOC2012>/SegmentationClassAug/<id>.png``.

    Args:
        sbd_root: the folder holding SBD's ``img/``, ``cls/``, ``train.txt`` and ``val.txt`` (``benchmark_RELEASE/
            dataset`` of the archive, or a folder above it: ``find_sbd_root``), or where to put it with ``download``.
        voc_root: the folder holding ``VOCdevkit/`` (as for ``load_voc``).
        download: fetch SBD's archive into ``sbd_root`` first (``course_lib.data.fetch``: its mirrors, the published
            md5; about 1.4 GB).
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
    if download:
        from course_lib.data.fetch import ARCHIVES, download as fetch_archive, extract

        archive = fetch_archive(ARCHIVES["sbd"], Path(sbd_root) / "downloads")
        extract(ARCHIVES["sbd"], archive, sbd_root)
    sbd_root = find_sbd_root(sbd_root)
    target = voc / "SegmentationClassAug"
    target.mkdir(exist_ok=True)
    palette = [c for rgb in VOC_PALETTE for c in rgb]
    written = 0
    for split in SBD_SPLITS:
        try:
            dataset = SBDataset(str(sbd_root), image_set=split, mode="segmentation")
        except (RuntimeError, OSError) as err:
            raise DataError(f"SBD at {sbd_root} is incomplete ({err}): fetch it again with "
                            "`python -m course_lib.data fetch sbd <VOC root>`") from err
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
