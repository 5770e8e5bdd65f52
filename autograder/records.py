"""The grading record: one frozen record per student and assignment, and the store that keeps them.

A record is built once (``build_record``) from the judge's verdict and the assignment's declared points
(``Assignment.points``, in ``autograder/checks/<assignment>.py``): the one place a student's points are computed.
Everything after it reads the record: nbgrader's rendering receives it in memory (``autograder.rendering``), and the
gradebook, the feedback, the export, the summary and the command line read it from the ``RecordStore``, which is
also the only writer of the gradebook's automatic scores (``autograder.gradebook.write_record``).

A record holds what the grader decided and when: the status, each check's points with its parts as data (name,
points earned, points available, message), the problems and the suspicions (``Verdict.flags``) the TA must see,
the written answers a TA grades (and whether each was answered), the recomputed mIoU, where and how long the grading
ran, and the submission's digest and time. What a TA decides later (manual scores, comments) lives in the gradebook.

Adding a field (a late penalty, say): give it a default, write it in ``to_json`` and read it in ``from_json`` with
that default, so that records written before it still load; change ``GRADER_VERSION`` only when the grading itself
changes (it makes every student be graded again). What the record holds for the next readers: lateness as the
course's policy judged it (``autograder.late``: ``due_at``, ``extended_until``, ``seconds_late``, ``late_days_spent``,
``late_days_left``, ``late_penalty`` and the sentence ``lateness``), refreshed by ``grade``, ``feedback``, ``export``
and ``extend``; whether a grade is provisional is ``written`` (the answered ones) against the gradebook's manual
scores (``autograder.export.pending_points``); a class report per check and per part reads ``RecordStore.records()``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from autograder.assignment import Assignment
from autograder.checks.common import PartScore
from autograder.errors import GraderError

# 2: nbgrader no longer executes the notebook; 3: partial credit per part of a check; 4: the typed record
GRADER_VERSION = 4
RECORD_FORMAT = 1  # the JSON layout of a record file (``GradingRecord.to_json``)

Status = Literal["graded", "invalid", "crashed"]  # invalid: the notebook could not be graded as it is

# What a record's text never holds, whoever wrote it (the check messages, problems and suspicions quote what the
# student's process sent): lone surrogates, which no encoding can write (one in a suspicion stopped `grade` while
# printing its row and `export` in the CSV writer, for the whole class); control characters (a terminal's escapes, a
# carriage return that overwrites a row); Unicode line separators and bidirectional overrides. Each becomes U+FFFD.
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
REPLACEMENT = "\ufffd"


def printable(text: str) -> str:
    """``text`` with every ``UNPRINTABLE`` code point replaced by U+FFFD; line breaks and tabs are kept."""
    return UNPRINTABLE.sub(REPLACEMENT, str(text))


def one_line(text: str) -> str:
    """``printable(text)`` on one line (a problem or suspicion is one row of the log, the export and the summary):
    line breaks and tabs become spaces."""
    return " ".join(printable(line) for line in str(text).replace("\t", " ").splitlines()).strip()


@dataclass(frozen=True)
class CheckScore:
    """One autograded cell's result: ``points`` of its declared ``max_points``, the check's message and, for a check
    made of weighted parts, each part's result (their points add up to the check's)."""

    grade_id: str
    points: float
    max_points: float
    message: str
    parts: tuple[PartScore, ...] = ()

    @property
    def fraction(self) -> float:
        return self.points / self.max_points if self.max_points else 0.0

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points

    @property
    def outcome(self) -> str:
        """``PASSED``, ``PARTIAL`` or ``FAILED``: the word the student reads beside the check's points."""
        return "PASSED" if self.passed else "PARTIAL" if self.points > 0 else "FAILED"


@dataclass(frozen=True)
class Miou:
    """The checkpoint's mIoU recomputed by the judge: on the public validation split, on the held-out data drawn from
    the term's secret (``heldout_kind`` says which), and the figure the tiers were judged on."""

    public: float
    heldout: float
    effective: float
    heldout_kind: str


