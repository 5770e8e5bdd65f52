"""Canvas's "Download Submissions" file names, read as Canvas writes them.

Canvas (``lib/content_zipper.rb``) names every uploaded file of a submission

    <sortable name>_[late_]<user id>_<file id>_<name as uploaded>       okaforben_late_1001_57321_segmentation_hw.ipynb

- the sortable name ("Okafor, Ben") squashed to its word characters and lower-cased: letters outside ASCII stay
  (``müllerjörg``); older versions wrote ``-late_`` and turned other characters into ``-`` (``m-ller--j-rg``);
- ``late`` when Canvas counted the submission late (some versions write ``LATE``);
- the user's Canvas id (the identity: the prefix is a display name, never a login), then the uploaded file's id;
- the file's name as Canvas stores it, which gains ``-1``, ``-2``... before its extension when the student uploads
  a file of the same name again (``Attachment.make_unique_filename``; from the eighth copy on, a UUID).

Canvas removes ``_<digits>_`` from the sortable name, but a name that ends in ``_<digits>`` ("Okafor, Ben_1001")
or holds ``__<digits>__`` keeps digits between underscores, and the uploaded name may start with them: a name such
as ``okaforben_1001_1002_6000_x.zip`` reads as user 1001's ``1002_6000_x.zip`` and as user 1002's ``x.zip``
(``readings``). Only the name's owner can make it so; whose file it is cannot be told from the name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The leftmost `_<digits>_<digits>_` ends the prefix, as Canvas's own re-upload of graded files assumes (Canvas
# removes `_<digits>_` from sortable names for that reason, not always: see `readings`). [0-9], not \d: no other
# script's digits.
_HEAD = re.compile(r"(?P<prefix>.+?)(?:[_-](?P<late>late))?", re.IGNORECASE | re.DOTALL)
_TAIL = re.compile(r"_(?P<user_id>[0-9]+)_(?P<file_id>[0-9]+)_(?P<uploaded>.+)", re.DOTALL)
_EXTENSION = re.compile(r"(?:\.[A-Za-z][A-Za-z0-9]*)*\.[A-Za-z0-9]*$")  # Canvas's rule for where the extension starts
_COPY = re.compile(r"-(?P<n>[0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_UUID_COPY = 8  # Canvas names the eighth copy and later ones with a UUID
PREFIX_PUNCTUATION = "_'’-."  # besides letters and digits, what a squashed sortable name may keep


@dataclass(frozen=True)
class CanvasName:
    """One file name of a Canvas export.

    Attributes:
        prefix: the squashed sortable name (Unicode NFC, as written).
        late: Canvas marked the submission late.
        user_id: the student's Canvas user id (digits), which the roster's ``ID`` column holds.
        file_id: the uploaded file's Canvas id (grows with every upload).
        uploaded: the file's name as Canvas stored it (``segmentation_hw-1.ipynb``).
        file: that name without Canvas's copy suffix (``segmentation_hw.ipynb``).
        copy: 0 for the first upload of that name, n for the n-th re-upload (the newest has the largest).
    """

    prefix: str
    late: bool
    user_id: str
    file_id: int
    uploaded: str
    file: str
    copy: int


def parse(name: str) -> CanvasName | None:
    """The parts of a Canvas export's file name read from the left (the first ``_<digits>_<digits>_`` ends the
    prefix), or ``None`` when it is not one (or its prefix holds characters no sortable name squashes to)."""
    found = readings(name)
    return found[0] if found else None


def readings(name: str) -> list[CanvasName]:
    """Every way to read ``name`` as a Canvas export's file name, from the left (``parse``'s first): one for a
    name Canvas made of an ordinary sortable name and upload, more when digits between underscores end the prefix
    or start the uploaded name."""
    name = unicodedata.normalize("NFC", name)
    found = []
    for at in (m.start() for m in re.finditer("_", name)):
        head, tail = _HEAD.fullmatch(name, 0, at), _TAIL.fullmatch(name, at)
        if head and tail:
            reading = _reading(head["prefix"], head["late"], tail["user_id"], tail["file_id"], tail["uploaded"])
            found += [reading] if reading else []
    return found


def _reading(prefix: str, late: str | None, user_id: str, file_id: str, uploaded: str) -> CanvasName | None:
    if not all(ch.isalnum() or ch in PREFIX_PUNCTUATION for ch in prefix):
        return None
    extension = _EXTENSION.search(uploaded)
    stem = uploaded[:extension.start()] if extension else uploaded
    ext = extension.group() if extension else ""
    copy = _COPY.search(stem)
    if copy and copy.start() > 0:
        number = copy["n"]
        stem, copy_number = stem[:copy.start()], int(number) if number.isdigit() else _UUID_COPY
    else:
        copy_number = 0
    return CanvasName(prefix, bool(late), user_id, int(file_id), uploaded, stem + ext, copy_number)


def name_key(text: str, ascii_only: bool = False) -> str:
    """What survives of a name in every Canvas version's squashing: its letters and digits, case-folded
    (``"O'Brien-Smith, Seán"`` → ``obriensmithseán``; ``ascii_only``: ``obriensmithsen``, as older versions
    that replaced non-ASCII letters wrote it)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum() and (ch.isascii() or not ascii_only))
