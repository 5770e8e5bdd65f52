"""The term's graded setting, declared once per course in ``<course>/course.toml``, and the term's secret.

``course.toml`` (read by every grader command; absent: the synthetic default at 64×64 in QUICK mode)::

    [grading]
    data = "voc:/data/voc64.npz"   # "synthetic", "voc:<packed file or folder holding VOCdevkit/>", "camvid:<file>"
    image_size = 64                # a side, or [height, width]
    mode = "FULL"                  # the recipe students train with: "QUICK" or "FULL"
    evaluate_on = "cuda"           # where the judge runs a checkpoint's predictions: "cpu" (default) or "cuda"
    tiers = { target = 0.15, good = 0.25, excellent = 0.35 }   # optional; these are the homework's defaults

    [late]                         # optional: the late policy (``autograder.late``; absent: no penalty, UTC)
    timezone = "Europe/Berlin"
    grace_minutes = 15
    penalty = "per_day"            # "none", "zero", "per_day", "per_hour"
    rate = 0.1
    floor = 0.5
    late_days = 2

The public part of the table (data set, size, mode, tiers) is parsed by ``course_lib.term.parse_grading``, which is
also what a source notebook run by the instructor reads, and what the student bundle announces; the tiers are read
everywhere through ``GradedSetting.tiers`` (grader) or ``course_lib.term.tiers()`` (notebooks, plots).

The secret (``<course>/grading/term_secret.txt``, a folder the sandbox never sees) draws the held-out scenes of the
synthetic set and the transformed copies of a public validation split (``autograder.heldout``). ``release``
creates it when there is none; ``SEGMENTATION_TERM_SECRET`` overrides it (the demo's and the tests' own). A term is
never graded without a secret, nor with one that was ever published.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from autograder.config import TERM_SECRET, environment
from autograder.errors import GraderError
from autograder.late import LatePolicy
from course_lib.data import DataSource
from course_lib.term import Announcement, Tiers, read_course_file

CONFIG_FILE = "course.toml"
SECRET_FILE = Path("grading") / "term_secret.txt"
SECRET_VARIABLE = TERM_SECRET
PUBLISHED_SECRETS = frozenset({"20261121"})  # the held-out seed round 1 printed in the grader's source
MIN_SECRET_LENGTH = 8


class TermError(GraderError):
    """The course's setting or secret is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class GradedSetting:
    """What this term grades on.

    Attributes:
        data: the data set and its location on the grading machine.
        image_size: (height, width) of the images students train and are graded at.
        mode: the recipe students train with (``course_lib.train.recipes.RECIPES``).
        evaluate_on: ``"cpu"`` or ``"cuda"``: where the sandbox computes a checkpoint's predictions (it falls back
            to the CPU, saying so, when CUDA is unusable there).
        tiers: the mIoU thresholds of the three tier checks (default: the homework's 0.15 / 0.25 / 0.35).
        late: the late policy of the ``[late]`` table (``autograder.late.LatePolicy``).
    """

    data: DataSource = field(default_factory=lambda: DataSource("synthetic"))
    image_size: tuple[int, int] = (64, 64)
    mode: str = "QUICK"
    evaluate_on: str = "cpu"
    tiers: Tiers = field(default_factory=Tiers)
    late: LatePolicy = field(default_factory=LatePolicy)

    @classmethod
    def read(cls, course_root: str | os.PathLike) -> "GradedSetting":
        """The setting declared in ``<course_root>/course.toml`` (the default when the file is absent)."""
        path = Path(course_root) / CONFIG_FILE
        if not path.is_file():
            return cls()
        try:
            data, announced, table = read_course_file(path)
        except ValueError as err:
            raise TermError(str(err)) from err
        late = table.get("late", {})
        if not isinstance(late, dict):
            raise TermError(f"{path}: late must be a table ([late]), not {late!r}")
        setting = cls(data, announced.image_size, announced.mode, str(table.get("grading", {}).get("evaluate_on", "cpu")),
                      announced.tiers, LatePolicy.from_table(late, str(path)))
        if setting.evaluate_on not in ("cpu", "cuda"):
            raise TermError(f"{path}: evaluate_on {setting.evaluate_on!r} is not 'cpu' or 'cuda'")
        return setting

    def describe(self) -> str:
        """E.g. ``"voc at 64x64, FULL mode"``."""
        return f"{self.data.kind} at {self.image_size[0]}x{self.image_size[1]}, {self.mode} mode"

    @property
    def num_classes(self) -> int:
        return len(self.data.class_names)

    def announcement(self) -> Announcement:
        """What students are told (``course_lib.term``): this setting without the grading machine's paths."""
        data_file = self.data.location.name if self.data.location is not None and self.data.location.suffix == ".npz" \
            else None
        return Announcement(self.data.kind, self.image_size, self.mode, self.tiers, data_file)

    def reference_mismatch(self, results: dict) -> str | None:
        """Why a reference's results file (``course_lib.submission``) was not made for this setting: its data set,
        image size, mode or class count, in words; ``None`` when it was."""
        measured = results.get("measured_on") if isinstance(results.get("measured_on"), dict) else {}
        theirs = {"data set": measured.get("dataset"), "image size": tuple(measured.get("image_size") or ()),
                  "mode": results.get("mode"), "class count": measured.get("num_classes")}
        ours = {"data set": self.data.kind, "image size": self.image_size, "mode": self.mode,
                "class count": self.num_classes}
        wrong = [f"{key} {_plain(theirs[key])} (this term: {_plain(ours[key])})" for key in ours if theirs[key] != ours[key]]
        return "; ".join(wrong) or None

    def mismatch(self, mode: object, measured_on: object) -> str | None:
        """Why a results file's ``mode`` and ``measured_on`` (``course_lib.data.data_record``) are not this
        setting's, in words for the student's row; ``None`` when they agree or the file does not say."""
        if not isinstance(measured_on, dict):
            return None
        theirs = (measured_on.get("dataset"), tuple(measured_on.get("image_size") or ()), mode)
        if theirs == (self.data.kind, self.image_size, self.mode):
            return None
        size = "x".join(str(s) for s in theirs[1]) or "?"
        return (f"this submission was made for {theirs[0]} at {size}, {mode} mode (its results file); this term "
                f"grades {self.describe()}: the checkpoint is evaluated on the term's data, so train it in the "
                "term's setting")


