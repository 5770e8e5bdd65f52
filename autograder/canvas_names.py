"""Canvas's "Download Submissions" file names, read as Canvas writes them.

Canvas (``lib/content_zipper.rb``) names every uploaded file of a submission

    <sortable name>_[late_]<user id>_<file id>_<name as uploaded>       okaforben_late_1001_57321_segmentation_hw.ipynb

- the sortable name ("Okafor, Ben") squashed to its word characters and lower-cased: letters outside ASCII stay
  (``müllerjörg``); older versions wrote ``-late_`` and turned other characters into ``-`` (``m-ller--j-rg``);
- ``late`` when Canvas counted the submission late (some versions write ``LATE``);
- the user's Canvas id (the identity: the prefix is a display name, never a login), then the uploaded file's id;
- the file's name as Canvas stores it, which gains ``-1``, ``-2``... before its extension when the student uploads
  a file of the same name again (``Attachment.make_unique_filename``; from the eighth copy on, a UUID).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The leftmost `_<digits>_<digits>_` ends the prefix, as Canvas's own re-upload of graded files assumes (Canvas
# removes `_<digits>_` from sortable names for that reason). [0-9], not \d: no other script's digits.
_NAME = re.compile(r"(?P<prefix>.+?)(?:[_-](?P<late>late))?_(?P<user_id>[0-9]+)_(?P<file_id>[0-9]+)_(?P<uploaded>.+)",
                   re.IGNORECASE | re.DOTALL)
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
    """The parts of a Canvas export's file name, or ``None`` when it is not one (or its prefix holds characters
    no sortable name squashes to)."""
    match = _NAME.fullmatch(unicodedata.normalize("NFC", name))
    if not match:
        return None
    prefix = match["prefix"]
    if not all(ch.isalnum() or ch in PREFIX_PUNCTUATION for ch in prefix):
        return None
    uploaded = match["uploaded"]
    extension = _EXTENSION.search(uploaded)
    stem = uploaded[:extension.start()] if extension else uploaded
    ext = extension.group() if extension else ""
    copy = _COPY.search(stem)
    if copy and copy.start() > 0:
        number = copy["n"]
        stem, copy_number = stem[:copy.start()], int(number) if number.isdigit() else _UUID_COPY
    else:
        copy_number = 0
    return CanvasName(prefix, bool(match["late"]), match["user_id"], int(match["file_id"]), uploaded, stem + ext,
                      copy_number)


def name_key(text: str, ascii_only: bool = False) -> str:
    """What survives of a name in every Canvas version's squashing: its letters and digits, case-folded
    (``"O'Brien-Smith, Seán"`` → ``obriensmithseán``; ``ascii_only``: ``obriensmithsen``, as older versions
    that replaced non-ASCII letters wrote it)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum() and (ch.isascii() or not ascii_only))