@dataclass(frozen=True)
class WrittenAnswer:
    """An answer graded by hand: its cell, its points and whether the student changed it from the release (an
    untouched answer gets 0 automatically and needs no TA, as nbgrader decides)."""

    grade_id: str
    max_points: float
    answered: bool


@dataclass(frozen=True)
class Timings:
    """Seconds spent on the student: the judge (sandbox and checks) and nbgrader's rendering."""

    judge: float = 0.0
    render: float = 0.0


@dataclass(frozen=True)
class GradingRecord:
    """What the grader decided about one student's submission of one assignment.

    Attributes:
        status: ``graded``, ``invalid`` (the notebook could not be graded as it is: every check scores 0) or
            ``crashed`` (grading itself failed; the next ``grade`` tries again).
        checks: every declared check, in the declaration's order.
        problems: what went wrong with the submission, for the student and the TA (missing files, a bad timestamp...).
        flags: suspicions a defence raised (``Verdict.flags``): the TA must look at each one.
        digest: sha256 of the submission folder and the grader version (``pipeline.submission_hash``).
        submitted_at: the submission's time (UTC) from its ``timestamp.txt``; None when unknown.
        written: the answers a TA grades by hand (empty when nbgrader could not render the notebook).
        sandbox: where and how the student's code ran (return code, limits hit, worker, device).
        due_at: the assignment's due date (UTC, from the gradebook); None when it has none.
        extended_until: the student's extension (UTC, ``extensions.csv``); None when they have none.
        seconds_late: seconds after the deadline (the extension's when there is one); 0 when on time or unknown.
        late_days_spent: late days of the student's bank this submission used; ``late_days_left``: what is left.
        late_penalty: the share of the points the late policy takes, 0 to 1 (the points: the gradebook's
            ``late_submission_penalty``, which follows the manual scores).
        lateness: the policy's sentence for the student and the TA (times in the course's time zone and UTC).
    """

    student: str
    assignment: str
    status: Status
    checks: tuple[CheckScore, ...]
    problems: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    digest: str = ""
    submitted_at: datetime | None = None
    grader_version: int = GRADER_VERSION
    timings: Timings = Timings()
    miou: Miou | None = None
    written: tuple[WrittenAnswer, ...] = ()
    sandbox: Mapping[str, object] = field(default_factory=dict)
    due_at: datetime | None = None
    extended_until: datetime | None = None
    seconds_late: float = 0.0
    late_days_spent: int = 0
    late_days_left: int = 0
    late_penalty: float = 0.0
    lateness: str = ""

    def __post_init__(self) -> None:
        """The one boundary where text from the student's process becomes the grader's: however a record is made
        (``build_record``, ``from_json`` of a file an older grader wrote, ``replace``), its text is ``printable`` and
        each problem and suspicion is ``one_line``, so every reader (the log, the gradebook, the summary cell, the
        export) can write it."""
        checks = tuple(replace(c, message=printable(c.message),
                               parts=tuple(replace(p, message=printable(p.message)) for p in c.parts))
                       for c in self.checks)
        sandbox = {k: printable(v) if isinstance(v, str) else v for k, v in dict(self.sandbox).items()}
        for name, value in (("checks", checks), ("problems", tuple(one_line(p) for p in self.problems)),
                            ("flags", tuple(one_line(f) for f in self.flags)), ("sandbox", sandbox)):
            object.__setattr__(self, name, value)

    @property
    def auto_points(self) -> float:
        return sum(check.points for check in self.checks)

    @property
    def auto_max(self) -> float:
        return sum(check.max_points for check in self.checks)

    def check(self, grade_id: str) -> CheckScore:
        for check in self.checks:
            if check.grade_id == grade_id:
                return check
        known = [check.grade_id for check in self.checks]
        raise KeyError(f"{self.assignment} has no check {grade_id!r}; its checks are {known}")

    @property
    def failed(self) -> set[str]:
        """The checks that did not earn all their points."""
        return {check.grade_id for check in self.checks if not check.passed}

    @property
    def notes(self) -> tuple[str, ...]:
        """What the TA reads beside the scores: every problem, then every suspicion."""
        return self.problems + tuple(f"suspicion: {flag}" for flag in self.flags)

    @property
    def flagged(self) -> bool:
        """Whether the TA must look at this submission (formgrader's flag)."""
        return self.status != "graded" or bool(self.problems) or bool(self.flags)

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = RECORD_FORMAT
        for name in _TIMES:
            data[name] = getattr(self, name).isoformat() if getattr(self, name) else None
        data["sandbox"] = dict(self.sandbox)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "GradingRecord":
        data = json.loads(text)
        times = {name: datetime.fromisoformat(data[name]) if data.get(name) else None for name in _TIMES}
        if data.get("format") != RECORD_FORMAT:
            raise ValueError(f"record format {data.get('format')!r}, expected {RECORD_FORMAT}")
        checks = tuple(CheckScore(c["grade_id"], c["points"], c["max_points"], c["message"],
                                  tuple(PartScore(**p) for p in c["parts"])) for c in data["checks"])
        return cls(
            student=data["student"], assignment=data["assignment"], status=data["status"], checks=checks,
            problems=tuple(data["problems"]), flags=tuple(data["flags"]), digest=data["digest"],
            submitted_at=times["submitted_at"], grader_version=data["grader_version"],
            timings=Timings(**data["timings"]), miou=Miou(**data["miou"]) if data["miou"] else None,
            written=tuple(WrittenAnswer(**w) for w in data["written"]), sandbox=dict(data["sandbox"]),
            due_at=times["due_at"], extended_until=times["extended_until"],
            seconds_late=float(data.get("seconds_late", 0.0)), late_days_spent=int(data.get("late_days_spent", 0)),
            late_days_left=int(data.get("late_days_left", 0)), late_penalty=float(data.get("late_penalty", 0.0)),
            lateness=str(data.get("lateness", "")),
        )