def _plain(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def stored_secret(course_root: str | os.PathLike) -> str:
    """``$SEGMENTATION_TERM_SECRET`` or the text of ``<course>/grading/term_secret.txt`` ("" when neither), unchecked."""
    path = Path(course_root) / SECRET_FILE
    return environment().term_secret or (path.read_text().strip() if path.is_file() else "")


def term_secret(course_root: str | os.PathLike) -> str:
    """The term's secret (``stored_secret``), checked.

    Raises:
        TermError: there is none, or it was published or is too short to keep.
    """
    path = Path(course_root) / SECRET_FILE
    secret = stored_secret(course_root)
    if not secret:
        raise TermError(f"this term has no secret ({path} is missing and {SECRET_VARIABLE} is not set): run "
                        "`python -m autograder release`, which creates it, before grading")
    if secret in PUBLISHED_SECRETS or len(secret) < MIN_SECRET_LENGTH:
        raise TermError(f"the term's secret is {'a published value' if secret in PUBLISHED_SECRETS else 'too short'}: "
                        f"held-out data drawn from it could be rebuilt by a student. Delete {path} (and unset "
                        f"{SECRET_VARIABLE}) and run `python -m autograder release` to draw a new one")
    return secret


def ensure_term_secret(course_root: str | os.PathLike) -> Path:
    """Creates ``<course>/grading/term_secret.txt`` (readable by its owner only) when it does not exist."""
    path = Path(course_root) / SECRET_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16) + "\n")
    return path


MT_WORDS = 624  # 32-bit words of the Mersenne Twister state behind torch's CPU generator
_STATE_WORDS = slice(24, 24 + 8 * MT_WORDS)  # where get_state() keeps them: one per 8-byte slot after 24 bytes


def secret_generator(secret: str, purpose: str) -> torch.Generator:
    """A torch CPU generator for one use of the secret (``"heldout-scenes"``, ``"transformed-copies"``) whose whole
    Mersenne Twister state (624 words of 32 bits) is SHAKE-256 of the purpose and the secret.

    Not ``manual_seed(int)``: torch keeps only the low 32 bits of a seed, so the data it draws has 2^32 possibilities,
    and a fingerprint of a few held-out scenes lets a student find the seed by brute force in about a core-hour and
    regenerate every scene (the round-4 attack). Seeded this way, the data is as hard to guess as the secret itself
    (128 bits from ``ensure_term_secret``), the same secret always draws the same data, and two purposes never
    share a stream.

    Raises:
        RuntimeError: this torch keeps its generator's state in another layout (the state set did not read back).
    """
    words = np.frombuffer(hashlib.shake_256(f"{purpose}:{secret}".encode()).digest(4 * MT_WORDS), dtype="<u4")
    generator = torch.Generator().manual_seed(0)  # left = 1: the first draw twists the state set below
    state = generator.get_state().clone()
    state[_STATE_WORDS] = torch.from_numpy(words.astype("<u8").view(np.uint8).copy())
    generator.set_state(state)
    if not torch.equal(generator.get_state()[_STATE_WORDS], state[_STATE_WORDS]):
        raise RuntimeError(f"torch {torch.__version__} keeps its CPU generator's state in another layout: "
                           "autograder.term.secret_generator cannot seed it from the secret")
    return generator
