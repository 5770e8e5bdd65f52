"""Unpacking what students uploaded without letting any entry steer what is written, where, or how much.

Every name written is one validated path component (no ``/``, ``\\``, NUL, control or format character, not
``.``/``..``, not hidden, at most 255 bytes); only regular files are written, each created new (``O_EXCL``,
``O_NOFOLLOW``) with mode 0644 in folders of mode 0755, whatever permission bits the archive carries; a set-uid,
set-gid or sticky bit, a link, a device or an encrypted entry is refused; members are read as streams and
counted against the uploader's budget (``Limits``), so an archive that unpacks past it (a zip bomb) stops there;
what a member unpacked to before it failed (a bad checksum is found at its end) counts too. An archive whose
directory is larger than ``Limits.archive_listing_bytes`` is not opened (``listing_bytes``: zipfile reads it all
into memory, one object per entry). Refusals raise ``Refused`` with the reason, for the caller to list; nothing
else stops: whatever a damaged or hostile stream raises while it is read is a refusal.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_NAME_BYTES = 255  # a file name on Linux (NAME_MAX)
CHUNK = 1 << 20
FILE_MODE, FOLDER_MODE = 0o644, 0o755


@dataclass(frozen=True)
class Limits:
    """What collect accepts (declared once, here).

    Attributes:
        export_bytes: the whole LMS export, uncompressed (its declared sizes, checked before anything is written).
        student_bytes: what one student's files may unpack to, the contents of their own archives included.
        student_files: how many files one student's upload may unpack to.
        nested_archive_bytes: the largest archive inside the export that is opened at all.
        archive_listing_bytes: the largest directory (the list of entries) of such an archive that is read, about
            30,000 entries (46 bytes each and their names); a hand-in lists a few.
    """

    export_bytes: int = 4 * 1024**3
    student_bytes: int = 1024**3
    student_files: int = 100
    nested_archive_bytes: int = 512 * 1024**2
    archive_listing_bytes: int = 4 * 1024**2


class Refused(Exception):
    """An entry that is not written; the message says why."""


@dataclass
class Budget:
    """What is left of one student's allowance."""

    bytes_left: int
    files_left: int
    written: list[str] = field(default_factory=list)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file or folder name written here, or ``None`` when it can."""
    if not name:
        return "an empty name"
    if name in (".", ".."):
        return f"the name {name!r}"
    if "/" in name or "\\" in name:
        return "a name with a path separator (/ or \\)"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return "a name with a NUL, control or invisible formatting character"
    if name.startswith("."):
        return "a hidden name (starting with '.')"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"a name over {MAX_NAME_BYTES} bytes"
    return None


def shown(name: str, limit: int = 120) -> str:
    """``name`` safe to print in a terminal or a report: control characters escaped, long names shortened."""
    text = "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch).startswith("C") else ch
                   for ch in name)
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]} ({len(name)} characters)"


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as written: UTF-8 even when the archive did not set the UTF-8 flag (many zip tools
    write UTF-8 without it; zipfile then reads code page 437), NUL kept (zipfile cuts the name there)."""
    name = info.orig_filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why the member is no regular file that may be written, or ``None``. Permission bits are never applied;
    only the special ones are refused."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.is_dir() or kind == stat.S_IFDIR:
        return "a folder"
    if kind not in (0, stat.S_IFREG):
        return "a link" if kind == stat.S_IFLNK else "not a regular file (a device, pipe or socket)"
    if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        return f"a file with a set-uid, set-gid or sticky bit (mode {stat.S_IMODE(mode):04o})"
    if info.flag_bits & 0x1:
        return "an encrypted file"
    return None


def make_folder(path: Path) -> None:
    """``path`` as a folder of mode 0755 (its parent must exist); a link or a file there is refused."""
    try:
        os.mkdir(path, FOLDER_MODE)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise Refused(f"{path} exists and is not a folder")
    os.chmod(path, FOLDER_MODE)


def write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: Budget) -> tuple[int, str]:
    """Streams one member into the new file ``target`` (mode 0644) within ``budget``; returns (bytes, sha256).

    Raises:
        Refused: the name, the member or the budget does not allow it; nothing is left behind.
    """
    problem = name_problem(target.name) or member_problem(info)
    if problem:
        raise Refused(problem)
    if budget.files_left <= 0:
        raise Refused("over the number of files one student's upload may unpack to")
    if info.file_size > budget.bytes_left:
        raise Refused(f"unpacks to {info.file_size:,} bytes, past what is left of the student's "
                      f"{budget.bytes_left:,}-byte allowance")
    digest, size = hashlib.sha256(), 0
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        raise Refused(f"a second file named {shown(target.name)!r} for this student")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as out, archive.open(info) as stream:
            while block := stream.read(CHUNK):
                size += len(block)
                if size > budget.bytes_left:
                    raise Refused(f"unpacks past the student's {budget.bytes_left:,}-byte allowance; stopped there")
                digest.update(block)
                out.write(block)
    except Exception as err:  # zlib.error, lzma.LZMAError, BadZipFile, OSError...: the stream is the student's
        target.unlink(missing_ok=True)
        budget.bytes_left -= min(size, budget.bytes_left)  # the work was done: a bad CRC is found at the end
        raise Refused(str(err) if isinstance(err, Refused) else f"unreadable ({type(err).__name__}: {err})")
    budget.bytes_left -= size
    budget.files_left -= 1
    budget.written.append(target.name)
    return size, digest.hexdigest()


_END = struct.Struct("<4s4H2LH")  # the end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")


def listing_bytes(fp) -> int | None:
    """The size of a zip's directory as ``zipfile`` will read it (the end record found as zipfile finds it, its
    ZIP64 record when there is one), without reading the directory; ``None`` when there is no end record."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    fp.seek(max(size - _END.size - 0xFFFF - _END64_LOCATOR.size - _END64.size, 0))  # a comment is at most 64 KiB
    tail = fp.read()
    at = len(tail) - _END.size  # no comment: the record ends the file; else the last one in the tail
    if at < 0 or tail[at:at + 4] != b"PK\x05\x06" or tail[-2:] != b"\0\0":
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _END.size > len(tail):
            return None
    directory = _END.unpack_from(tail, at)[5]
    locator_at = at - _END64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at:locator_at + 4] == b"PK\x06\x07":
        record_at = locator_at - _END64.size
        if record_at >= 0 and tail[record_at:record_at + 4] == b"PK\x06\x06":
            directory = _END64.unpack_from(tail, record_at)[8]
    return directory
