"""PASCAL VOC 2012 semantic segmentation at a small square size, with a one-time preprocessing cache.

Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010. SBD: Hariharan et
al., "Semantic Contours from Inverse Detectors", ICCV 2011.

Expected layout (the one VOC's archive ``VOCtrainval_11-May-2012.tar`` extracts to; ``python -m course_lib.data fetch
voc ROOT`` gets and checks it, ``course_lib.data.fetch``)::

    <root>/VOCdevkit/VOC2012/
        JPEGImages/<id>.jpg
        SegmentationClass/<id>.png            palette PNG, values 0..20 and 255 (void)
        ImageSets/Segmentation/{train,val,trainval}.txt
        SegmentationClassAug/<id>.png         optional: the SBD-augmented labels (split "train_aug")

Splits: ``train`` (1,464), ``val`` (1,449), ``trainval``, and ``train_aug``: every id that has a label in
``SegmentationClassAug`` (or ``SegmentationClass``) and is not in ``val`` — 10,582 images with the usual
SBD release (the list ``ImageSets/Segmentation/train_aug.txt`` is used instead when present).

The first load decodes and resizes the split and writes it to one ``.pt`` file in ``cache_dir``; the
file name carries a fingerprint of the split, the size and every source file's size and modification
time, so a changed source or size gets a new cache and the stale one is removed.

``root`` may also be a packed file (``course_lib.data.packed``: the splits of one term at its size, in one file):
``load_voc("voc64.npz", "val", 64)`` reads it, checked against its manifest, without any cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from course_lib.data.classes import IGNORE_INDEX, VOC_CLASSES, VOC_PALETTE
from course_lib.data.dataset import SegmentationTensors
from course_lib.data.transforms import resize_pair

VOC_SPLITS = ("train", "val", "trainval", "train_aug")
_CACHE_VERSION = 1


class DataError(RuntimeError):
    """A data folder or file that is missing or cannot be read; the message says what to do."""


def default_cache_dir() -> Path:
    """``$COURSE_LIB_CACHE`` if set, else ``~/.cache/course_lib``."""
    return Path(os.environ.get("COURSE_LIB_CACHE", Path.home() / ".cache" / "course_lib"))


def find_voc_root(root: str | os.PathLike) -> Path:
    """The ``VOC2012`` folder under ``root`` (``root/VOCdevkit/VOC2012``, or ``root`` itself if it is one)."""
    root = Path(root).expanduser()
    for candidate in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (candidate / "JPEGImages").is_dir() and (candidate / "ImageSets" / "Segmentation").is_dir():
            return candidate
    raise DataError(
        f"no PASCAL VOC 2012 data found: expected {root / 'VOCdevkit' / 'VOC2012'} with JPEGImages/, "
        "SegmentationClass/ and ImageSets/Segmentation/. Get it once with "
        f"`python -m course_lib.data fetch voc {root}` (about 2 GB), or point data_root at the folder that holds "
        "VOCdevkit/, or a packed file (voc64.npz), or use the synthetic default (load_synthetic)."
    )


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"split list {path} is missing: the VOC tree is incomplete (re-extract the archive)")
    return [line.strip().split()[0] for line in path.read_text().splitlines() if line.strip()]


def voc_file_lists(voc: Path, split: str) -> tuple[list[str], list[Path], list[Path]]:
    """Ids, image paths and label paths of a split (``voc`` is the VOC2012 folder)."""
    if split not in VOC_SPLITS:
        raise ValueError(f"unknown VOC split {split!r}; valid splits: {list(VOC_SPLITS)}")
    lists = voc / "ImageSets" / "Segmentation"
    if split != "train_aug":
        ids = _read_ids(lists / f"{split}.txt")
        return ids, [voc / "JPEGImages" / f"{i}.jpg" for i in ids], [voc / "SegmentationClass" / f"{i}.png" for i in ids]
    aug = voc / "SegmentationClassAug"
    val = set(_read_ids(lists / "val.txt"))
    if (lists / "train_aug.txt").is_file():
        ids = _read_ids(lists / "train_aug.txt")
    else:
        labelled = {p.stem for p in aug.glob("*.png")} if aug.is_dir() else set()
        labelled |= {p.stem for p in (voc / "SegmentationClass").glob("*.png")}
        ids = sorted(labelled - val)
        if not aug.is_dir():
            raise DataError(f"split 'train_aug' needs the SBD labels in {aug} (SegmentationClassAug PNGs); "
                            "without them use split='train'")
    ids = [i for i in ids if i not in val]
    labels = [aug / f"{i}.png" if (aug / f"{i}.png").is_file() else voc / "SegmentationClass" / f"{i}.png" for i in ids]
    return ids, [voc / "JPEGImages" / f"{i}.jpg" for i in ids], labels


def _fingerprint(split: str, size: int, images: list[Path], labels: list[Path]) -> str:
    h = hashlib.sha1(json.dumps({"v": _CACHE_VERSION, "split": split, "size": size}).encode())
    for path in (*images, *labels):
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataError(f"{path} is listed in the {split} split but does not exist (re-extract the VOC archive)")
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _decode_pair(image_path: Path, label_path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with Image.open(image_path) as img:
            image = torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)  # (3, H, W) uint8
    except Exception as err:  # PIL raises several types for broken files
        raise DataError(f"cannot read image {image_path}: {err}. Replace the file or re-extract the archive.") from err
    try:
        with Image.open(label_path) as lab:
            if lab.mode not in ("P", "L"):
                raise ValueError(f"label PNGs must be palette (P) or grey (L) images, this one is {lab.mode}")
            mask = torch.from_numpy(np.array(lab))  # (H, W) uint8 class ids, 255 void
    except Exception as err:
        raise DataError(f"cannot read label {label_path}: {err}. Replace the file or re-extract the archive.") from err
    if image.shape[1:] != mask.shape:
        raise DataError(f"{image_path} is {tuple(image.shape[1:])} but its label {label_path} is {tuple(mask.shape)}")
    return resize_pair(image, mask, size)


def load_voc(root: str | os.PathLike, split: str = "train", size: int = 64, download: bool = False,
             cache_dir: str | os.PathLike | None = None, num_workers: int = 8) -> SegmentationTensors:
    """Loads a VOC 2012 split resized to ``size × size``.

    Args:
        root: folder that holds ``VOCdevkit/`` (or the ``VOC2012`` folder itself), or a packed file.
        split: one of ``VOC_SPLITS``.
        size: output side; images bilinear with antialias, masks nearest (255 kept).
        download: fetch and extract VOC 2012 first when it is not there (``course_lib.data.fetch``: its mirrors in
            order, the published md5; about 2 GB).
        cache_dir: where the preprocessed split is cached (default ``default_cache_dir()``); ``False``-y
            string ``""`` disables the cache.
        num_workers: decoding threads for the first load.
    Returns:
        ``SegmentationTensors`` with images (N, 3, size, size) uint8 and masks (N, size, size) uint8.
    Raises:
        DataError: missing folder, missing list or file, unreadable image or label (the path is named).
    """
    if split not in VOC_SPLITS:
        raise ValueError(f"unknown VOC split {split!r}; valid splits: {list(VOC_SPLITS)}")
    if Path(root).expanduser().is_file():
        from course_lib.data.packed import load_packed

        return load_packed(root, split, size, kind="voc")
    if download:
        try:
            find_voc_root(root)
        except DataError:
            from course_lib.data.fetch import fetch

            fetch("voc", root)
    voc = find_voc_root(root)
    ids, image_paths, label_paths = voc_file_lists(voc, split)
    if not ids:
        raise DataError(f"the {split} split of {voc} lists no images")
    name = f"voc2012-{split}@{size}"
    cache_file = None
    if cache_dir != "":
        key = _fingerprint(split, size, image_paths, label_paths)
        folder = Path(cache_dir) if cache_dir else default_cache_dir()
        cache_file = folder / f"voc2012-{split}-{size}-{key}.pt"
        if cache_file.is_file():
            cached = torch.load(cache_file, weights_only=True)
            return SegmentationTensors(cached["images"], cached["masks"], VOC_CLASSES, tuple(VOC_PALETTE), IGNORE_INDEX, name)
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        pairs = list(pool.map(lambda p: _decode_pair(p[0], p[1], size), zip(image_paths, label_paths)))
    images = torch.stack([p[0] for p in pairs])
    masks = torch.stack([p[1] for p in pairs])
    bad = masks[(masks > len(VOC_CLASSES) - 1) & (masks != IGNORE_INDEX)]
    if bad.numel():
        raise DataError(f"labels of the {split} split hold values {sorted(set(bad.tolist()))[:5]} outside 0..20 and 255")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        for stale in cache_file.parent.glob(f"voc2012-{split}-{size}-*.pt"):
            stale.unlink(missing_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        torch.save({"images": images, "masks": masks, "ids": ids}, tmp)
        os.replace(tmp, cache_file)
    return SegmentationTensors(images, masks, VOC_CLASSES, tuple(VOC_PALETTE), IGNORE_INDEX, name)