_TIMES = ("submitted_at", "due_at", "extended_until")  # the record's times, ISO 8601 with their offset in JSON


def score_check(grade_id: str, max_points: float, fraction: float, message: str,
                parts: Iterable[PartScore] = ()) -> CheckScore:
    """A check's points from its declared ``max_points``: the sum of its parts' points when it has parts (which must
    add up to ``max_points``), else ``fraction`` of them."""
    parts = tuple(parts)
    if not parts:
        return CheckScore(grade_id, max_points * fraction, max_points, message)
    available = sum(part.max_points for part in parts)
    if not math.isclose(available, max_points):
        raise GraderError(f"the parts of {grade_id} add up to {available:g} points but its declaration gives it "
                          f"{max_points:g} (autograder/checks/): make them agree")
    return CheckScore(grade_id, sum(part.points for part in parts), max_points, message, parts)


def build_record(spec: Assignment, student: str, verdict, *, digest: str, submitted_at: datetime | None = None,
                 problems: Iterable[str] = (), crash: str | None = None) -> GradingRecord:
    """The one place a student's points are computed: every check of ``spec`` scored from ``verdict``
    (``autograder.judge.Verdict``) with the points ``spec`` declares.

    Args:
        problems: more problems found around the judge (the submission's timestamp, files left out).
        crash: why grading failed (``verdict`` is then None): the record is ``crashed``, every check 0.
    """
    checks = []
    for gid in spec.checks:
        result = verdict.checks.get(gid) if verdict is not None else None
        if result is None:  # a crash (the judge scores every declared check otherwise)
            checks.append(score_check(gid, spec.points[gid], 0.0, "not graded: grading failed (see the summary)"))
        else:
            checks.append(score_check(gid, spec.points[gid], result.fraction, result.message, result.parts))
    if verdict is None:
        problems = ((crash,) if crash else ()) + tuple(problems)
        return GradingRecord(student, spec.name, "crashed", tuple(checks), problems, digest=digest,
                             submitted_at=submitted_at)
    figures = verdict.miou
    miou = Miou(figures["public"], figures["heldout"], figures["effective"], figures["heldout_kind"]) if figures else None
    return GradingRecord(student, spec.name, "invalid" if verdict.status == "invalid" else "graded", tuple(checks),
                         tuple(verdict.problems) + tuple(problems), tuple(verdict.flags), digest, submitted_at,
                         timings=Timings(judge=round(verdict.seconds, 2)), miou=miou, sandbox=dict(verdict.sandbox))


