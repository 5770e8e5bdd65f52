"""What the class report shows, read from where each fact already lives; nothing is computed a second time.

- totals per student: ``autograder.export.scores_table`` (the gradebook: automatic and manual scores) and its
  ``summary`` (the statistics and tier counts the export writes);
- checks and their parts, problems, suspicions, mIoU, times: the grading records (``autograder.records.RecordStore``);
- written answers' manual scores: nbgrader's ``Gradebook`` (what the TAs entered in formgrader);
- due dates, extensions and lateness: the gradebook's (nbgrader's ``duedate``, ``extension``, ``total_seconds_late``,
  ``late_submission_penalty``), the late fields a record may carry, and the course's declared late policy
  (``late_policy``).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from nbgrader.api import Gradebook, MissingEntry

from autograder.course import Course
from autograder.gradebook import submissions_of
from autograder.records import GradingRecord, RecordStore

TOP_MESSAGES = 3  # the most common failure messages shown per check and per part
# The late fields of ``GradingRecord`` the page shows (``autograder.late`` writes them: the policy's sentence, the
# late days spent, the share of the points taken, the extension); read with getattr and defaults, so that the report
# also reads records written before they existed.
RECORD_LATE_FIELDS = {"lateness": "{}", "late_days_spent": "late days spent: {}",
                      "late_penalty": "{:.0%} of the points taken", "extended_until": "extended until {:%Y-%m-%d %H:%M %Z}"}
POLICY_KEYS = ("late",)  # the table of course.toml that declares the late policy (``autograder.late``)
EXTENSION_FILES = ("extensions.csv",)  # the per-student extensions, course-relative (``autograder.late``)


@dataclass
class ItemRow:
    """One check, or one part of a check (``part`` set), across the class."""

    check: str
    part: str | None
    max_points: float
    students: int  # records that scored it (graded or invalid; a crash is the grader's, not the student's)
    earned: int  # of them, how many earned every point of it
    mean_points: float
    failures: list[tuple[str, int]]  # the most common messages of those who did not, with their counts

    @property
    def share(self) -> float:
        return self.earned / self.students if self.students else 0.0


@dataclass
class AssignmentReport:
    """Everything the page shows about one assignment."""

    name: str
    table: pd.DataFrame  # ``scores_table``: one row per student of the gradebook
    summary: dict  # ``autograder.export.summary``
    records: list[GradingRecord]
    items: list[ItemRow]
    written: pd.DataFrame  # one row per (student, question) from the gradebook
    duedate: datetime | None
    lateness: pd.DataFrame  # one row per submission
    names: dict[str, str] = field(default_factory=dict)  # student id → "First Last" from the roster

    @property
    def crashed(self) -> list[str]:
        return [r.student for r in self.records if r.status == "crashed"]


def normalized(message: str) -> str:
    """A failure message with its numbers as ``#``, so that "mIoU 0.12 < 0.15" and "mIoU 0.13 < 0.15" count as one."""
    return re.sub(r"\d+(?:\.\d+)?(?:e-?\d+)?", "#", message.strip())


def _top(messages: list[str]) -> list[tuple[str, int]]:
    """The most common messages (grouped by ``normalized``), each shown as its first wording, with its count."""
    first: dict[str, str] = {}
    counts: Counter = Counter()
    for message in messages:
        key = normalized(message)
        first.setdefault(key, message)
        counts[key] += 1
    return [(first[key], n) for key, n in counts.most_common(TOP_MESSAGES)]


def item_analysis(records: list[GradingRecord]) -> list[ItemRow]:
    """For every check and every part of a check: how many students earned it and why the others did not, from the
    records' points and messages (the parts are data in the record). Crashed records are left out."""
    rows = []
    for record in records:
        if record.status == "crashed":
            continue
        for check in record.checks:
            rows.append(dict(check=check.grade_id, part=None, points=check.points, max_points=check.max_points,
                             passed=check.passed, message=check.message))
            for part in check.parts:
                rows.append(dict(check=check.grade_id, part=part.name, points=part.points, max_points=part.max_points,
                                 passed=part.passed, message=part.message))
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    frame["part_key"] = frame["part"].fillna("")
    order = list(dict.fromkeys(zip(frame["check"], frame["part_key"])))  # the declaration's order
    items = []
    for (check, part), group in frame.groupby(["check", "part_key"], sort=False):
        failed = group[~group["passed"]]
        items.append(ItemRow(check, part or None, float(group["max_points"].max()), len(group),
                             int(group["passed"].sum()), float(group["points"].mean()),
                             _top(list(failed["message"]))))
    return sorted(items, key=lambda item: order.index((item.check, item.part or "")))


