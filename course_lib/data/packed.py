"""One file per term: a data set's splits at the term's size, as uint8 arrays with a manifest.

Students download this file from the LMS (VOC's ``train_aug`` + ``val`` at 64×64: about 200 MB of uint8, less
compressed) instead of 3.4 GB of archives and a label conversion, and the grader loads the very same file::

    python -m course_lib.data pack voc /data/voc --size 64 --out voc64.npz
    DATA = "voc:~/data/voc64.npz"              # in the notebook; data = "voc:/srv/voc64.npz" in course.toml

The format is the one of the course's CamVid file (``camvid_seg96x128.npz``, a NumPy ``.npz``): per split
``{split}_images`` (N, H, W, 3) uint8 RGB, ``{split}_masks`` (N, H, W) uint8 with void 255 and, where the source
has them, ``{split}_names``; plus ``class_names``, ``ignore_index`` and ``manifest``, a JSON text::

    {"format": "course-lib-packed", "packer_version": 1, "dataset": "voc", "image_size": [64, 64],
     "splits": {"train_aug": {"count": 10582, "name": "voc2012-train_aug@64"}, "val": {...}},
     "class_names": [...], "palette": [...], "ignore_index": 255, "source": "voc:/data/voc",
     "sha256": {"train_aug_images": "...", ...}, "content_sha256": "..."}

Loading checks the manifest and each array's sha256 against what the packer recorded, so a file cut short or
changed on the way gets an error that names the problem and says to download it again. Loading a packed split gives
exactly the tensors the source gives at that size (``load_voc`` on the tree), bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from course_lib import __version__
from course_lib.data.dataset import SegmentationTensors
from course_lib.data.voc import DataError

PACK_FORMAT = "course-lib-packed"
PACKER_VERSION = 1
DEFAULT_SPLITS = {"voc": ("train_aug", "val"), "camvid": ("train", "val", "test")}


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _content_digest(digests: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{k}:{v};" for k, v in sorted(digests.items())).encode()).hexdigest()


def pack(source, size: int | tuple[int, int], out: str | os.PathLike, splits: tuple[str, ...] | None = None,
         log=print) -> dict:
    """Packs ``splits`` of ``source`` (a ``DataSource``) at ``size`` into the file ``out``; returns the manifest.

    Raises:
        DataError: the source is missing or unreadable (the loader's message), or a split is absent.
    """
    from course_lib.data.sources import image_size

    out = Path(out).expanduser()
    height, width = image_size(size)
    if source.kind not in DEFAULT_SPLITS:
        raise ValueError(f"only {sorted(DEFAULT_SPLITS)} data are packed (the synthetic set is generated), got {source}")
    splits = tuple(splits or DEFAULT_SPLITS[source.kind])
    arrays: dict[str, np.ndarray] = {}
    manifest_splits = {}
    first = None
    for split in splits:
        log(f"pack: loading {source.kind} {split} at {height}x{width}")
        data = source.load(split, (height, width))
        first = first or data
        arrays[f"{split}_images"] = data.images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, 3)
        arrays[f"{split}_masks"] = data.masks.contiguous().numpy()  # (N, H, W)
        names = _split_names(source, split)
        if names is not None and len(names) == len(data):
            arrays[f"{split}_names"] = np.asarray(names)
        manifest_splits[split] = {"count": len(data), "name": data.name}
    digests = {key: _digest(value) for key, value in arrays.items()}
    manifest = {
        "format": PACK_FORMAT, "packer_version": PACKER_VERSION, "course_lib_version": __version__,
        "dataset": source.kind, "image_size": [height, width], "splits": manifest_splits,
        "class_names": list(first.class_names), "palette": [list(rgb) for rgb in first.palette],
        "ignore_index": first.ignore_index, "source": str(source), "sha256": digests,
        "content_sha256": _content_digest(digests),
    }
    arrays["class_names"] = np.asarray(first.class_names)
    arrays["ignore_index"] = np.asarray(first.ignore_index, dtype=np.uint8)
    arrays["manifest"] = np.asarray(json.dumps(manifest))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:  # a file object: numpy would append ".npz" to a name without it
        np.savez_compressed(f, **arrays)
    os.replace(tmp, out)
    log(f"pack: {out} ({out.stat().st_size / 1e6:,.1f} MB): " + ", ".join(
        f"{s} {v['count']:,}" for s, v in manifest_splits.items()) + f" at {height}x{width}; sha256 "
        f"{manifest['content_sha256'][:16]}...")
    return manifest


def _split_names(source, split: str) -> list[str] | None:
    """The image ids of a split where the source knows them (VOC's ids), else ``None``."""
    if source.kind != "voc" or source.location is None or source.location.is_file():
        return None
    from course_lib.data.voc import find_voc_root, voc_file_lists

    return voc_file_lists(find_voc_root(source.location), split)[0]


def _damaged(path: Path, err: BaseException) -> DataError:
    return DataError(f"{path} is damaged or incomplete ({type(err).__name__}: {err}; {path.stat().st_size:,} bytes "
                     "here): it was probably cut short or changed while downloading or copying. Download it again "
                     "(the course's LMS), or pack it again with `python -m course_lib.data pack`.")


def read_manifest(path: str | os.PathLike) -> dict | None:
    """The manifest of a packed file; ``None`` for a ``.npz`` made before manifests (the course's CamVid file).

    Raises:
        DataError: the file is not a readable ``.npz`` (cut short, damaged), or its manifest is not the packer's.
    """
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "manifest" not in arrays.files:
                return None
            manifest = json.loads(str(arrays["manifest"]))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise _damaged(path, err) from err
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise DataError(f"{path} holds a manifest that is not a {PACK_FORMAT} one: pack the data again")
    if int(manifest.get("packer_version", 0)) > PACKER_VERSION:
        raise DataError(f"{path} was packed by a newer course_lib (packer version {manifest['packer_version']}, this "
                        f"one reads {PACKER_VERSION}): install the course's current wheel")
    return manifest


def load_packed(path: str | os.PathLike, split: str, size: int | tuple[int, int] | None = None,
                kind: str | None = None) -> SegmentationTensors:
    """One split of a packed file, checked against its manifest.

    Args:
        path: the packed file.
        split: a split the file holds (the manifest lists them).
        size: the size asked for (a side or (height, width)); it must be the file's, which is a term's size.
        kind: the data set asked for (``"voc"``, ``"camvid"``); it must be the file's.
    Returns:
        ``SegmentationTensors`` equal to the source's split at that size.
    Raises:
        DataError: the file is damaged, cut short or changed (a checksum differs), or holds another data set,
            size or split than asked; the message says what to do.
    """
    from course_lib.data.sources import image_size

    path = Path(path).expanduser()
    manifest = read_manifest(path)
    if manifest is None:
        raise DataError(f"{path} has no manifest: it was not made by `python -m course_lib.data pack`")
    if kind is not None and manifest["dataset"] != kind:
        raise DataError(f"{path} holds {manifest['dataset']} data, not {kind}: write "
                        f"DATA = \"{manifest['dataset']}:{path}\"")
    stored = tuple(manifest["image_size"])
    if size is not None and image_size(size) != stored:
        want = "x".join(map(str, image_size(size)))
        raise DataError(f"{path} holds images at {stored[0]}x{stored[1]}, not {want}: set IMAGE_SIZE = "
                        f"{stored[0] if stored[0] == stored[1] else stored} (the term's size), or pack the data again "
                        f"at {want}")
    if split not in manifest["splits"]:
        raise DataError(f"{path} has no split {split!r}; it holds {sorted(manifest['splits'])}")
    keys = (f"{split}_images", f"{split}_masks")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            loaded = {key: arrays[key] for key in keys}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise _damaged(path, err) from err
    for key in keys:
        if _digest(loaded[key]) != manifest["sha256"].get(key):
            raise DataError(f"{path}: the array {key} does not match the checksum its manifest recorded: the file "
                            "was changed after it was packed. Download it again (the course's LMS), or pack it again.")
    count = manifest["splits"][split]["count"]
    images = torch.from_numpy(loaded[keys[0]]).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    masks = torch.from_numpy(loaded[keys[1]])
    if len(images) != count:
        raise DataError(f"{path}: split {split} holds {len(images)} images, its manifest says {count}")
    palette = tuple(tuple(rgb) for rgb in manifest["palette"])
    return SegmentationTensors(images, masks, tuple(manifest["class_names"]), palette, int(manifest["ignore_index"]),
                               manifest["splits"][split]["name"])


def describe(manifest: dict) -> str:
    """The manifest in a few lines, for ``python -m course_lib.data info``."""
    height, width = manifest["image_size"]
    lines = [f"{manifest['dataset']} at {height}x{width}, {len(manifest['class_names'])} classes, void "
             f"{manifest['ignore_index']} (packer version {manifest['packer_version']}, from {manifest['source']})"]
    lines += [f"  {split}: {info['count']:,} images ({info['name']})" for split, info in manifest["splits"].items()]
    lines.append(f"  content sha256: {manifest['content_sha256']}")
    return "\n".join(lines)