def after_rendering(record: GradingRecord, written: Iterable[WrittenAnswer], problem: str | None,
                    seconds: float) -> GradingRecord:
    """The record with what nbgrader's rendering found: the written answers, its problem if it failed, its time.
    The points stay those ``build_record`` computed."""
    return replace(record, written=tuple(written), problems=record.problems + ((problem,) if problem else ()),
                   timings=replace(record.timings, render=round(seconds, 2)))


class RecordStore:
    """The records of one assignment in one course, and the only writer of the gradebook's automatic scores.

    Each record is a file of its own, ``grading/records/<assignment>/<student>.json``, written whole and renamed into
    place, after the gradebook: a student whose file is there is done, so a run stopped half-way grades again exactly
    the students it had not finished. Nothing else knows where the files are.
    """

    def __init__(self, course, assignment: str):
        self.course = course
        self.assignment = assignment
        self.folder = Path(course.root) / "grading" / "records" / assignment

    def _path(self, student: str) -> Path:
        return self.folder / f"{student}.json"

    def get(self, student: str) -> GradingRecord | None:
        """The student's record; None when there is none, or it was written by a grader with another layout."""
        try:
            return GradingRecord.from_json(self._path(student).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def students(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []

    def records(self) -> list[GradingRecord]:
        """Every readable record, by student."""
        return [r for r in (self.get(s) for s in self.students()) if r is not None]

    def up_to_date(self, student: str, digest: str) -> GradingRecord | None:
        """The student's record when nothing would change by grading again: same submission, same grader, and not
        a crash (which may have been the machine's)."""
        record = self.get(student)
        if record is None or record.digest != digest or record.grader_version != GRADER_VERSION:
            return None
        return None if record.status == "crashed" else record

    def check_points(self, spec: Assignment) -> None:
        """Raises when the gradebook's points of an autograded cell (from the notebook's nbgrader metadata, by
        ``release``) differ from the declaration's."""
        from autograder.gradebook import gradebook_points

        points = gradebook_points(self.course.db_url, self.assignment, spec.notebook)
        wrong = {gid: (points.get(gid), spec.points[gid]) for gid in spec.checks
                 if points.get(gid) is None or not math.isclose(points[gid], spec.points[gid])}
        if wrong:
            said = "; ".join(f"{gid}: the gradebook {got}, the declaration {want:g}"
                             for gid, (got, want) in wrong.items())
            raise GraderError(f"the points of {self.assignment} disagree ({said}): set them in the notebook's "
                              f"metadata as in autograder/checks/{self.assignment}.py, then `python -m autograder "
                              "release` again")

    def save(self, record: GradingRecord, notebook: str) -> None:
        """Writes the record's automatic scores, written-answer rule and flag into the gradebook, then the record."""
        from autograder.gradebook import write_record

        if record.assignment != self.assignment:
            raise ValueError(f"a record of {record.assignment} cannot go into the store of {self.assignment}")
        write_record(self.course.db_url, record, notebook)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(record.student)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(record.to_json())
        os.replace(tmp, path)

    def discard(self, student: str) -> None:
        """Forgets the student's record (the next ``grade`` grades them again); the gradebook keeps its rows."""
        self._path(student).unlink(missing_ok=True)