def written_scores(course: Course, assignment: str, written_ids: set[str]) -> pd.DataFrame:
    """Each student's score on each written answer as the gradebook holds it (nbgrader's API): the TA's manual score,
    nbgrader's automatic 0 for an answer left as released, and whether it still needs a TA."""
    rows = []
    with Gradebook(course.db_url) as gb:
        for submission in submissions_of(gb, assignment):
            for nb in submission.notebooks:
                for grade in nb.grades:
                    if grade.name in written_ids:
                        rows.append(dict(student=submission.student_id, question=grade.name,
                                         max_points=float(grade.max_score), manual_score=grade.manual_score,
                                         auto_score=grade.auto_score, score=float(grade.score or 0.0),
                                         needs_manual_grade=bool(grade.needs_manual_grade)))
    return pd.DataFrame(rows, columns=["student", "question", "max_points", "manual_score", "auto_score", "score",
                                       "needs_manual_grade"])


def written_questions(course: Course, assignment: str, records: list[GradingRecord]) -> set[str]:
    """The answers graded by hand: those the records name (``GradingRecord.written``), else the gradebook's graded
    cells that no check of the records covers."""
    named = {answer.grade_id for record in records for answer in record.written}
    if named:
        return named
    checks = {check.grade_id for record in records for check in record.checks}
    with Gradebook(course.db_url) as gb:
        try:
            return {cell.name for nb in gb.find_assignment(assignment).notebooks for cell in nb.grade_cells
                    if cell.name not in checks and cell.cell_type == "markdown"}
        except MissingEntry:
            return set()


def lateness(course: Course, assignment: str, records: list[GradingRecord]) -> tuple[datetime | None, pd.DataFrame]:
    """The assignment's due date and one row per submission: its time, the student's extension, seconds late and
    nbgrader's late penalty (the gradebook's), and the late fields the student's record carries, if any."""
    by_student = {record.student: record for record in records}
    rows = []
    with Gradebook(course.db_url) as gb:
        try:
            spec = gb.find_assignment(assignment)
        except MissingEntry:
            return None, pd.DataFrame()
        duedate = spec.duedate
        for submission in spec.submissions:
            record = by_student.get(submission.student_id)
            extension = getattr(submission, "extension", None)
            rows.append(dict(
                student=submission.student_id, submitted=submission.timestamp,
                submitted_utc=record.submitted_at if record is not None else None,
                extension_hours=extension.total_seconds() / 3600 if extension else 0.0,
                seconds_late=float(submission.total_seconds_late or 0.0),
                penalty=float(submission.late_submission_penalty or 0.0),
                record_late="; ".join(record_late_fields(record)) if record is not None else ""))
    return duedate, pd.DataFrame(rows, columns=["student", "submitted", "submitted_utc", "extension_hours",
                                                "seconds_late", "penalty", "record_late"])


def record_late_fields(record: GradingRecord) -> list[str]:
    """The late fields the record carries (``RECORD_LATE_FIELDS``), in words; none on a record written before the
    late policy reached the record, or without lateness."""
    found = []
    for name, say in RECORD_LATE_FIELDS.items():
        value = getattr(record, name, None)
        if value in (None, "", 0, 0.0):
            continue
        try:
            found.append(say.format(value))
        except (TypeError, ValueError):  # a field of another type than expected: shown as it is
            found.append(f"{name}: {value}")
    return found


def late_policy(course_root: Path) -> str | None:
    """The late policy ``course.toml`` declares (its ``[late]`` table, ``autograder.late``), as written; None when it
    declares none."""
    try:
        table = tomllib.loads((Path(course_root) / "course.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    for key in POLICY_KEYS:
        value = table.get(key)
        if isinstance(value, dict) and value:
            return "; ".join(f"{k} = {v}" for k, v in value.items())
    return None


def extensions_table(course_root: Path) -> pd.DataFrame | None:
    """The per-student extensions CSV, as written (None when the course has none)."""
    for name in EXTENSION_FILES:
        path = Path(course_root) / name
        if path.is_file():
            try:
                return pd.read_csv(path, dtype=str).fillna("")
            except (OSError, ValueError, pd.errors.ParserError) as err:
                return pd.DataFrame({"problem": [f"{name} cannot be read: {err}"]})
    return None


def assignment_report(course: Course, assignment: str, tiers) -> AssignmentReport | None:
    """What the page shows of ``assignment``; None when the gradebook has no students for it."""
    from autograder.export import scores_table, summary
    from autograder.roster import roster_of

    table = scores_table(course, assignment)
    if table.empty:
        return None
    records = RecordStore(course, assignment).records()
    written = written_scores(course, assignment, written_questions(course, assignment, records))
    duedate, late = lateness(course, assignment, records)
    people = roster_of(course.db_url)
    names = {s: " ".join(p for p in (person.first_name, person.last_name) if p) for s, person in people.items()}
    return AssignmentReport(assignment, table, summary(table, assignment, tiers), records, item_analysis(records),
                            written, duedate, late, names)
